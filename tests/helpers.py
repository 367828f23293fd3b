"""Tiny configs, data and helpers shared by several test modules (`from helpers import ...`).

Fixtures live in conftest.py; what a test calls with its own arguments lives here, so that no test module imports
another.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from distillkit.cli import main
from distillkit.incremental.config import IncrementalConfig


def tiny_loader(
    n: int = 32, channels: int = 3, size: int = 16, classes: int = 4, batch: int = 8
) -> DataLoader:
    """`n` seeded random images of `classes` classes, in batches of `batch`, not shuffled."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


# ---------------------------------------------------------------------------------------------------- train
TINY_TRAIN = (
    "device: cpu\n"
    "data: {name: synthetic, image_size: 32, batch_size: 8, synthetic: {num_classes: 3, train_per_class: 8, "
    "test_per_class: 4}}\n"
    "model: {arch: vgg11, width: 0.125, train: {steps: 2}, optim: {lr: 0.05}}\n"
)
"""A `distillkit train` config (YAML) that runs in seconds."""


# ------------------------------------------------------------------------------------------------- compress
TINY_COMPRESS = """
seed: 1
data:
  name: synthetic
  image_size: 32
  batch_size: 16
  synthetic: {num_classes: 3, train_per_class: 16, test_per_class: 8, channels: 1}
teacher:
  arch: vgg11
  width: 0.125
  train: {steps: 6}
student: {macs_reduction: 2.2}
pbkd:
  stage: {steps: 2}
  finetune: {enabled: true, budget: {steps: 2}}
baselines: {methods: [scratch, kd, fitnets, at]}
profile: {latency_batches: [1, 4], latency_repeats: 2}
"""
"""A `distillkit compress` config (YAML) that runs in seconds."""


def run_cli(*argv: str) -> int:
    """The exit code of `distillkit <argv>`."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return int(exit_info.value.code)


def cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `distillkit ARGV`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return int(info.value.code), captured.out, captured.err


def refused(capsys: pytest.CaptureFixture, *argv: object) -> str:
    """The one-line error of a refused command (asserting exit 2, one line, no traceback), without its prefix."""
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("distillkit: error: "), err
    return err.strip().removeprefix("distillkit: error: ")


# ---------------------------------------------------------------------------------------------- incremental
TINY_INCREMENTAL = {
    "device": "cpu",
    "data": {
        "num_segments": 4,
        "batch_size": 8,
        "eval_batch_size": 16,
        "synthetic": {"num_classes": 6, "train_per_class": 6, "test_per_class": 3, "frames": 4, "size": 16},
    },
    "model": {"width": 0.125, "shift_div": 4},
    "scenario": {"base": 2, "increment": 2},
    "memory": {"budget_frames": 48},
    "train": {"base": {"steps": 3}, "step": {"steps": 3}, "optim": {"name": "adamw", "lr": 0.002}},
    "method": {"name": "icarl"},
}
"""A `distillkit incremental` config that runs in seconds: 6 synthetic classes in 3 steps, iCaRL."""


def tiny(**changes: object) -> IncrementalConfig:
    """`TINY_INCREMENTAL` with whole sections replaced (``memory={...}``) or single fields set
    (``method__name="lwf"``)."""
    cfg = IncrementalConfig.model_validate(json.loads(json.dumps(TINY_INCREMENTAL)))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            setattr(getattr(cfg, section), field, value)
        else:
            setattr(cfg, section, value)
    return cfg


def interrupt_at(monkeypatch: pytest.MonkeyPatch, owner: type, where: str, step: int) -> None:
    """Make `owner.<where>` (a method whose first argument is the step) raise at `step`, as if the process were
    killed there."""
    original = getattr(owner, where)

    def failing(self, s, *args, **kwargs):
        if s == step:
            raise KeyboardInterrupt
        return original(self, s, *args, **kwargs)

    monkeypatch.setattr(owner, where, failing)


def make_run(root: Path, name: str, method: str, avg: float, final: float, forg: float, bwt: float,
             frames: int, nme: float | None = None, seed: int = 0, classifier: str = "cnn",
             other: float | None = None) -> Path:  # fmt: skip
    """A folder `root/name` holding only the `results.json` of a class-incremental run with these summaries (of
    its own `classifier`); `nme`: a CNN run's NME average incremental accuracy, `other`: an NME run's CNN one."""
    d = root / name
    d.mkdir()
    data = {
        "method": method,
        "classifier": classifier,
        "seed": seed,
        "classes_per_step": [4, 3, 3],
        "avg_incremental_accuracy": avg,
        "final_accuracy": final,
        "forgetting": forg,
        "bwt": bwt,
        "memory": {"frames": frames, "bytes": frames * 1000, "videos": frames // 4},
    }
    if classifier == "cnn":
        data["nme"] = None if nme is None else {"avg_incremental_accuracy": nme, "final_accuracy": nme - 5}
    else:
        data["cnn"] = (
            None if other is None else {"avg_incremental_accuracy": other, "final_accuracy": other - 5}
        )
    (d / "results.json").write_text(json.dumps(data))
    return d


def logged(parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts as the log reads them, after checking each is what `fit` expects of an objective: a detached
    0-d tensor."""
    for name, value in parts.items():
        assert isinstance(value, torch.Tensor), f"{name} is a {type(value).__name__}, not a tensor"
        assert value.dim() == 0 and not value.requires_grad, f"{name} is not a detached 0-d tensor"
    return {name: value.item() for name, value in parts.items()}


@contextmanager
def benchmark_module(name: str) -> Iterator[ModuleType]:
    """The script `benchmarks/<name>.py` imported as a module (its siblings importable), removed again after."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
