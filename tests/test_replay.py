"""Replay of key-frame exemplars (hold, interpolate), temporal consistency on down-sampled copies, and scale
consistency on copies at the exemplars' resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import logged, tiny
from torch import nn

from distillkit.distill.losses import less_forget_loss
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset, at_scale
from distillkit.incremental.methods import StepContext, build_method
from distillkit.incremental.objectives import Consistency, ScaleConsistency, StepObjective
from distillkit.incremental.replay import (
    blend_weights,
    downsample_clips,
    even_positions,
    faithful,
    replay_frames,
)
from distillkit.incremental.training import StepTrainer
from distillkit.jobs.incremental import run_incremental


def test_interpolation_weights_by_hand() -> None:
    w = blend_weights([1, 4, 6], 8, "interpolate")
    want = np.zeros((8, 3))
    want[0, 0] = want[1, 0] = 1  # before the first stored position: held
    want[2] = [2 / 3, 1 / 3, 0]
    want[3] = [1 / 3, 2 / 3, 0]
    want[4, 1] = 1
    want[5] = [0, 0.5, 0.5]
    want[6, 2] = want[7, 2] = 1  # after the last: held
    np.testing.assert_allclose(w, want, atol=1e-12)
    hold = blend_weights([1, 4, 6], 8, "hold")
    assert hold.argmax(1).tolist() == [0, 0, 0, 1, 1, 1, 2, 2] and (hold.sum(1) == 1).all()


def test_replay_gives_stored_frames_back_at_their_positions() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    for replay in ("hold", "interpolate"):
        clip = replay_frames(frames, [1, 4, 6], 8, replay)
        assert clip.shape == (8, 4, 4, 3) and clip.dtype == np.uint8
        for k, t in enumerate([1, 4, 6]):
            assert np.array_equal(clip[t], frames[k])
    # a frame between two stored ones is their rounded blend
    mixed = replay_frames(frames, [1, 4, 6], 8, "interpolate")[5]
    assert np.array_equal(mixed, np.rint((frames[1].astype(float) + frames[2]) / 2).astype(np.uint8))


def test_downsampled_copies_are_the_replays_of_evenly_spaced_frames() -> None:
    assert even_positions(8, 4) == [0, 2, 4, 6] and even_positions(8, 4, 1) == [1, 3, 5, 7]
    assert even_positions(8, 3) == [0, 2, 5]
    clips = torch.arange(8.0).view(1, 8, 1, 1, 1).expand(64, 8, 1, 2, 2)  # frame t holds the value t
    torch.manual_seed(0)
    held = downsample_clips(clips, 4, "hold")[:, :, 0, 0, 0]
    rows = {tuple(r.tolist()) for r in held}
    assert rows == {(0, 0, 2, 2, 4, 4, 6, 6), (1, 1, 1, 3, 3, 5, 5, 7)}  # both phases are drawn
    torch.manual_seed(0)
    smooth = downsample_clips(clips, 4, "interpolate")[:, :, 0, 0, 0]
    assert {tuple(r.tolist()) for r in smooth} == {(0, 1, 2, 3, 4, 5, 6, 6), (1, 1, 2, 3, 4, 5, 6, 7)}
    assert downsample_clips(clips, 8, "hold") is clips


class MeanNet(nn.Module):
    """Logits from the clip's per-frame mean weighted by time, so held and whole clips give other logits."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = x.mean(dim=(2, 3, 4)) @ self.w
        return {"logits": logits, "pooled": logits}


def test_consistency_adds_cross_entropy_on_new_clips_copies() -> None:
    net, method = MeanNet(), build_method("finetune", {})
    ctx = StepContext(step=1, num_old=1, num_seen=3, old_model=None, device=torch.device("cpu"))
    x, y = torch.randn(5, 8, 1, 2, 2), torch.tensor([0, 1, 2, 0, 2])
    plain, parts = StepObjective(net, None, method, ctx).loss(x, y)
    assert "tc" not in parts
    torch.manual_seed(3)
    loss, parts = StepObjective(net, None, method, ctx, Consistency(0.5, 4, "hold")).loss(x, y)
    torch.manual_seed(3)
    copies = downsample_clips(x[y >= 1], 4, "hold")  # only the new classes' clips
    want = F.cross_entropy(net(copies)["logits"], y[y >= 1])
    assert logged(parts)["tc"] == pytest.approx(want.item())
    assert loss.item() == pytest.approx(plain.item() + 0.5 * want.item())


class PixelNet(nn.Module):
    """A linear map of every pixel to 3 scores: a clip and its copy at a smaller resolution score differently."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8 * 1 * 4 * 4, 3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = x.flatten(1) @ self.w
        return {"logits": logits, "pooled": logits}


def test_scale_consistency_pulls_the_new_clips_small_copies_to_their_clips() -> None:
    method = build_method("finetune", {})
    ctx = StepContext(step=1, num_old=1, num_seen=3, old_model=None, device=torch.device("cpu"))
    torch.manual_seed(0)
    net, x, y = PixelNet(), torch.randn(5, 8, 1, 4, 4), torch.tensor([0, 1, 2, 0, 2])
    plain, _ = StepObjective(net, None, method, ctx).loss(x, y)
    new = y >= 1
    small = at_scale(x[new], 0.5)
    target = net(x[new])["pooled"].detach()
    want = less_forget_loss(net(small)["pooled"], target)
    assert want.item() > 0.01  # the copies do differ from their clips
    loss, parts = StepObjective(net, None, method, ctx, scale=ScaleConsistency(0.25, 0.5)).loss(x, y)
    # the batch and its copies go through the net together, so sums may round otherwise than here: rel 1e-5
    assert set(logged(parts)) == {"ce", "sc"} and logged(parts)["sc"] == pytest.approx(want.item(), rel=1e-5)
    assert loss.item() == pytest.approx(plain.item() + 0.25 * want.item(), rel=1e-5)
    # the clips as loaded are the target: the term's gradient comes through the copies alone
    (grad,) = torch.autograd.grad(loss - plain, net.w)
    (copies_only,) = torch.autograd.grad(0.25 * want, net.w)
    assert torch.allclose(
        grad, copies_only, rtol=1e-4, atol=1e-5
    )  # through the target too: off by about 0.02
    # with temporal consistency too, each term on its own copies
    torch.manual_seed(3)
    both, parts = StepObjective(
        net, None, method, ctx, Consistency(0.5, 4, "hold"), ScaleConsistency(0.25, 0.5)
    ).loss(x, y)
    torch.manual_seed(3)
    tc = F.cross_entropy(net(downsample_clips(x[new], 4, "hold"))["logits"], y[new])
    assert logged(parts)["tc"] == pytest.approx(tc.item(), rel=1e-5)
    assert logged(parts)["sc"] == pytest.approx(want.item(), rel=1e-5)
    assert both.item() == pytest.approx(plain.item() + 0.5 * tc.item() + 0.25 * want.item(), rel=1e-5)
    # a batch without new clips adds 0
    old_only = torch.tensor([0, 0, 0, 0, 0])
    loss, parts = StepObjective(net, None, method, ctx, scale=ScaleConsistency(0.25, 0.5)).loss(x, old_only)
    assert logged(parts)["sc"] == 0
    assert loss.item() == pytest.approx(F.cross_entropy(net(x)["logits"], old_only).item(), rel=1e-5)


def test_a_steps_scale_consistency_is_civcs_at_its_exemplar_scale() -> None:
    cfg = tiny()

    def scale(method: str, options: dict, step: int = 1) -> ScaleConsistency | None:
        return StepTrainer(cfg, build_method(method, options), torch.device("cpu")).scale_consistency(step)

    assert scale("civc", {}) is None  # weight 0 by default
    assert scale("civc", {"scale_consistency": 0.5}) == ScaleConsistency(0.5, 0.6)
    assert scale("civc", {"scale_consistency": 0.5, "exemplar_scale": 0.7}) == ScaleConsistency(0.5, 0.7)
    assert scale("civc", {"scale_consistency": 0.5}, step=0) is None  # base steps stay shareable
    assert scale("civc", {"scale_consistency": 0.5, "exemplar_scale": 1}) is None  # nothing stored smaller
    assert scale("lucir", {}) is None


def test_a_steps_consistency_keeps_the_stored_key_frames_or_half_the_clip() -> None:
    cfg = tiny()
    cfg.memory.replay = "interpolate"
    assert StepTrainer(cfg, build_method("icarl", {}), torch.device("cpu")).consistency(1) is None  # weight 0
    cfg.train.temporal_consistency.weight = 0.5

    def consistency(method: str, options: dict, step: int = 1) -> Consistency | None:
        return StepTrainer(cfg, build_method(method, options), torch.device("cpu")).consistency(step)

    assert consistency("civc", {"key_frames": 3}, step=0) is None  # base steps stay shareable
    assert consistency("civc", {"key_frames": 3}) == Consistency(0.5, 3, "interpolate")
    assert consistency("icarl", {}) == Consistency(0.5, 2, "interpolate")  # whole clips stored: half of 4
    cfg.train.temporal_consistency.frames = 9
    assert consistency("civc", {"key_frames": 3}) == Consistency(0.5, 4, "interpolate")  # at most the clip


def test_stream_with_interpolated_replay_and_consistency(tmp_path: Path) -> None:
    cfg = tiny(
        method={"name": "civc", "options": {"key_frames": 2, "granularity": "fixed", "exemplar_scale": 1}}
    )
    cfg.memory.replay = "interpolate"
    cfg.train.temporal_consistency.weight = 0.5
    results = run_incremental(cfg, tmp_path / "run")
    assert [m["frames"] for m in results["memory_per_step"]] == [24, 48, 48]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert ["tc" in entry["loss"] for entry in log] == [False, True, True]  # incremental steps only
    # the interpolated replay of a stored exemplar gives its key-frames back where they were stored
    memory = ExemplarMemory.load(tmp_path / "run" / "memory" / "step_002")
    data = MemoryDataset(memory, replay="interpolate")
    clip, _ = data[0]
    exemplar = data.items[0]
    held, _ = MemoryDataset(memory, replay="hold")[0]
    for t in exemplar.frames:
        assert torch.equal(clip[t], held[t])


def test_stream_with_scale_consistency(tmp_path: Path) -> None:
    cfg = tiny(method={"name": "civc", "options": {"scale_consistency": 0.5}})
    run_incremental(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert ["sc" in entry["loss"] for entry in log] == [False, True, True]  # incremental steps only


def test_a_replay_is_faithful_when_it_keeps_the_class_and_stays_close() -> None:
    whole = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    replayed = torch.tensor([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])  # cosine distances 0.005, 1, 0
    logits = torch.tensor([[2.0, 1.0], [2.0, 1.0], [1.0, 2.0]])  # picks 0, 0, 1
    labels = torch.tensor([0, 0, 0])
    assert faithful(whole, replayed, logits, labels, 2.0).tolist() == [True, True, False]  # the class decides
    assert faithful(whole, replayed, logits, labels, 0.01).tolist() == [True, False, False]
    assert faithful(whole, replayed, logits, labels, 0.0).tolist() == [False, False, False]


@pytest.mark.parametrize("keep", [True, False])
def test_adaptive_granularity_stores_key_frames_for_faithful_replays_and_whole_clips_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """Each class gets 24 frames after the base step (12 videos of 2 key-frames, or 6 whole clips of 4), 12
    after; with every replay faithful the memory is the fixed-granularity one, run for run."""
    from distillkit.incremental import replay

    monkeypatch.setattr(replay, "faithful", lambda w, r, lg, lb, t: torch.full((len(w),), keep))
    options = {"key_frames": 2, "granularity": "adaptive", "exemplar_scale": 1}
    results = run_incremental(tiny(method={"name": "civc", "options": options}), tmp_path / "run")
    memory = results["memory_per_step"]
    if keep:
        assert [m["frames"] for m in memory] == [24, 48, 48] and [m["videos"] for m in memory] == [12, 24, 24]
        assert memory[-1]["whole_clips"] == 0
        fixed = run_incremental(
            tiny(
                method={
                    "name": "civc",
                    "options": {"key_frames": 2, "granularity": "fixed", "exemplar_scale": 1},
                }
            ),
            tmp_path / "fixed",
        )
        assert fixed["accuracy_matrix"] == results["accuracy_matrix"]
    else:
        assert [m["frames"] for m in memory] == [48, 48, 48] and [m["videos"] for m in memory] == [12, 12, 12]
        assert memory[-1]["whole_clips"] == 12


def test_replayed_clips_give_the_memory_replay(tmp_path: Path) -> None:
    from distillkit.data.videos import build_video_datasets
    from distillkit.incremental.data import ClassSubset, ReplayedClips
    from distillkit.jobs.incremental import build_stream_scenario

    cfg = tiny()
    data = build_video_datasets(cfg.data, cfg.seed)
    subset = ClassSubset(data.train_eval, [0, 1], build_stream_scenario(cfg, data.num_classes))
    replayed = ReplayedClips(subset, [[1, 3]] * len(subset), "hold")
    clip, label = replayed[2]
    raw = subset.raw_clip(2)
    assert label == subset.labels[2] and clip.shape == (4, 3, *raw.shape[1:3])
    want = torch.from_numpy(raw[[1, 1, 1, 3]]).permute(0, 3, 1, 2).float() / 255  # hold: 0,1,2 → 1; 3 → 3
    assert torch.allclose(clip, want)
