"""CIVC: trajectories, spatio-temporal decomposition, key-frame selection, the method and its memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import logged, tiny

from distillkit.distill.spatiotemporal import (
    align,
    decompose,
    displacement_grid,
    frame_descriptors,
    local_correlation,
    spatial_loss,
    temporal_descriptor,
    temporal_loss,
    track,
    whole_feature_loss,
)
from distillkit.incremental.memory import ExemplarMemory
from distillkit.incremental.methods import METHODS, StepContext, build_method
from distillkit.incremental.selection import greedy_mean_match, herding, key_frames, uniform_key_frames
from distillkit.jobs.incremental import run_incremental


def moving_object(
    n: int = 2, t: int = 5, c: int = 8, size: int = 12, step: tuple[int, int] = (1, 2), start=(2, 1)
):
    """Feature maps (n, t, c, size, size): a static random background and an object (a feature vector) that
    moves by `step` (dy, dx) per frame from `start`; returns the maps and the object's path."""
    g = torch.Generator().manual_seed(0)
    maps = (0.1 * torch.randn(n, 1, c, size, size, generator=g)).expand(n, t, c, size, size).clone()
    obj = 3 * torch.randn(n, c, generator=g)
    path = [(start[0] + k * step[0], start[1] + k * step[1]) for k in range(t)]
    for k, (y, x) in enumerate(path):
        maps[:, k, :, y, x] = obj
    return maps, path


# ---------------------------------------------------------------------------------------------- trajectories
def test_displacement_grid_is_row_major_with_zero_in_the_centre() -> None:
    grid = displacement_grid(1)
    assert grid.shape == (9, 2)
    assert grid[0].tolist() == [-1, -1] and grid[4].tolist() == [0, 0] and grid[5].tolist() == [0, 1]


def test_local_correlation_matches_explicit_shifts() -> None:
    a, b = torch.randn(2, 3, 5, 6), torch.randn(2, 3, 5, 6)
    corr = local_correlation(a, b, 1)
    for d, (dy, dx) in enumerate(displacement_grid(1).tolist()):
        for y, x in [(0, 0), (2, 3), (4, 5)]:
            yy, xx = y + dy, x + dx
            want = (a[:, :, y, x] * b[:, :, yy, xx]).sum(1) if 0 <= yy < 5 and 0 <= xx < 6 else torch.zeros(2)
            torch.testing.assert_close(corr[:, y, x, d], want)


@pytest.mark.parametrize(("step", "start"), [((1, 2), (2, 1)), ((0, -1), (5, 8)), ((-2, 1), (10, 5))])
def test_trajectories_follow_an_object_moving_by_a_known_offset(step, start) -> None:
    maps, path = moving_object(step=step, start=start)
    index = track(maps, radius=2)
    assert index.shape == (2, 5, 144)
    start = path[0][0] * 12 + path[0][1]
    assert index[:, :, start].tolist() == [[y * 12 + x for y, x in path]] * 2


def test_static_background_stays_put_and_radius_limits_the_move() -> None:
    maps, _ = moving_object(step=(0, 2))
    index = track(maps, radius=2)
    background = 11 * 12 + 11  # far from the object: never moves
    assert index[:, :, background].tolist() == [[background] * 5] * 2
    index = track(maps, radius=1)  # the object moves 2 per frame, beyond the radius
    assert not (index[:, -1, 2 * 12 + 1] == 2 * 12 + 9).any()
    assert torch.equal(track(maps, radius=0), torch.arange(144).expand(2, 5, 144))


def test_trajectories_from_input_frames_follow_a_moving_square() -> None:
    clips = torch.zeros(1, 4, 3, 32, 32)
    for k in range(4):  # a bright 8×8 square moving right by 4 pixels = 1 cell of an 8×8 map per frame
        clips[0, k, :, 12:20, 4 + 4 * k : 12 + 4 * k] = 1.0
    index = track(frame_descriptors(clips, (8, 8)), radius=1)
    # the square's top-left cell (3, 1) moves one cell right per frame
    assert index[0, :, 3 * 8 + 1].tolist() == [3 * 8 + 1 + k for k in range(4)]


def test_align_gathers_along_the_trajectories() -> None:
    maps, path = moving_object()
    index = track(maps, radius=2)
    aligned = align(maps, index)
    start = path[0][0] * 12 + path[0][1]
    for k, (y, x) in enumerate(path):
        torch.testing.assert_close(aligned[:, k, :, path[0][0], path[0][1]], maps[:, k, :, y, x])
    assert index[:, 0].eq(torch.arange(144)).all() and start == 25
    features = maps.clone().requires_grad_(True)
    align(features, index).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ decomposition
def test_decomposition_splits_time_mean_and_residual() -> None:
    f = torch.randn(3, 4, 5, 6, 7)
    s, r = decompose(f)
    torch.testing.assert_close(s, f.mean(1))
    torch.testing.assert_close(s.unsqueeze(1) + r, f)
    torch.testing.assert_close(r.sum(1), torch.zeros(3, 5, 6, 7), atol=1e-5, rtol=0)
    assert temporal_descriptor(r).shape == (3, 4, 5 * (6 + 7))


def test_time_order_changes_only_the_temporal_part() -> None:
    f = torch.randn(2, 6, 4, 5, 5)
    shuffled = f[:, [5, 0, 3, 1, 4, 2]]
    (s, r), (s2, r2) = decompose(f), decompose(shuffled)
    assert spatial_loss(s, s2).abs() < 1e-6
    for mode in ("descriptor", "correlation"):
        assert temporal_loss(r, r, mode) == 0
        assert temporal_loss(r, r2, mode) > 0.1
    assert whole_feature_loss(f, f) == 0 and whole_feature_loss(f, shuffled) > 0.1
    with pytest.raises(ValueError, match="unknown mode"):
        temporal_loss(r, r, "nope")


def test_along_trajectories_a_moving_object_leaves_no_residual() -> None:
    maps, path = moving_object(n=1)
    _, fixed = decompose(maps)
    _, along = decompose(align(maps, track(maps, radius=2)))
    y, x = path[0]
    assert along[0, :, :, y, x].abs().max() < 1e-6  # the object is constant along its trajectory
    assert fixed[0, :, :, y, x].abs().max() > 1.0  # at a fixed position it comes and goes


# ----------------------------------------------------------------------------------------------- selection
def test_greedy_mean_match_by_hand_and_herding_uses_it() -> None:
    x = torch.tensor([[0.0], [1.0], [4.0], [2.0]])
    # target 1.5: first 1 (|1-1.5|=.5 ties 2 at .5; lowest index wins), then mean (1+2)/2 = 1.5
    assert greedy_mean_match(x, torch.tensor([1.5]), 2) == [1, 3]
    assert greedy_mean_match(x, torch.tensor([1.5]), 9) == [1, 3, 0, 2]
    f = torch.randn(10, 4)
    normed = torch.nn.functional.normalize(f.double(), dim=1)
    assert herding(f, 5) == greedy_mean_match(normed, normed.mean(0), 5)


def test_key_frames_keep_positions_whose_mean_matches_the_clip() -> None:
    frames = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [5.0, 5.0], [1.0, 1.0], [4.0, 4.0]])
    clip = frames.mean(0)  # (3.33, 3.33)
    assert key_frames(frames, clip, 1) == [5]
    # then the frame bringing the mean nearest (3.33, 3.33): (4,4)+(1,1) -> (2.5, 2.5), distance 1.18, beats
    # (4,4)+(5,5) -> (4.5, 4.5), distance 1.65; positions come back sorted
    assert key_frames(frames, clip, 2) == [4, 5]
    with pytest.raises(ValueError):
        key_frames(frames, clip, 0)


def test_uniform_key_frames_replay_at_an_even_lower_frame_rate() -> None:
    assert uniform_key_frames(8, 4) == [0, 2, 4, 6]  # filled back (ties earlier): 0 0 2 2 4 4 6 6
    assert uniform_key_frames(8, 3) == [0, 2, 5]
    assert uniform_key_frames(8, 1) == [0] and uniform_key_frames(8, 8) == list(range(8))
    with pytest.raises(ValueError, match="1..8"):
        uniform_key_frames(8, 9)
    method = build_method("civc", {"key_frames": 4, "key_frame_selection": "uniform"})
    frames = torch.randn(8, 5)
    assert method.select_frames(frames, frames[3], 4) == [0, 2, 4, 6]  # features play no part


# -------------------------------------------------------------------------------------------------- method
EVERY_PART = {
    "logit_weight": 1.0,
    "spatial_weight": 1.0,
    "temporal_weight": 1.0,
    "key_frames": 4,
    "adaptive_weights": True,
}
"""civc with every part of its design switched on (the defaults switch off what the benchmark found costly)."""


def outputs(seed: int, n: int = 4, t: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "layer1": torch.randn(n, t, 6, 5, 5, generator=g).relu(),
        "layer2": torch.randn(n, t, 8, 3, 3, generator=g).relu(),
        "logits": torch.randn(n, 5, generator=g),
        "cosine": torch.rand(n, 5, generator=g) * 2 - 1,
        "pooled": torch.randn(n, 8, generator=g),
        "clips": torch.rand(n, t, 3, 20, 20, generator=g),
    }


def test_civc_registered_with_its_memory_hooks() -> None:
    assert "civc" in METHODS and METHODS["civc"].needs_old_outputs
    method = build_method("civc", {"key_frames": 4})
    assert method.head == "cosine"
    assert method.exemplar_frames(8) == 4 and method.exemplar_frames(3) == 3 and not method.nme
    assert build_method("civc", {}).exemplar_frames(8) == 8  # whole clips by default
    assert build_method("civc", {"classifier": "nme"}).nme
    assert build_method("civc", {"head": "linear"}).head == "linear"
    frames = torch.randn(8, 5)
    picked = method.select_frames(frames, frames.mean(0), 4)
    assert picked == sorted(picked) and len(set(picked)) == 4 and all(0 <= p < 8 for p in picked)
    assert method.select_frames(frames, frames.mean(0), 8) == list(range(8))


def test_civc_loss_parts_follow_the_switches() -> None:
    ctx = StepContext(step=1, num_old=3, num_seen=5, old_model=None, device=torch.device("cpu"))
    y = torch.tensor([0, 3, 4, 1])
    out, old = outputs(0), outputs(1)
    method = build_method("civc", EVERY_PART)
    total, parts = method.loss(out, old, y, ctx)
    parts = logged(parts)
    assert set(parts) == {"ce", "kd", "ranking", "spatial", "temporal", "embedding"}
    assert parts["ranking"] > 0  # old-class samples 0 and 1 against new classes 3, 4
    scale = (3 / 2) ** 0.5  # sqrt(old / new classes)
    distil = parts["spatial"] + parts["temporal"] + 5.0 * parts["embedding"]
    want = parts["ce"] + parts["kd"] + parts["ranking"] + scale * distil
    assert total.item() == pytest.approx(want, rel=1e-5)
    _, parts = build_method("civc", {**EVERY_PART, "decompose": False}).loss(out, old, y, ctx)
    parts = logged(parts)
    assert set(parts) == {"ce", "kd", "ranking", "whole", "embedding"}
    _, fixed = build_method("civc", {**EVERY_PART, "trajectories": "none"}).loss(out, old, y, ctx)
    _, frames = build_method("civc", {**EVERY_PART, "trajectories": "frames"}).loss(out, old, y, ctx)
    fixed, frames = logged(fixed), logged(frames)
    assert fixed["ce"] == parts["ce"] and fixed["temporal"] > 0 and frames["temporal"] > 0
    total, parts = method.loss(out, {k: v.clone() for k, v in out.items()}, y, ctx)
    parts = logged(parts)
    for key in ("spatial", "temporal", "embedding", "kd"):
        assert parts[key] == pytest.approx(0, abs=1e-5), key
    ce, parts = method.loss(out, None, y, ctx)  # base step: cross-entropy only
    assert set(parts) == {"ce"}
    linear = {k: v for k, v in out.items() if k != "cosine"}  # a linear head has no cosine scores to rank
    _, parts = build_method("civc", {"head": "linear"}).loss(linear, old, y, ctx)
    assert logged(parts)["ranking"] == 0
    # the defaults: LUCIR's terms only, the less-forget weight 5 whatever the classes; KD and the feature parts
    # are not even computed
    total, parts = build_method("civc", {}).loss(out, old, y, ctx)
    parts = logged(parts)
    assert set(parts) == {"ce", "kd", "ranking", "embedding"} and parts["kd"] == 0
    assert total.item() == pytest.approx(parts["ce"] + parts["ranking"] + 5.0 * parts["embedding"], rel=1e-5)
    scaled, scaled_parts = build_method("civc", {"adaptive_weights": True}).loss(out, old, y, ctx)
    assert logged(scaled_parts) == parts  # the same parts, weighted by LUCIR's sqrt(old / new)
    assert scaled.item() == pytest.approx(total.item() + (scale - 1) * 5.0 * parts["embedding"], rel=1e-5)
    one = build_method("civc", {"temporal_weight": 0.5})  # one part on: only that part is computed
    assert set(one.feature_losses(out, old)) == {"temporal"}


def test_temporal_part_on_new_clips_only_ignores_the_replays() -> None:
    ctx = StepContext(step=1, num_old=3, num_seen=5, old_model=None, device=torch.device("cpu"))
    out, old = outputs(0), outputs(1)
    y = torch.tensor([0, 3, 4, 1])  # clips 1 and 2 are new
    everywhere = build_method("civc", EVERY_PART).feature_losses(out, old)
    method = build_method("civc", {**EVERY_PART, "temporal_on": "new"})
    new_only = method.feature_losses(out, old, y >= 3)
    assert new_only["spatial"] == everywhere["spatial"]
    pick = [
        1,
        2,
    ]  # by hand: the mean over the batch with the replays counting 0 = half the mean over new clips
    part = build_method("civc", EVERY_PART).feature_losses({k: v[pick] for k, v in out.items()},
                                                   {k: v[pick] for k, v in old.items()})  # fmt: skip
    assert new_only["temporal"].item() == pytest.approx(0.5 * part["temporal"].item(), rel=1e-5)
    # changing a replay's temporal features changes nothing
    moved = {**out, **{s: out[s].clone() for s in ("layer1", "layer2")}}
    for s in ("layer1", "layer2"):
        moved[s][0] = moved[s][0].flip(0)
    assert method.feature_losses(moved, old, y >= 3)["temporal"] == new_only["temporal"]
    assert logged(method.loss(out, old, torch.tensor([0, 1, 2, 0]), ctx)[1])["temporal"] == 0.0


def test_less_forget_on_old_clips_counts_the_new_clips_as_zero() -> None:
    ctx = StepContext(step=1, num_old=3, num_seen=5, old_model=None, device=torch.device("cpu"))
    out, old = outputs(0), outputs(1)
    y = torch.tensor([0, 3, 4, 1])  # clips 0 and 3 are old-class exemplars
    distance = 1 - torch.nn.functional.cosine_similarity(out["pooled"], old["pooled"], dim=1)
    everywhere = logged(build_method("civc", {}).loss(out, old, y, ctx)[1])["embedding"]
    assert everywhere == pytest.approx(distance.mean().item(), rel=1e-6)
    method = build_method("civc", {"embedding_on": "old"})
    assert logged(method.loss(out, old, y, ctx)[1])["embedding"] == pytest.approx(
        (distance[0] + distance[3]).item() / 4, rel=1e-6
    )
    moved = {**out, "pooled": out["pooled"].clone()}
    moved["pooled"][1:3] *= -1  # a new clip's embedding moving changes nothing
    assert (
        logged(method.loss(moved, old, y, ctx)[1])["embedding"]
        == logged(method.loss(out, old, y, ctx)[1])["embedding"]
    )
    assert logged(method.loss(out, old, torch.tensor([3, 4, 3, 4]), ctx)[1])["embedding"] == 0.0


def test_civc_feature_losses_reach_the_features() -> None:
    ctx = StepContext(step=1, num_old=3, num_seen=5, old_model=None, device=torch.device("cpu"))
    out, old = outputs(0), outputs(1)
    out["layer1"].requires_grad_(True)
    options = {
        **EVERY_PART,
        "logit_weight": 0.0,
        "embedding_weight": 0.0,
        "ranking_weight": 0.0,
        "stages": ["layer1"],
    }
    build_method("civc", options).loss(out, old, torch.tensor([3, 4, 3, 4]), ctx)[0].backward()
    assert out["layer1"].grad is not None and out["layer1"].grad.abs().sum() > 0


def test_civc_stream_stores_key_frames_and_more_videos(tmp_path: Path) -> None:
    options = {"key_frames": 2, "granularity": "fixed", "exemplar_scale": 1}
    results = run_incremental(tiny(method={"name": "civc", "options": options}), tmp_path / "civc")
    # 48 frames at 2 per video hold 24 videos (iCaRL's whole clips of 4 frames fit 12); after the base step the
    # 2 classes have only 6 training videos each to give
    assert [m["frames"] for m in results["memory_per_step"]] == [24, 48, 48]
    assert [m["videos"] for m in results["memory_per_step"]] == [12, 24, 24]
    assert results["classifier"] == "cnn"
    memory = ExemplarMemory.load(tmp_path / "civc" / "memory" / "step_002")
    for c in memory.classes:
        for exemplar in memory.exemplars(c):
            assert len(exemplar.frames) == 2 and list(exemplar.frames) == sorted(set(exemplar.frames))
            assert all(0 <= p < 4 for p in exemplar.frames)
    on_disk = json.loads((tmp_path / "civc" / "results.json").read_text())
    assert on_disk["method"] == "civc" and len(on_disk["accuracy_matrix"]) == 3
    # the options as the method resolved them, defaults included
    assert on_disk["method_options"]["key_frames"] == 2 and on_disk["method_options"]["cbf_epochs"] == 2.0


def test_old_model_on_batch_statistics_matches_the_training_model_and_keeps_its_running_stats() -> None:
    import copy

    from distillkit.incremental.objectives import model_outputs, normalise_with_batch_statistics
    from distillkit.models.factory import build_video_model
    from distillkit.models.heads import make_head

    cfg = tiny()
    model = build_video_model(cfg.model, 3, 4)
    model.head = make_head("cosine", model.feature_dim, 3)
    for m in model.modules():  # running statistics unlike any batch
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.5)
            m.running_var.fill_(3.0)
    old = normalise_with_batch_statistics(copy.deepcopy(model).eval().requires_grad_(False))
    stats = {k: v.clone() for k, v in old.state_dict().items() if "running" in k}
    x = torch.rand(4, 4, 3, 16, 16)
    with torch.no_grad():
        before = model_outputs(old, x)
    model.train()
    now = model_outputs(model, x)
    for key in ("layer1", "layer4", "pooled", "logits"):
        torch.testing.assert_close(before[key], now[key])
    assert all(torch.equal(old.state_dict()[k], v) for k, v in stats.items())
    method = build_method("civc", {**EVERY_PART, "old_batch_stats": True})
    assert (
        method.old_model_batch_stats and not build_method("civc", {}).old_model_batch_stats
    )  # off by default
    now["clips"] = x
    assert all(v.abs() < 1e-5 for v in method.feature_losses(now, before).values())


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (Path(__file__).parent.parent / "configs" / "civc").glob("*.yaml"))
)
def test_real_benchmark_configs_validate_and_their_budget_fits(name: str) -> None:
    from distillkit.config import load_config
    from distillkit.incremental.config import IncrementalConfig
    from distillkit.incremental.scenario import PRESETS
    from distillkit.incremental.selection import allocate

    cfg = load_config(Path(__file__).parent.parent / "configs" / "civc" / name, IncrementalConfig)
    method = build_method(cfg.method.name, cfg.method.options)
    base, increment, steps = PRESETS[cfg.scenario.preset]
    classes = base + increment * steps
    per_class = allocate(cfg.memory.budget_frames, list(range(classes)), method.exemplar_frames(8))
    assert method.name == "civc" and set(per_class.values()) == {20}  # 20 videos of 4 key-frames a class
    assert cfg.data.num_segments == 8 and cfg.model.arch == "resnet50"
    if "ssv2" in name:  # flips turn SSv2 classes into others (left/right), maybe of a later step
        assert not cfg.data.flip


def test_demo_stream_compares_finetune_icarl_and_civc(tmp_path: Path, monkeypatch) -> None:
    import yaml

    from distillkit import cli

    tiny_yaml = tmp_path / "demo_incremental.yaml"
    tiny_yaml.write_text(yaml.safe_dump(json.loads(json.dumps(tiny().model_dump(mode="json")))))
    monkeypatch.setattr(cli, "preset", lambda name: tiny_yaml)
    cli._demo_incremental(tmp_path / "demo")
    table = (tmp_path / "demo" / "comparison.md").read_text()
    # each method by its own classifier, named: iCaRL's nearest mean of exemplars, the others' head
    assert all(
        f"| {m} | {c} | 1 |" in table for m, c in (("finetune", "CNN"), ("icarl", "NME"), ("civc", "CNN"))
    )
    assert (tmp_path / "demo" / "accuracy_per_step.png").stat().st_size > 0
    # icarl started from finetune's base model (same linear head); civc trained its own cosine one
    icarl = json.loads((tmp_path / "demo" / "icarl" / "results.json").read_text())
    civc = json.loads((tmp_path / "demo" / "civc" / "results.json").read_text())
    assert icarl["config"]["train"]["base_model"] == str(tmp_path / "demo" / "finetune")
    assert civc["config"]["train"]["base_model"] is None


def test_logit_adjustment_shifts_the_training_logits_by_the_log_prior() -> None:
    counts = torch.tensor([2, 2, 2, 10, 10])
    ctx = StepContext(1, 3, 5, None, torch.device("cpu"), counts)
    out, y = outputs(0), torch.tensor([0, 3, 4, 1])
    prior = counts.float() / counts.sum()
    for tau in (1.0, 0.5):
        method = build_method("civc", {"logit_adjustment": tau})
        want = torch.nn.functional.cross_entropy(out["logits"] + tau * prior.log(), y)
        assert method.classification_loss(out, y, ctx).item() == pytest.approx(want.item(), rel=1e-6)
    plain = torch.nn.functional.cross_entropy(out["logits"], y)
    assert build_method("civc", {}).classification_loss(out, y, ctx).item() == plain.item()
    base = StepContext(0, 0, 5, None, torch.device("cpu"), counts)  # the base step is balanced: unshifted
    assert (
        build_method("civc", {"logit_adjustment": 1}).classification_loss(out, y, base).item() == plain.item()
    )


def test_each_step_knows_the_class_counts_of_its_training_set(tmp_path: Path, monkeypatch) -> None:
    seen: list[list[int]] = []
    monkeypatch.setattr(
        METHODS["civc"], "begin_step", lambda self, model, ctx, tools: seen.append(ctx.class_counts.tolist())
    )
    run_incremental(tiny(method={"name": "civc", "options": {"exemplar_scale": 1}}), tmp_path / "civc")
    # 6 training videos a class; the memory's 12 whole clips of 4 frames hold all 6 of the 2 base classes,
    # then 3 of each of 4 classes
    assert seen == [[6, 6], [6, 6, 6, 6], [3, 3, 3, 3, 6, 6]]


def test_merge_interpolates_the_backbone_with_the_old_model_and_leaves_the_head() -> None:
    from distillkit.incremental.methods.civc import interpolate_backbone

    def net(seed: int, classes: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        model = torch.nn.Sequential()
        model.add_module("conv", torch.nn.Conv2d(3, 4, 3))
        model.add_module("bn", torch.nn.BatchNorm2d(4))
        model.add_module("head", torch.nn.Linear(4, classes))
        model.bn.running_mean.normal_()
        return model

    old, new = net(0, 2), net(1, 3)
    before = {k: v.clone() for k, v in new.state_dict().items()}
    interpolate_backbone(new, old, 0.25)
    after, was = new.state_dict(), old.state_dict()
    for key in ("conv.weight", "conv.bias", "bn.weight", "bn.running_mean", "bn.running_var"):
        assert torch.allclose(after[key], 0.25 * was[key] + 0.75 * before[key], atol=1e-6), key
    assert torch.equal(after["bn.num_batches_tracked"], before["bn.num_batches_tracked"])  # an integer: kept
    assert torch.equal(after["head.weight"], before["head.weight"])  # grown since the old model: kept
    assert not torch.equal(before["conv.weight"], was["conv.weight"])  # the check above could fail


def test_bn_recalibration_averages_the_batches_statistics_and_restores_the_mode() -> None:
    from distillkit.incremental.methods.civc import recalibrate_batch_norms

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    model[1].running_mean.fill_(5.0)
    batches = [(torch.randn(8, 3) + k, torch.zeros(8)) for k in range(3)]
    recalibrate_batch_norms(model, iter(batches))
    with torch.no_grad():
        h = [model[0](x) for x, _ in batches]
    want_mean = torch.stack([b.mean(0) for b in h]).mean(0)
    want_var = torch.stack([b.var(0, unbiased=True) for b in h]).mean(0)
    assert torch.allclose(model[1].running_mean, want_mean, atol=1e-5)
    assert torch.allclose(model[1].running_var, want_var, atol=1e-5)
    assert not model.training and model[1].momentum == 0.1
    recalibrate_batch_norms(model, iter(()))  # no memory: the statistics stay
    assert torch.allclose(model[1].running_mean, want_mean, atol=1e-5)


def test_civc_with_half_size_frames_keeps_four_times_the_clips_in_the_same_budget(tmp_path: Path) -> None:
    full = run_incremental(tiny(method={"name": "civc", "options": {"exemplar_scale": 1}}), tmp_path / "full")
    small = run_incremental(
        tiny(method={"name": "civc", "options": {"exemplar_scale": 0.5}}), tmp_path / "small"
    )
    assert full["memory"]["frames"] == 48 and "full_frames" not in full["memory"]  # 12 clips of 4 frames
    # 4 × 48 frames of a quarter of the pixels: every training video of the 6 classes (6 each), 144 frames
    assert small["memory"]["frames"] == 144 and small["memory"]["videos"] == 36
    assert small["memory"]["full_frames"] == 36.0 <= 48
    memory = ExemplarMemory.load(tmp_path / "small" / "memory" / "step_002")
    assert memory.frame_scale == 0.5 and all(
        e.size is not None for c in memory.classes for e in memory.exemplars(c)
    )


def test_adaptive_frame_size_keeps_at_full_size_what_shrinking_moves_and_pays_its_pixels(
    tmp_path: Path,
) -> None:
    options = {"exemplar_scale": 0.5, "scale_choice": "adaptive", "scale_tolerance": 0.0}
    strict = run_incremental(tiny(method={"name": "civc", "options": options}), tmp_path / "strict")
    # no smaller clip has exactly its full-size feature: every exemplar at full size, its 4 frames counting 16,
    # so the 192 stored frames of a 48-frame budget hold the 12 clips a full-size memory holds
    assert strict["memory"]["full_size_videos"] == strict["memory"]["videos"] == 12
    assert strict["memory"]["frames"] == 192 and strict["memory"]["full_frames"] == 48.0
    low, median, high = strict["memory"]["shrink_distance_quartiles"]
    assert 0 < low <= median <= high <= 2
    loose = {**options, "scale_tolerance": 2.0}  # the class alone decides
    mixed = run_incremental(tiny(method={"name": "civc", "options": loose}), tmp_path / "loose")
    memory = ExemplarMemory.load(tmp_path / "loose" / "memory" / "step_002")
    kept = [e for c in memory.classes for e in memory.exemplars(c)]
    assert mixed["memory"]["full_size_videos"] == sum(e.size is None for e in kept)
    assert mixed["memory"]["frames"] == sum(4 if e.size else 16 for e in kept) <= 192
    assert mixed["memory"]["full_frames"] == sum(1 if e.size else 4 for e in kept) <= 48
