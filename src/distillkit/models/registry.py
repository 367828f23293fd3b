"""Backbones by name: every network the configs can name (`model.arch`, `teacher.arch`) is registered here.

A backbone is a builder function decorated with `register_backbone`, in a module of `distillkit.models.backbones`
(every module there is imported with the package, so adding a backbone is adding one file; a backbone defined
elsewhere registers itself when its module is imported). The builder takes the number of classes, input channels,
a width multiplier and whether inputs are small (CIFAR-size), and returns a fresh, randomly initialised network::

    @register_backbone("resnet18", tasks=("image", "video"))
    def resnet18(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> ResNet:
        ...

`tasks` says which jobs may use it:

- `image`: a classifier of images (N, C, H, W) → logits (N, K), for `distillkit train` and `compress`.
- `video`: a residual network that `VideoResNet` (TSM / TSN) runs on every frame of a clip. It has the modules
  `conv1`, `bn1`, `relu` (and optionally `maxpool`), then its stages (named by a `stages` attribute, by default
  `layer1`..`layer4`) of residual units whose `conv1` receives the temporal shift, `avgpool` and the linear
  classifier `fc`, as a torchvision ResNet has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from torch import nn

from distillkit.errors import ConfigError

Task = Literal["image", "video"]


class BackboneBuilder(Protocol):
    """Builds a fresh network (see the module docstring for what each task needs of it)."""

    def __call__(
        self, num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
    ) -> nn.Module: ...


@dataclass(frozen=True)
class Backbone:
    """A registered backbone: its name, its builder and the tasks it serves."""

    name: str
    build: BackboneBuilder
    tasks: tuple[Task, ...]


BACKBONES: dict[str, Backbone] = {}
"""Every registered backbone by name."""

B = TypeVar("B", bound=BackboneBuilder)

_WHAT = {"image": "model arch", "video": "video backbone"}


def register_backbone(name: str, *, tasks: tuple[Task, ...] = ("image",)) -> Callable[[B], B]:
    """Decorator registering a builder under `name` for `tasks`; returns the builder unchanged."""
    if not tasks or not set(tasks) <= set(_WHAT):
        raise ValueError(f"backbone {name!r}: tasks must be some of {sorted(_WHAT)}, got {tasks!r}")

    def register(build: B) -> B:
        if not name or name in BACKBONES:
            raise ValueError(f"backbone name {name!r} is empty or already registered")
        BACKBONES[name] = Backbone(name, build, tuple(tasks))
        return build

    return register


def backbone_names(task: Task) -> list[str]:
    """The registered backbones of `task`, sorted."""
    return sorted(name for name, backbone in BACKBONES.items() if task in backbone.tasks)


def get_backbone(name: str, task: Task) -> Backbone:
    """The backbone registered as `name` for `task`; a `ConfigError` listing the registered ones otherwise."""
    backbone = BACKBONES.get(name)
    if backbone is None or task not in backbone.tasks:
        raise ConfigError(f"unknown {_WHAT[task]} '{name}'; registered: {', '.join(backbone_names(task))}")
    return backbone


def init_conv_bn(model: nn.Module) -> None:
    """He (fan-out) initialisation of every conv of `model`; every batch norm to weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
