"""Temporal Shift Module (Lin, Gan, Han, ICCV 2019) and TSN on any registered video backbone: the torchvision
ResNets or the CIFAR ResNets (3 stages; images run as one-frame clips) of `models.backbones`.

A clip (N, T, C, H, W) runs through a 2D ResNet as N*T frames. With the shift on, every residual unit first shifts
part of its branch input's channels along time ("residual shift": before `conv1`, the identity path untouched).
Per-frame features are averaged over time (TSN average consensus) and classified by one linear `head`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distillkit.engine.checkpoint import check_state_dict, read_state_dict
from distillkit.errors import ConfigError
from distillkit.models.registry import get_backbone

STAGES = ("layer1", "layer2", "layer3", "layer4")
"""Stages of a torchvision ResNet; the CIFAR ResNets have `layer1`..`layer3` (see `VideoResNet.stages`)."""


def temporal_shift(x: Tensor, num_segments: int, shift_div: int = 8) -> Tensor:
    """Shift channels of frames (N*T, C, H, W) along time, out of place; returns the same shape.

    Channels [0, C/shift_div) move one step back in time (frame t gets frame t+1's), channels
    [C/shift_div, 2C/shift_div) one step forward (frame t gets frame t-1's), the rest stay; the vacated ends
    are zero. With nothing to shift (C < shift_div or one segment) `x` itself is returned.
    """
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(f"batch of {nt} frames is not a multiple of num_segments={num_segments}")
    fold = c // shift_div
    if fold == 0 or num_segments == 1:
        return x
    # no sizes computed in Python, so that an ONNX export keeps the batch dynamic; pads are (W, H, C, T) pairs
    x = x.unflatten(0, (-1, num_segments))
    back = F.pad(x[:, 1:, :fold], (0, 0, 0, 0, 0, 0, 0, 1))
    forward = F.pad(x[:, :-1, fold : 2 * fold], (0, 0, 0, 0, 0, 0, 1, 0))
    return torch.cat([back, forward, x[:, :, 2 * fold :]], dim=2).flatten(0, 1)


class TemporalShift(nn.Module):
    """`temporal_shift` as a parameter-free module."""

    def __init__(self, num_segments: int, shift_div: int = 8) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.shift_div = shift_div

    def forward(self, x: Tensor) -> Tensor:
        return temporal_shift(x, self.num_segments, self.shift_div)

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}"


class ShiftConv2d(nn.Conv2d):
    """A `Conv2d` that temporally shifts its input first: TSM's residual shift when it is a unit's `conv1`.

    It is a `Conv2d` with the same parameters, so state dicts, MAC counts and module names stay those of the
    2D network (a TSM, a TSN and a torchvision ResNet load each other's weights).
    """

    def __init__(self, *args, num_segments: int, shift_div: int = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_segments = num_segments
        self.shift_div = shift_div

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, num_segments: int, shift_div: int = 8) -> ShiftConv2d:
        """A shifting copy of `conv` that shares its parameters."""
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            num_segments=num_segments,
            shift_div=shift_div,
        )
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(temporal_shift(x, self.num_segments, self.shift_div))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_segments={self.num_segments}, shift_div={self.shift_div}"


def add_temporal_shift(model: nn.Module, num_segments: int, shift_div: int = 8) -> None:
    """Turn `conv1` of every residual unit in the stages of `model` (its `stages` attribute, else `layer1`..
    `layer4` as in a torchvision ResNet) into a `ShiftConv2d`."""
    for stage in getattr(model, "stages", STAGES):
        for unit in getattr(model, stage):
            if not isinstance(unit.conv1, ShiftConv2d):
                unit.conv1 = ShiftConv2d.from_conv(unit.conv1, num_segments, shift_div)


class VideoResNet(nn.Module):
    """TSM (`shift=True`) or TSN (`shift=False`) on a ResNet: clips (N, T, C, H, W) → logits (N, K).

    `arch` is a registered video backbone (`models.registry`): a torchvision ResNet (resnet18/34/50; stages
    `layer1`..`layer4`), a CIFAR ResNet of He et al. (resnet20/32/44/56; stages `layer1`..`layer3`, always a 3×3
    stem, `small_input` unused) or one of your own. `stages` names the stages `forward_features` returns. Module names are those of the 2D network, except that
    the classifier `fc` is `head`, an `nn.Linear` on the clip feature (the mean of the per-frame features; for a
    linear head the same as averaging per-frame logits). `pretrained` is a local state dict file of the 2D
    network (e.g. torchvision's ImageNet weights); its `fc` is ignored. With one segment the shift is a no-op.
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        num_segments: int,
        width: float = 1.0,
        shift: bool = True,
        shift_div: int = 8,
        small_input: bool = True,
        in_channels: int = 3,
        pretrained: str | Path | None = None,
    ) -> None:
        super().__init__()
        backbone = get_backbone(arch, "video")
        if num_segments < 1 or (shift and shift_div < 2):
            raise ConfigError(f"need num_segments >= 1 and shift_div >= 2, got {num_segments}, {shift_div}")
        self.num_segments = num_segments
        self.shift = shift
        self.arch = arch
        base = backbone.build(num_classes, in_channels, width, small_input)
        self.stages: tuple[str, ...] = tuple(getattr(base, "stages", STAGES))
        self.conv1, self.bn1, self.relu = base.conv1, base.bn1, base.relu
        self.maxpool = getattr(base, "maxpool", nn.Identity())
        for stage in self.stages:
            setattr(self, stage, getattr(base, stage))
        self.avgpool = base.avgpool
        self.head: nn.Linear = base.fc
        self.feature_dim = base.fc.in_features
        if pretrained is not None:
            self.load_backbone(pretrained)
        if shift:
            add_temporal_shift(self, num_segments, shift_div)

    def load_backbone(self, path: str | Path) -> None:
        """Load a torchvision ResNet state dict (e.g. ImageNet weights) from a local file, skipping `fc`."""
        state = read_state_dict(path)
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "head."))}
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}
        hint = (
            "ImageNet weights need small_input=False, width=1 and in_channels=3"
            if self.stages == STAGES
            else f"weights of a {self.arch} at the same width and in_channels"
        )
        check_state_dict(state, own, path, "the backbone", hint)
        self.load_state_dict(state, strict=False)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Outputs of the stages in `stages` (N, T, C, H, W), per-frame features `frames` (N, T, C) and the
        clip feature `pooled` (N, C)."""
        if x.dim() != 5:
            raise ValueError(f"expected clips (N, T, C, H, W), got shape {tuple(x.shape)}")
        n, t = x.shape[:2]
        if self.shift and t != self.num_segments:
            raise ValueError(f"TSM built for {self.num_segments} segments got clips of {t} frames")
        h = self.maxpool(self.relu(self.bn1(self.conv1(x.flatten(0, 1)))))
        out = {}
        for stage in self.stages:
            h = getattr(self, stage)(h)
            out[stage] = h.unflatten(0, (n, t))
        out["frames"] = torch.flatten(self.avgpool(h), 1).unflatten(0, (n, t))
        out["pooled"] = out["frames"].mean(dim=1)
        return out

    def classify(self, pooled: Tensor) -> Tensor:
        """Logits (N, K) of clip features (N, C)."""
        return self.head(pooled)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.forward_features(x)["pooled"])
