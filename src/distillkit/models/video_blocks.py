"""Cutting a TSM/TSN video network (`models.tsm.VideoResNet`) into blocks for PBKD.

A `VideoResNet` runs a clip (N, T, C, H, W) through a 2D ResNet as N·T frames; its temporal shift lives inside
the residual units (`ShiftConv2d` as each unit's `conv1`). Its 2D part (stem, stages, average pool) is cut like an
image ResNet (`models.blocks.split_model`: between residual units, never across a skip connection), and each
cut-out frame block is wrapped in a `ClipBlock`, which takes and returns clips: blocks chain clip tensors
(N, T, C, H, W), so that a block's MACs at batch 1 are its MACs per clip, and each shift sees the T frames of its
own clip. The segment consensus (mean over time) and the classifier stay together in a `ClipHead`, as in the
teacher (docs/design.md, "Video compression").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from distillkit.errors import SplitError
from distillkit.models.blocks import BlockwiseNet, split_model
from distillkit.models.tsm import ShiftConv2d, VideoResNet


class FrameNetwork(nn.Module):
    """The 2D part of a `VideoResNet` over frames (N·T, C, H, W) → per-frame features (N·T, C): stem, stages,
    average pool; it shares the video network's modules (and their names)."""

    def __init__(self, video: VideoResNet) -> None:
        super().__init__()
        self.stages = video.stages
        self.conv1, self.bn1, self.relu, self.maxpool = video.conv1, video.bn1, video.relu, video.maxpool
        for stage in self.stages:
            setattr(self, stage, getattr(video, stage))
        self.avgpool = video.avgpool

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        return torch.flatten(self.avgpool(x), 1)


class ClipBlock(nn.Module):
    """A block of frame layers applied to clips: (N, T, C, H, W) → (N, T, C', H', W'). `frames` is the 2D block
    (its temporal shifts see the T frames of each clip)."""

    def __init__(self, frames: nn.Module) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, x: Tensor) -> Tensor:
        y = self.frames(x.flatten(0, 1))
        return y.unflatten(0, (-1, x.shape[1]))


class ClipHead(nn.Module):
    """What follows the last block: the frame head (average pool, flatten) on every frame, the segment consensus
    (mean over time) and the teacher's classifier (a linear head, or an incremental method's)."""

    def __init__(self, frames: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.frames = frames
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        features = self.frames(x.flatten(0, 1)).unflatten(0, (-1, x.shape[1]))
        return self.classifier(features.mean(dim=1))


def split_video_model(model: VideoResNet, boundaries: Sequence[str] | str = "auto") -> BlockwiseNet:
    """Cut `model` after each module named in `boundaries` ("auto": the stem and each stage; or names such as
    `layer2.0`, a residual unit) into `ClipBlock`s and a `ClipHead`; the result maps clips to logits as `model`
    does, and shares its parameters."""
    if not isinstance(model, VideoResNet):
        raise SplitError(f"video compression needs a TSM/TSN VideoResNet, not a {type(model).__name__}")
    frames = split_model(FrameNetwork(model), boundaries)
    blocks = [ClipBlock(block) for block in frames.blocks]
    net = BlockwiseNet(blocks, ClipHead(frames.head, model.head), frames.names)
    own = {id(m) for m in model.modules()}
    for wrapper in net.modules():  # the new wrappers take the model's mode; its own modules keep theirs
        if id(wrapper) not in own:
            wrapper.training = model.training
    return net


def shift_convs(block: nn.Module) -> list[tuple[str, ShiftConv2d]]:
    """The temporally shifting convs of `block`, with their module names, in order."""
    return [(name, m) for name, m in block.named_modules() if isinstance(m, ShiftConv2d)]


def shifts(conv: ShiftConv2d) -> bool:
    """Whether `conv` moves anything: some channels to shift (in_channels ≥ shift_div) and more than one frame."""
    return conv.in_channels // conv.shift_div > 0 and conv.num_segments > 1


def frames_seen(blocks: Sequence[nn.Module], num_segments: int) -> list[int]:
    """After each of `blocks` (a chain), how many of a clip's frames one output unit sees (at most
    `num_segments`): every shift that moves channels one frame each way widens it by one frame on each side, and
    the shifts of a chain of residual units add up along their branches."""
    seen, out = 1, []
    for block in blocks:
        seen += 2 * sum(shifts(conv) for _, conv in shift_convs(block))
        out.append(min(seen, num_segments))
    return out
