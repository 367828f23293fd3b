"""Checkpoints: written atomically, read back with `weights_only=True`."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from distillkit.errors import CheckpointError


def save_checkpoint(obj: Any, path: str | Path) -> None:
    """`torch.save` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path) -> Any:
    """Load a checkpoint without executing code from it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():  # a whole pickled object: code, not just weights
            raise CheckpointError(
                f"{path}: not a weights-only checkpoint (it pickles objects, not only tensors); save a state dict"
            ) from None
        raise CheckpointError(_corrupt(path, exc)) from None
    except Exception as exc:  # torch raises OSError, EOFError, RuntimeError, KeyError... on a broken file
        raise CheckpointError(_corrupt(path, exc)) from None


def _corrupt(path: Path, exc: Exception) -> str:
    text = " ".join(str(exc).split())
    detail = exc.__class__.__name__ + (f": {text[:80]}" if text else "")
    try:
        size = f"; {path.stat().st_size} bytes"
    except OSError:
        size = ""
    return f"{path}: truncated or corrupt checkpoint ({detail}{size}); write it again or use another file"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from `path` (a plain one, or a checkpoint holding one under 'model'), read weights-only."""
    state = load_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def check_state_dict(
    state: dict, own: dict, path: str | Path, what: str = "the model", hint: str = ""
) -> None:
    """Raise one CheckpointError naming the first missing, unexpected and wrong-shaped keys, if any."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} shape mismatches (first '{k}': {tuple(state[k].shape)} in the file, "
            f"{tuple(own[k].shape)} in {what})"
        )
        if hint and k == "conv1.weight":
            parts.append(hint)
    if missing:
        parts.append(f"{len(missing)} keys missing (first '{missing[0]}')")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (first '{unexpected[0]}')")
    raise CheckpointError(f"{path} does not match {what}: " + "; ".join(parts))
