"""What makes each class-incremental method that method: losses by hand, heads, registry, NME means."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import logged, tiny

from distillkit.distill.losses import less_forget_loss, margin_ranking_loss, pod_flat_loss, pod_spatial_loss
from distillkit.errors import ConfigError
from distillkit.incremental.methods import METHODS, StepContext, StepTools, build_method
from distillkit.models.heads import CosineHead, grow_head, make_head
from distillkit.models.tsm import VideoResNet


def test_registry_and_flags() -> None:
    assert {"finetune", "joint", "lwf", "icarl", "lucir", "podnet"} <= set(METHODS)
    assert not METHODS["lwf"].uses_memory and not METHODS["finetune"].uses_memory
    assert METHODS["icarl"].uses_memory and METHODS["icarl"].nme
    assert METHODS["joint"].train_on == "seen" and METHODS["finetune"].train_on == "new"
    assert METHODS["lucir"].head == "cosine" and build_method("podnet", {}).head == "cosine"
    assert build_method("podnet", {"classifier": "lsc"}).head == "lsc"
    with pytest.raises(ConfigError, match=r"method.options of 'lucir'.*'margin'"):
        build_method("lucir", {"margin": -1})


def test_grow_head_keeps_old_outputs() -> None:
    for kind in ("linear", "cosine", "lsc"):
        head = make_head(kind, 8, 3)
        grown = grow_head(head, 5)
        x = torch.randn(4, 8)
        assert grown(x).shape == (4, 5)
        assert torch.allclose(grown(x)[:, :3], head(x), atol=1e-6)  # BLAS rounding differs with the shape
    with pytest.raises(ValueError, match="shrink"):
        grow_head(make_head("linear", 8, 3), 2)


def test_cosine_head_is_scale_invariant() -> None:
    head = CosineHead(6, 4, scale=10.0)
    x = torch.randn(3, 6)
    assert torch.allclose(head(x), head(5 * x), atol=1e-5)
    assert head(x).abs().max() <= 10.0 + 1e-5


def test_margin_ranking_by_hand() -> None:
    # 2 old classes (0, 1), 3 new (2, 3, 4); sample 0 is old (class 1), sample 1 is new (ignored)
    scores = torch.tensor([[0.1, 0.6, 0.5, 0.9, 0.2], [0.0, 0.0, 0.9, 0.0, 0.0]])
    targets = torch.tensor([1, 2])
    # hard negatives of sample 0 among new classes: 0.9, 0.5 → relu(0.5 - 0.6 + 0.9) = 0.8, relu(0.5 - 0.6 + 0.5) = 0.4
    loss = margin_ranking_loss(scores, targets, num_old=2, margin=0.5, hard_negatives=2)
    assert loss.item() == pytest.approx(0.6)
    assert margin_ranking_loss(scores, torch.tensor([2, 3]), 2, 0.5, 2).item() == 0.0  # no old samples
    # under DDP each process divides by its share of the global pair count: here 2 pairs of 6 over 2 processes
    seen = []
    share = margin_ranking_loss(scores, targets, 2, 0.5, 2, pairs=lambda n: seen.append(n) or 3.0)
    assert seen == [2] and share.item() == pytest.approx(1.2 / 3)
    assert margin_ranking_loss(scores, torch.tensor([2, 3]), 2, 0.5, 2, pairs=seen.append).item() == 0.0
    assert seen == [2, 0]  # a process without old samples still takes part in the count (a collective)


def test_less_forget_and_pod_by_hand() -> None:
    f, g = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    assert less_forget_loss(f, g).item() == pytest.approx(1.0)  # orthogonal
    assert less_forget_loss(f, 3 * f).item() == pytest.approx(0.0, abs=1e-6)
    assert pod_flat_loss(f, g).item() == pytest.approx(math.sqrt(5))
    # POD-spatial: one channel 2×2 map; width pooling of squares [a²+b², c²+d²], height pooling [a²+c², b²+d²]
    a = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
    va = F.normalize(torch.tensor([1.0, 0.0, 1.0, 0.0]), dim=0)
    vb = F.normalize(torch.tensor([0.0, 1.0, 0.0, 1.0]), dim=0)
    assert pod_spatial_loss(a, b).item() == pytest.approx((va - vb).norm().item())
    assert pod_spatial_loss(a, 2 * a).item() == pytest.approx(0.0, abs=1e-6)  # normalised


def _outputs(logits: torch.Tensor, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": logits, "pooled": pooled, "cosine": logits / 16}


def test_lwf_loss_is_ce_on_new_logits_plus_kd_on_old_logits() -> None:
    ctx = StepContext(step=1, num_old=2, num_seen=4, old_model=None, device=torch.device("cpu"))
    logits, old_logits = torch.randn(3, 4), torch.randn(3, 2)
    y = torch.tensor([2, 3, 2])
    p = F.log_softmax(logits[:, :2] / 2, 1)
    q = F.softmax(old_logits / 2, 1)
    kd = (q * (q.log() - p)).sum(1).mean() * 4
    # default: cross-entropy among the new classes only (labels 2, 3 → 0, 1 of logits[:, 2:])
    loss, parts = build_method("lwf", {"temperature": 2.0, "weight": 0.5}).loss(
        {"logits": logits}, {"logits": old_logits}, y, ctx
    )
    ce_new = F.cross_entropy(logits[:, 2:], torch.tensor([0, 1, 0])).item()
    assert loss.item() == pytest.approx(ce_new + 0.5 * kd.item(), rel=1e-5)
    assert set(logged(parts)) == {"ce", "kd"}
    # raising an old logit leaves the new-class cross-entropy as it is
    bumped = logits.clone()
    bumped[:, 0] += 5
    assert build_method("lwf", {}).classification_loss({"logits": bumped}, y, ctx).item() == pytest.approx(
        ce_new
    )
    # over every seen class, as iCaRL (exemplars of old classes in the batch) always does
    everything = F.cross_entropy(logits, y).item() + 0.5 * kd.item()
    loss_all, _ = build_method("lwf", {"temperature": 2.0, "weight": 0.5, "new_logits_only": False}).loss(
        {"logits": logits}, {"logits": old_logits}, y, ctx
    )
    assert loss_all.item() == pytest.approx(everything, rel=1e-5)
    y_mixed = torch.tensor([0, 3, 2])  # an exemplar of old class 0
    icarl_loss, _ = build_method("icarl", {"temperature": 2.0, "weight": 0.5}).loss(
        {"logits": logits}, {"logits": old_logits}, y_mixed, ctx
    )
    assert icarl_loss.item() == pytest.approx(
        F.cross_entropy(logits, y_mixed).item() + 0.5 * kd.item(), rel=1e-5
    )
    with pytest.raises(Exception, match="new_logits_only"):
        build_method("icarl", {"new_logits_only": True})


def test_lucir_weights_less_forget_by_class_ratio() -> None:
    method = build_method("lucir", {"lambda_base": 5.0, "ranking_weight": 0.0})
    ctx = StepContext(step=1, num_old=8, num_seen=10, old_model=None, device=torch.device("cpu"))
    logits = torch.randn(2, 10)
    pooled, old_pooled = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    loss, parts = method.loss(_outputs(logits, pooled), {"pooled": old_pooled}, torch.tensor([9, 0]), ctx)
    expected = F.cross_entropy(logits, torch.tensor([9, 0])).item() + 5.0 * math.sqrt(8 / 2) * 0.5
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert logged(parts)["less_forget"] == pytest.approx(0.5)


def test_lucir_imprints_new_weights_from_class_means() -> None:
    model = VideoResNet("resnet18", 2, num_segments=2, width=0.125)
    model.head = make_head("cosine", model.feature_dim, 2)
    model.head = grow_head(model.head, 4)
    d = model.feature_dim
    feats = torch.zeros(4, d)
    feats[0, 0], feats[1, 0], feats[2, 1], feats[3, 1] = 1.0, 3.0, 2.0, 2.0
    labels = torch.tensor([2, 2, 3, 3])
    tools = StepTools(new_features=lambda: (feats, labels), finetune_head_on_memory=lambda e, lr: None)
    ctx = StepContext(step=1, num_old=2, num_seen=4, old_model=None, device=torch.device("cpu"))
    old_norm = model.head.weight[:2].norm(dim=1).mean().item()
    build_method("lucir", {}).begin_step(model, ctx, tools)
    w = model.head.weight.detach()
    assert torch.allclose(w[2], torch.eye(d)[0] * old_norm, atol=1e-6)
    assert torch.allclose(w[3], torch.eye(d)[1] * old_norm, atol=1e-6)


@pytest.mark.parametrize("name", ["lucir", "podnet", "tcd", "civc"])
def test_similarity_head_methods_imprint_and_balance_by_their_options(name: str) -> None:
    """The four methods on a similarity head share one imprint-then-balance contract: imprint when `imprint` is
    on and the step is incremental, class-balanced fine-tuning for `cbf_epochs` at `cbf_lr` when it ends."""
    calls: list[tuple] = []
    tools = StepTools(
        new_features=lambda: calls.append(("features",)) or (torch.zeros(0, 4), torch.zeros(0)),
        finetune_head_on_memory=lambda epochs, lr: calls.append(("cbf", epochs, lr)),
    )
    model = torch.nn.Module()
    model.head = make_head("cosine", 4, 2)
    base = StepContext(step=0, num_old=0, num_seen=2, old_model=None, device=torch.device("cpu"))
    step = StepContext(step=1, num_old=2, num_seen=2, old_model=None, device=torch.device("cpu"))
    method = build_method(name, {"cbf_epochs": 1.5, "cbf_lr": 0.3, "imprint": True, "importance": False}
                          if name == "tcd" else {"cbf_epochs": 1.5, "cbf_lr": 0.3, "imprint": True})  # fmt: skip
    method.begin_step(model, base, tools)
    method.end_step(model, base, tools)
    assert calls == []  # nothing at the base step
    method.begin_step(model, step, tools)
    method.end_step(model, step, tools)
    assert calls == [("features",), ("cbf", 1.5, 0.3)]
    calls.clear()
    whole = {"cbf_epochs": 1.5, "cbf_lr": 0.3, "imprint": False, "cbf_network": True, "cbf_network_lr": 0.04}
    method = build_method(name, {**whole, "importance": False} if name == "tcd" else whole)
    with pytest.raises(ConfigError, match="cannot fine-tune the whole network"):
        method.end_step(model, step, tools)  # a runner without the tool
    tools.finetune_network_on_memory = lambda epochs, lr: calls.append(("network", epochs, lr))
    method.end_step(model, step, tools)
    assert calls == [("network", 1.5, 0.04)]  # the whole network instead of the head, at its own rate
    calls.clear()
    off = {"cbf_epochs": 0, "imprint": False}
    method = build_method(name, {**off, "importance": False} if name == "tcd" else off)
    method.begin_step(model, step, tools)
    method.end_step(model, step, tools)
    assert calls == []


def test_method_flags_follow_options_per_instance() -> None:
    """Flags an option chooses are the instance's, not the class's: two civc instances differ."""
    plain, nme = build_method("civc", {}), build_method("civc", {"classifier": "nme", "head": "linear"})
    assert (plain.nme, plain.head, plain.old_model_batch_stats) == (False, "cosine", False)
    assert (nme.nme, nme.head) == (True, "linear")
    assert build_method("civc", {"old_batch_stats": True}).old_model_batch_stats is True
    assert build_method("tcd", {"classifier": "nme"}).nme and not build_method("tcd", {}).nme
    assert build_method("podnet", {"classifier": "lsc"}).head == "lsc" and METHODS["podnet"].head == "cosine"


def test_podnet_distils_every_stage_frame_by_frame() -> None:
    method = build_method("podnet", {"stages": ["layer1"], "pod_spatial": 1.0, "pod_flat": 0.0})
    ctx = StepContext(step=1, num_old=2, num_seen=3, old_model=None, device=torch.device("cpu"))
    feat = torch.rand(2, 3, 4, 5, 5)  # N, T, C, H, W
    same = {"logits": torch.zeros(2, 3), "pooled": torch.ones(2, 4), "layer1": feat}
    loss, parts = method.loss(
        same, {"pooled": torch.ones(2, 4), "layer1": feat.clone()}, torch.tensor([2, 2]), ctx
    )
    assert logged(parts)["pod_spatial"] == pytest.approx(0.0, abs=1e-6)
    moved = {"pooled": torch.ones(2, 4), "layer1": feat.flip(-1)}
    _, parts = method.loss(same, moved, torch.tensor([2, 2]), ctx)
    expected = pod_spatial_loss(feat.flatten(0, 1), feat.flip(-1).flatten(0, 1)).item()
    assert logged(parts)["pod_spatial"] == pytest.approx(expected) and expected > 0
    # without `stages`, every stage output ("layer*") is distilled, frame by frame, and the losses averaged
    every_stage = build_method("podnet", {"pod_spatial": 1.0, "pod_flat": 0.0})
    deeper = torch.rand(2, 3, 6, 3, 3)
    reversed_frames = deeper.flip(
        1
    )  # the same frames in another order: pooling over the clip would not see it
    old = {"pooled": torch.ones(2, 4), "layer1": feat.flip(-1), "layer2": reversed_frames}
    _, parts = every_stage.loss({**same, "layer2": deeper}, old, torch.tensor([2, 2]), ctx)
    per_frame = pod_spatial_loss(deeper.flatten(0, 1), reversed_frames.flatten(0, 1)).item()
    assert per_frame > 0
    assert logged(parts)["pod_spatial"] == pytest.approx((expected + per_frame) / 2)


def test_local_similarity_classifier_by_hand() -> None:
    from distillkit.models.heads import LocalSimilarityHead, imprint

    head = LocalSimilarityHead(2, 2, proxies=2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0]])
    # class 0: cosines (1, 0) -> softmax weights (e/(e+1), 1/(e+1)) -> similarity e/(e+1); class 1: (-1, 0)
    e = math.e
    want = torch.tensor([[e / (e + 1), (-1 / e) / (1 / e + 1)]])
    torch.testing.assert_close(head.cosine(x), want)
    torch.testing.assert_close(head(x), head.sigma * want)
    assert head.out_features == 2 and make_head("lsc", 2, 3, 4).weight.shape == (12, 2)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    imprint(head, features, torch.tensor([1, 1, 1, 1]), range(1, 2))
    proxies = F.normalize(head.weight[2:], dim=1)
    unit = F.normalize(features, dim=1)  # imprinting averages normalised samples
    torch.testing.assert_close(proxies[0], F.normalize(unit[0] + unit[2], dim=0))  # samples 0 and 2
    torch.testing.assert_close(proxies[1], F.normalize(unit[1] + unit[3], dim=0))  # samples 1 and 3
    assert head.weight[:2].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # class 0 untouched


def test_nca_loss_by_hand() -> None:
    from distillkit.distill.losses import nca_loss

    s = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    eta, delta = 2.0, 0.5
    first = max(0.0, math.log(math.exp(0.2) + math.exp(0.4)) - (1.8 - 1.0))
    second = max(0.0, math.log(math.exp(0.2) + math.exp(0.4)) - (0.6 - 1.0))
    assert nca_loss(s, y, eta, delta).item() == pytest.approx((first + second) / 2, rel=1e-6)
    assert nca_loss(torch.tensor([[5.0, -5.0]]), torch.tensor([0]), 1.0, 0.0).item() == 0.0  # hinge


def test_podnet_local_similarity_classifier_trains_with_nca() -> None:
    """`classifier: lsc` gives PODNet's local similarity classifier with `proxies` per class, trained with the NCA
    loss with margin `nca_margin` (not cross-entropy): the loss by hand, and a few steps of SGD lower it."""
    from distillkit.models.heads import LocalSimilarityHead

    method = build_method("podnet", {"classifier": "lsc", "proxies": 3, "nca_margin": 0.3})
    head = method.build_head(8, 4)
    assert isinstance(head, LocalSimilarityHead) and head.proxies == 3 and head.out_features == 4
    assert head.weight.shape == (4 * 3, 8)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(4)
    x = torch.randn(4, 8, generator=g)[y] + 0.3 * torch.randn(16, 8, generator=g)  # 4 clusters of 4 samples
    ctx = StepContext(step=0, num_old=0, num_seen=4, old_model=None, device=torch.device("cpu"))

    def outputs() -> dict[str, torch.Tensor]:
        return {"logits": head(x), "cosine": head.cosine(x), "scale": head.sigma}

    # [log Σ_{i≠y} exp(η s_i) − η (s_y − δ)]₊ with the head's similarities s and scale η, mean over the batch
    out = outputs()
    s, eta = out["cosine"].tolist(), head.sigma.item()
    hinges = [
        max(0.0, math.log(sum(math.exp(eta * s[n][i]) for i in range(4) if i != t)) - eta * (s[n][t] - 0.3))
        for n, t in enumerate(y.tolist())
    ]
    by_hand = sum(hinges) / len(hinges)
    assert by_hand > 0
    loss, _ = method.loss(out, None, y, ctx)  # the base step: the classification loss alone
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert method.classification_loss(out, y, ctx).item() == pytest.approx(by_hand, rel=1e-5)
    assert abs(loss.item() - F.cross_entropy(out["logits"], y).item()) > 0.1
    optimiser = torch.optim.SGD(head.parameters(), lr=0.05)
    losses = []
    for _ in range(10):
        loss, _ = method.loss(outputs(), None, y, ctx)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert (head(x).argmax(1) == y).all()


def test_podnet_lsc_stream_trains_every_step_with_nca(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a stream, every step trains its seen classes with the NCA loss at the configured margin."""
    from distillkit.distill.losses import nca_loss
    from distillkit.incremental.methods import podnet
    from distillkit.jobs.incremental import run_incremental

    calls: list[tuple[int, float]] = []

    def spy(
        similarities: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor, margin: float
    ) -> torch.Tensor:
        calls.append((similarities.shape[1], margin))
        return nca_loss(similarities, targets, scale, margin)

    monkeypatch.setattr(podnet, "nca_loss", spy)
    options = {"classifier": "lsc", "proxies": 3, "nca_margin": 0.3}
    results = run_incremental(tiny(method={"name": "podnet", "options": options}), tmp_path)
    assert [len(row) for row in results["accuracy_matrix"]] == [1, 2, 3]
    widths = [width for width, _ in calls]
    assert all(widths.count(seen) >= 3 for seen in (2, 4, 6))  # 3 training steps over 2, 4, then 6 classes
    assert set(widths) == {2, 4, 6} and {margin for _, margin in calls} == {0.3}


def test_keep_rows_leaves_the_first_rows_exactly_as_they_were() -> None:
    """Under AdamW with weight decay, rows kept by `keep_rows` end bit-for-bit as they began; the others train."""
    from distillkit.incremental.training import keep_rows

    torch.manual_seed(0)
    head = make_head("cosine", 4, 5)
    before = head.weight.detach().clone()
    optimiser = torch.optim.AdamW(head.parameters(), lr=0.1, weight_decay=0.1)
    x, y = torch.randn(8, 4), torch.arange(8) % 5
    with keep_rows(head.weight, 3):
        for _ in range(5):
            optimiser.zero_grad()
            F.cross_entropy(head(x), y).backward()
            assert head.weight.grad[:3].abs().sum() == 0 and head.weight.grad[3:].abs().sum() > 0
            optimiser.step()
    assert torch.equal(head.weight[:3], before[:3])
    assert not torch.equal(head.weight[3:], before[3:])
    optimiser.zero_grad()
    F.cross_entropy(head(x), y).backward()
    assert head.weight.grad[:3].abs().sum() > 0  # the hook is gone after the block


@pytest.mark.parametrize("name", ["lucir", "civc", "tcd"])
def test_fix_old_weights_fixes_the_old_classes_rows_in_incremental_steps(name: str) -> None:
    """`fix_old_weights` names the old classes' rows (every proxy of each on a local-similarity head), and only in
    incremental steps; off by default."""
    extra = {"importance": False} if name == "tcd" else {}
    method = build_method(name, {"fix_old_weights": True, **extra})
    head = make_head(method.head, 4, 5)
    rows = 10 if method.head == "lsc" else 1  # TCD's local-similarity head keeps 10 proxies a class
    cpu = torch.device("cpu")
    base = StepContext(step=0, num_old=0, num_seen=3, old_model=None, device=cpu)
    step = StepContext(step=2, num_old=3, num_seen=5, old_model=None, device=cpu)
    assert method.fixed_head_rows(head, base) == 0
    assert method.fixed_head_rows(head, step) == 3 * rows
    assert build_method(name, extra).fixed_head_rows(head, step) == 0


@pytest.mark.parametrize("fix", [True, False])
def test_a_stream_with_fixed_old_weights_trains_only_the_new_rows(
    fix: bool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a LUCIR stream with `fix_old_weights` (and no class-balanced fine-tuning), each incremental step's
    training leaves the old classes' head rows bit-for-bit as they were and trains the new ones; without it, the
    old rows train too."""
    from distillkit.incremental.training import StepTrainer
    from distillkit.jobs.incremental import run_incremental

    seen: list[tuple[int, bool, bool]] = []
    train = StepTrainer.train

    def spy(self, step, model, old_model, ctx, loader):
        before = model.head.weight.detach().clone()
        result = train(self, step, model, old_model, ctx, loader)
        after, k = model.head.weight.detach(), ctx.num_old
        seen.append((step, torch.equal(after[:k], before[:k]), torch.equal(after[k:], before[k:])))
        return result

    monkeypatch.setattr(StepTrainer, "train", spy)
    run_incremental(tiny(method={"name": "lucir", "options": {"fix_old_weights": fix}}), tmp_path)
    assert seen == [(0, True, False), (1, fix, False), (2, fix, False)]
