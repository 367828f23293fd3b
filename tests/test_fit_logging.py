"""What `fit` logs of the loss parts: read back from the device once per logging interval, and the same
numbers as the mean of each step's parts (history, metrics.jsonl, progress lines)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import logged, tiny_loader
from torch import nn
from torch._dynamo.utils import counters

from distillkit.compress.pbkd import KDFinetuneObjective
from distillkit.config import OptimConfig, PerformanceConfig
from distillkit.engine.loop import ClassifierObjective, LossParts, fit
from distillkit.engine.precision import job_dtype
from distillkit.engine.tracking import tracking

CPU = torch.device("cpu")


def tiny_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)
    )


def count_reads_by_distillkit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every `Tensor.item`, `Tensor.tolist` and `float(tensor)` called from distillkit's own code (each one
    waits for the device), by name; calls from torch itself (an optimiser's step counter) are not ours."""
    reads: list[str] = []

    def counting(name: str, read: Callable) -> Callable:
        def wrapper(self: torch.Tensor, *args: object) -> object:
            if sys._getframe(1).f_globals.get("__name__", "").startswith("distillkit"):
                reads.append(name)
            return read(self, *args)

        return wrapper

    for name in ("item", "tolist", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    return reads


def test_fit_reads_the_loss_parts_back_once_per_logging_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    student, teacher = tiny_classifier(), tiny_classifier().eval()
    objective = KDFinetuneObjective(student, teacher, alpha=0.5, temperature=2.0)  # parts: ce and kd
    reads = count_reads_by_distillkit(monkeypatch)
    result = fit(objective, tiny_loader(), 10, OptimConfig(), CPU, log_every=4)
    assert [h["step"] for h in result.history] == [4, 8, 10]
    assert all(set(h) == {"step", "ce", "kd"} for h in result.history)
    # one read-back per interval; with a `.item()` per part and step it would be 10 steps x 2 parts = 20
    assert reads == ["tolist"] * 3


class Recorded(ClassifierObjective):
    """Cross-entropy of a small classifier, with parts `ce`, `norm` (the weights' squared norm, not in the
    loss) and, every other step, `sometimes`; records each step's parts as the log would read them."""

    def __init__(self) -> None:
        super().__init__(tiny_classifier())
        self.steps: list[dict[str, float]] = []

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        ce = nn.functional.cross_entropy(self.model(x), y)
        parts = {"ce": ce.detach(), "norm": sum(p.detach().pow(2).sum() for p in self.model.parameters())}
        if len(self.steps) % 2 == 0:
            parts["sometimes"] = ce.detach() * 3
        self.steps.append(logged(parts))
        return ce, parts


def test_logged_losses_are_the_mean_of_each_steps_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "1")  # plain progress lines (stderr is not a terminal here) ...
    monkeypatch.setenv("DISTILLKIT_PROGRESS_SECONDS", "0")  # ... one after every step
    perf = PerformanceConfig(precision="fp64")
    with job_dtype(perf), tracking(False, tmp_path):
        objective = Recorded()
        result = fit(objective, tiny_loader(), 7, OptimConfig(), CPU, "fit", log_every=3, perf=perf)
    assert objective.model[0].weight.dtype == torch.float64
    # by hand: each interval's parts summed in step order (a part a step lacks counting 0), over its steps
    want = []
    for first, last in [(0, 3), (3, 6), (6, 7)]:
        steps = objective.steps[first:last]
        sums: dict[str, float] = {}
        for parts in steps:
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value
        want.append({"step": last, **{name: total / len(steps) for name, total in sums.items()}})
    assert result.history == want  # exact equality
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k not in ("group", "time", "lr")} for line in lines] == want
    progress = capsys.readouterr().err.splitlines()
    for entry in want:
        postfix = ", ".join(f"{k} {v:.3f}" for k, v in entry.items() if k != "step")
        assert any(line.startswith(f"fit: {entry['step']}/7 ") and postfix in line for line in progress), (
            postfix
        )


def test_a_compiled_loss_is_one_graph_with_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`perf.compile` (with dynamo's `eager` backend: traced, no code generation): reading a part back inside the
    loss (`.item()`) would break the graph there; detached parts leave one graph, the same every step."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: real(fn, backend="eager", **kwargs))
    torch.manual_seed(0)
    objective = KDFinetuneObjective(tiny_classifier(), tiny_classifier().eval(), alpha=0.5, temperature=2.0)
    counters.clear()
    result = fit(
        objective, tiny_loader(), 3, OptimConfig(), CPU, log_every=1, perf=PerformanceConfig(compile=True)
    )
    assert [set(h) for h in result.history] == [{"step", "ce", "kd"}] * 3
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"]
