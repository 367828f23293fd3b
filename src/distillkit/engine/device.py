"""Device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from distillkit.errors import ConfigError


def resolve_device(name: str = "auto", key: str = "device") -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cpu' and 'cuda[:N]' as given, checked against this machine: a
    `ConfigError` naming `key` when CUDA is asked for but absent, or `N` is not one of its GPUs."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{key}: {name!r} is not a device; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{key}: {name!r} is not supported; use 'auto', 'cpu' or 'cuda[:N]'")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(
                f"{key}: {name!r} but CUDA is not available on this machine ({why}); use --set {key}=cpu "
                f"(or {key}=auto)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"{key}: {name!r} but this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                f"(cuda:0..cuda:{count - 1}); use one of them, or --set {key}=auto"
            )
    return device


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """The seed of step `step` of a run seeded `seed`: `seed · 1000 + step`, so a step draws the same numbers
    whichever steps ran before it in this process (a resumed run ends as an uninterrupted one). `stream` gives
    another draw of the step (`+ stream`). The formula is kept as it was, results depend on it: stream 1 of a
    step is stream 0 of the next, and runs of 1000 steps or more reach the seeds of `seed + 1`."""
    return seed * 1000 + step + stream


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
