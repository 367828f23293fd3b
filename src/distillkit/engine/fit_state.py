"""A training run's state at the end of an epoch, kept so that `fit` goes on from there after a crash.

`fit(..., resumable=Resumable(path, module))` writes, after every full epoch and after the last step, the module's
weights and buffers, the optimiser, schedule and gradient-scaler states, the step, the samples seen, the loss
history, and the random states that decide what comes next (Python, NumPy, torch and CUDA, and the loader's
shuffling generator). Started again with the file present, `fit` loads it and continues with the next epoch (or,
when the file was written after the last step, trains no more; `seconds` then counts only this process's part).
With `num_workers: 0` the resumed run is the uninterrupted one, bit for bit; with loader workers, the workers'
augmentation draws after the resume differ. Under torchrun rank 0 writes the file (the processes hold the same
weights and optimiser states) and every process resumes from it, so the other processes' random draws after a
resume differ from the uninterrupted run's. Written atomically and read weights-only, like every checkpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.engine import distributed
from distillkit.engine.checkpoint import load_checkpoint, save_checkpoint
from distillkit.errors import CheckpointError


@dataclass
class Resumable:
    """Where `fit` keeps its state at each epoch's end, and the module whose weights and buffers it trains."""

    path: Path
    module: nn.Module


@dataclass
class FitProgress:
    """What `fit` had done when its state was written."""

    step: int
    epoch: int
    samples: int
    history: list[dict[str, float]] = field(default_factory=list)
    interval: list[dict[str, torch.Tensor]] = field(default_factory=list)


def _random_states(loader: DataLoader) -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if loader.generator is not None:
        states["loader"] = loader.generator.get_state()
    return states


def _restore_random_states(states: dict[str, Any], loader: DataLoader) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = states["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"]), p["gauss"]))
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "loader" in states and loader.generator is not None:
        loader.generator.set_state(states["loader"])


def save_fit_state(
    resumable: Resumable,
    steps: int,
    progress: FitProgress,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    loader: DataLoader,
) -> None:
    """Write the state of a run of `steps` steps after `progress.step` steps (at an epoch's end; rank 0 only)."""
    if not distributed.is_main():
        return
    save_checkpoint(
        {
            "steps": steps,
            "step": progress.step,
            "epoch": progress.epoch,
            "samples": progress.samples,
            "history": progress.history,
            "interval": progress.interval,
            "module": resumable.module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "random": _random_states(loader),
        },
        resumable.path,
    )


def load_fit_state(
    resumable: Resumable,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    loader: DataLoader,
) -> FitProgress | None:
    """The progress of the run whose state `resumable` holds, with every state restored; None without a file."""
    path = resumable.path
    if not path.is_file():
        return None
    state = load_checkpoint(path)
    saved = state.get("steps") if isinstance(state, dict) else None
    if saved != steps:
        raise CheckpointError(
            f"{path}: the saved training state is of another run ({saved} steps, this one has {steps}); remove it "
            "to train from the start"
        )
    resumable.module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    _restore_random_states(state["random"], loader)
    return FitProgress(state["step"], state["epoch"], state["samples"], state["history"], state["interval"])
