"""Model zoo: `build_model(arch, ...)` builds any registered image classifier by name (`models.registry`)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from distillkit.engine.checkpoint import check_state_dict, read_state_dict
from distillkit.models import backbones  # noqa: F401 - registers the built-in backbones
from distillkit.models.registry import BACKBONES, Backbone, backbone_names, get_backbone, register_backbone

__all__ = [
    "BACKBONES",
    "Backbone",
    "backbone_names",
    "build_model",
    "get_backbone",
    "load_weights",
    "register_backbone",
]


def build_model(
    arch: str, num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> nn.Module:
    """Build the image classifier registered as `arch` (one of `backbone_names("image")`)."""
    return get_backbone(arch, "image").build(num_classes, in_channels, width, small_input)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or a checkpoint holding one under 'model') with `weights_only=True`."""
    state = read_state_dict(path)
    check_state_dict(state, model.state_dict(), path)
    model.load_state_dict(state)
