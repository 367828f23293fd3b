"""TCD: time-channel importance, importance-weighted distillation, temporal diversity, the method and a run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import TINY_INCREMENTAL, interrupt_at, logged, tiny

from distillkit.distill.losses import (
    importance_weights,
    slice_energy,
    tcd_embedding_loss,
    tcd_feature_loss,
    temporal_diversity_loss,
)
from distillkit.incremental.methods import METHODS, StepContext, build_method
from distillkit.incremental.step_data import StepData
from distillkit.models.heads import LocalSimilarityHead, make_head
from distillkit.models.tsm import VideoResNet


# ------------------------------------------------------------------------------------------------ importance
def test_importance_weights_by_hand() -> None:
    g = torch.ones(2, 2, 3, 1, 2)  # N, T, C, H, W
    g[:, 1, 2] = 0.0  # slice (t=1, c=2): no gradient
    g[0, 0, 0] = 2.0
    energy = slice_energy(g)
    # per slice: Σ over samples and space of g²: 2·2·1 = 4; slice (0, 0): 2·4 + 2·1 = 10; slice (1, 2): 0
    want = torch.tensor([[10.0, 4.0, 4.0], [4.0, 4.0, 0.0]])
    torch.testing.assert_close(energy, want)
    torch.testing.assert_close(slice_energy(g[:1]) + slice_energy(g[1:]), energy)  # batches add up
    weights = importance_weights(energy)  # divided by the mean, 26 / 6
    assert weights.shape == (2, 3)
    torch.testing.assert_close(weights, want * 6 / 26)
    assert weights.mean().item() == pytest.approx(1.0) and weights[1, 2].item() == 0.0
    # frame embeddings (N, T, C) have no space to sum over
    torch.testing.assert_close(
        slice_energy(torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])), torch.tensor([[10.0, 4.0]])
    )
    assert torch.equal(importance_weights(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_a_slice_without_importance_is_not_distilled() -> None:
    g = torch.Generator().manual_seed(0)
    features = torch.rand(2, 2, 3, 4, 4, generator=g)
    weights = torch.ones(2, 3)
    weights[1, 2] = 0.0
    old = features.clone()
    old[:, 1, 2] = torch.rand(2, 4, 4, generator=g)  # the old model differs only in slice (1, 2)
    assert tcd_feature_loss(features, old).item() > 0.01
    assert tcd_feature_loss(features, old, weights).item() == 0.0
    old[:, 0, 1] = torch.rand(2, 4, 4, generator=g)
    assert tcd_feature_loss(features, old, weights).item() > 0.01

    frames = torch.rand(2, 2, 3, generator=g)
    old_frames = frames.clone()
    old_frames[:, 1] += torch.tensor([0.0, 0.0, 1.0])  # changes every component after normalisation
    only = torch.zeros(2, 3)
    only[1, 2] = 1.0
    assert tcd_embedding_loss(frames, old_frames, torch.ones(2, 3) - only).item() > 0
    assert tcd_embedding_loss(frames, old_frames, torch.zeros(2, 3)).item() == 0.0


def test_feature_and_embedding_distillation_by_hand() -> None:
    new = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 1, 2)  # squared and normalised: (1, 0)
    old = torch.tensor([1.0, 1.0]).reshape(1, 1, 1, 1, 2)  # (1/√2, 1/√2)
    want = math.sqrt((1 - 1 / math.sqrt(2)) ** 2 + 0.5)
    assert tcd_feature_loss(new, old).item() == pytest.approx(want, rel=1e-6)
    assert tcd_feature_loss(new, old, torch.tensor([[3.0]])).item() == pytest.approx(3 * want, rel=1e-6)
    # two frames: the same slice map twice, so the mean is unchanged and divided by sqrt(T) = sqrt(2)
    two = tcd_feature_loss(new.expand(1, 2, 1, 1, 2), old.expand(1, 2, 1, 1, 2))
    assert two.item() == pytest.approx(want / math.sqrt(2), rel=1e-6)

    frames = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # N=1, T=2, C=2
    old_frames = torch.tensor([[[3.0, 0.0], [1.0, 0.0]]])
    importance = torch.tensor([[1.0, 1.0], [0.5, 1.5]])
    # frame 0 agrees; frame 1: (0 − 1)² · 0.5 + (1 − 0)² · 1.5 = 2; summed over (T, C), divided by T = 2
    assert tcd_embedding_loss(frames, old_frames, importance).item() == pytest.approx(1.0)
    assert tcd_embedding_loss(frames, old_frames).item() == pytest.approx(1.0)


def test_distillation_is_zero_with_zero_gradient_when_old_equals_new() -> None:
    g = torch.Generator().manual_seed(1)
    features = torch.rand(2, 3, 4, 5, 5, generator=g).requires_grad_(True)
    frames = torch.randn(2, 3, 4, generator=g).requires_grad_(True)
    importance = importance_weights(torch.rand(3, 4, generator=g))
    loss = tcd_feature_loss(features, features.detach().clone(), importance)
    loss = loss + tcd_embedding_loss(frames, frames.detach().clone(), importance)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(features.grad, torch.zeros_like(features)) and torch.equal(
        frames.grad, torch.zeros_like(frames)
    )


# ----------------------------------------------------------------------------------------- temporal diversity
def test_temporal_diversity_is_zero_for_orthogonal_maps() -> None:
    maps = torch.zeros(2, 3, 2, 1, 3)  # N, T, C, H, W: each channel lights a different position per frame
    for t in range(3):
        maps[:, t, 0, 0, t] = 1.0 + t
        maps[:, t, 1, 0, (t + 1) % 3] = 2.0
    assert temporal_diversity_loss(maps).item() == 0.0
    maps[:, 2, 1] = 0.0  # a dead map is orthogonal to everything
    assert temporal_diversity_loss(maps).item() == 0.0
    assert temporal_diversity_loss(torch.rand(2, 1, 3, 4, 4)).item() == 0.0  # one frame: nothing to compare


def test_temporal_diversity_by_hand_and_its_gradient_separates_the_frames() -> None:
    maps = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).reshape(1, 2, 1, 1, 2).requires_grad_(True)  # cos = 1/√2
    loss = temporal_diversity_loss(maps)
    # off-diagonal entries ±1/√2: Frobenius norm 1, divided by T(T − 1) = 2
    assert loss.item() == pytest.approx(0.5, rel=1e-6)
    loss.backward()
    # loss = cos/√2; d cos/d v0 = (0, 1/√2), d cos/d v1 = (1, −1)/(2√2): each frame's map is pushed away from the other
    torch.testing.assert_close(maps.grad.reshape(2, 2), torch.tensor([[0.0, 0.5], [0.25, -0.25]]))
    with torch.no_grad():
        assert temporal_diversity_loss(maps - 0.1 * maps.grad).item() < 0.5
    # summed over channels, averaged over the batch
    two = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).reshape(1, 2, 1, 1, 2).expand(3, 2, 2, 1, 2)
    assert temporal_diversity_loss(two).item() == pytest.approx(1.0, rel=1e-6)


# --------------------------------------------------------------------------------------------------- method
def test_tcd_is_registered_with_the_papers_defaults() -> None:
    assert "tcd" in METHODS
    method = build_method("tcd", {})
    o = method.options
    assert (o.feature_weight, o.diversity_weight, o.embedding_weight) == (0.3, 0.01, 0.01)
    assert (o.proxies, o.nca_margin, o.imprint, o.importance, o.feature_scaling) == (
        1,
        0.6,
        True,
        True,
        True,
    )
    assert o.cbf_epochs > 0 and method.needs_old_outputs and method.uses_memory and not method.nme
    head = method.build_head(8, 3)
    assert isinstance(head, LocalSimilarityHead) and head.proxies == 1 and head.out_features == 3
    assert build_method("tcd", {"classifier": "nme"}).nme


def tiny_model() -> VideoResNet:
    torch.manual_seed(0)
    model = VideoResNet("resnet18", 2, num_segments=2, width=0.125)
    model.head = make_head("lsc", model.feature_dim, 3, 2)
    return model.eval().requires_grad_(False)


def test_importance_of_the_old_model() -> None:
    model = tiny_model()
    x = torch.randn(4, 2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 1])
    method = build_method("tcd", {})
    whole = method.measure_importance(model, [(x, y)])
    channels = {"layer1": 8, "layer2": 16, "layer3": 32, "layer4": 64, "frames": 64}
    assert {k: tuple(v.shape) for k, v in whole.items()} == {k: (2, c) for k, c in channels.items()}
    for v in whole.values():
        assert v.mean().item() == pytest.approx(1.0, rel=1e-5) and (v >= 0).all()
    # each sample's own gradient: batches of one and three give what one batch of four gives
    split = method.measure_importance(model, [(x[:1], y[:1]), (x[1:], y[1:])])
    for k in whole:
        torch.testing.assert_close(split[k], whole[k], rtol=1e-4, atol=1e-6)
    # layer4 is averaged over space into the frame features, so its gradient is theirs spread evenly over space
    torch.testing.assert_close(whole["layer4"], whole["frames"], rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())
    assert not any(getattr(model, s)._forward_hooks for s in model.stages)
    assert method.measure_importance(model, []) == {}


def test_loss_adds_the_weighted_parts() -> None:
    method = build_method("tcd", {"stages": ["layer1"]})
    g = torch.Generator().manual_seed(3)
    out = {"cosine": torch.rand(2, 4, generator=g), "scale": torch.tensor(2.0),
           "layer1": torch.rand(2, 3, 4, 5, 5, generator=g), "frames": torch.rand(2, 3, 6, generator=g)}  # fmt: skip
    y = torch.tensor([0, 3])
    ctx = StepContext(step=1, num_old=1, num_seen=4, old_model=None, device=torch.device("cpu"))
    same = {k: v.clone() for k, v in out.items()}
    total, parts = method.loss(out, same, y, ctx)
    parts = logged(parts)
    assert parts["feature"] == 0.0 and parts["embedding"] == 0.0 and parts["diversity"] > 0
    assert total.item() == pytest.approx(parts["ce"] + 0.01 * parts["diversity"], rel=1e-6)
    old = {
        **same,
        "layer1": torch.rand(2, 3, 4, 5, 5, generator=g),
        "frames": torch.rand(2, 3, 6, generator=g),
    }
    total, parts = method.loss(out, old, y, ctx)
    parts = logged(parts)
    want = (parts["ce"] + 0.01 * parts["diversity"] + math.sqrt(4 / 3) * 0.3 * parts["feature"]
            + math.sqrt(1 / 3) * 0.01 * parts["embedding"])  # fmt: skip
    assert parts["feature"] > 0 and parts["embedding"] > 0 and total.item() == pytest.approx(want, rel=1e-6)
    _, base = method.loss(out, None, y, StepContext(0, 0, 4, None, torch.device("cpu")))
    assert set(base) == {"ce", "diversity"}


def test_tcd_stream_from_the_cli(tmp_path: Path) -> None:
    import yaml

    from distillkit.cli import run

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_INCREMENTAL))
    assert run(["incremental", str(config), "--out", str(tmp_path / "run"), "--set", "method.name=tcd"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["method"] == "tcd" and results["classes_per_step"] == [2, 2, 2]
    assert [len(row) for row in results["accuracy_matrix"]] == [1, 2, 3]
    assert len(results["nme"]["accuracy_matrix"]) == 3
    assert all(
        0 < m["frames"] <= TINY_INCREMENTAL["memory"]["budget_frames"] for m in results["memory_per_step"]
    )
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [0, 1, 2]
    assert {"feature", "embedding", "diversity"} <= set(log[1]["loss"]) and "feature" not in log[0]["loss"]


def test_resume_gives_the_uninterrupted_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The importance is measured again when a step starts, so a resumed stream needs no saved method state."""
    from distillkit.jobs.incremental import run_incremental

    cfg = {"method": {"name": "tcd"}}
    reference = run_incremental(tiny(**cfg), tmp_path / "full")
    with monkeypatch.context() as patch:
        interrupt_at(patch, StepData, "train_set", 2)  # as step 2 starts
        with pytest.raises(KeyboardInterrupt):
            run_incremental(tiny(**cfg), tmp_path / "cut")
    resumed = run_incremental(tiny(**cfg), tmp_path / "cut", resume=True)
    for key in ("accuracy_matrix", "nme", "avg_incremental_accuracy"):
        assert resumed[key] == reference[key], key
