"""Model zoo: `build_model(arch, ...)` builds any registered classifier by name."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from distillkit.engine.checkpoint import check_state_dict, read_state_dict
from distillkit.errors import ConfigError
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
    state = read_state_dict(path)
    check_state_dict(state, model.state_dict(), path)
    model.load_state_dict(state)
