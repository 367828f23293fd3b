"""Model zoo: `build_model(arch, ...)` builds any registered classifier by name."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distillkit.errors import CheckpointError, ConfigError
from distillkit.models.resnet import _DEPTHS, build_resnet
from distillkit.models.vgg import VGG, VGG_LAYOUTS

ARCHS = sorted([*VGG_LAYOUTS, *_DEPTHS])


def build_model(
    arch: str, num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> nn.Module:
    """Build classifier `arch` (one of `ARCHS`)."""
    if arch in VGG_LAYOUTS:
        return VGG(VGG_LAYOUTS[arch], num_classes, in_channels, width, small_input)
    if arch in _DEPTHS:
        return build_resnet(arch, num_classes, in_channels, width, small_input)
    raise ConfigError(f"unknown model arch '{arch}'; available: {', '.join(ARCHS)}")


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or a checkpoint holding one under 'model') with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with code in it, or not a torch file at all
        raise CheckpointError(
            f"{path}: cannot be read as a weights-only checkpoint ({exc.__class__.__name__})"
        ) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(
                f"shape of '{k}' is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
            )
        if missing:
            parts.append(f"{len(missing)} keys missing (first '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first '{unexpected[0]}')")
        raise CheckpointError(f"{path} does not match the model: " + "; ".join(parts))
    model.load_state_dict(state)
