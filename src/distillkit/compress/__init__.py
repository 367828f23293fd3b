"""PBKD compression: split a teacher into blocks, design students, replace blocks one at a time.

from distillkit.compress import compress_model
student = compress_model(my_cnn, ["layer1", "layer2", "layer3"], train_loader, steps_per_stage=300)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.compress.pbkd import progressive_distill
from distillkit.compress.student import design_student, resolve_init
from distillkit.config import OptimConfig
from distillkit.engine.device import resolve_device
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model

__all__ = ["BlockwiseNet", "compress_model", "design_student", "progressive_distill", "split_model"]


def compress_model(
    model: nn.Module,
    blocks: Sequence[str] | str,
    train_loader: DataLoader,
    steps_per_stage: int,
    ratio: float = 0.5,
    design: str = "thin",
    init: str = "auto",
    local_weight: float = 1.0,
    optim: OptimConfig | None = None,
    order: str | Sequence[int] = "bottom_up",
    device: str | torch.device = "auto",
    residual: str = "internal",
    plain: str = "restore",
    channel_multiple: int = 1,
) -> BlockwiseNet:
    """Compress a trained `model` by PBKD, cutting it after each module named in `blocks` ("auto" for VGG/ResNet).

    The model is not modified; the returned student is a `BlockwiseNet` (an ordinary `nn.Module`). `init="auto"`
    starts thin student convs from the teacher's largest filters; `residual` says how residual units are thinned,
    `plain` how a block's own output width comes back, `channel_multiple` keeps thinned widths in whole multiples
    (see `distillkit.compress.student`).
    """
    device = resolve_device(device) if isinstance(device, str) else device
    teacher = split_model(model.eval(), blocks).to(device)
    x, _ = next(iter(train_loader))
    shapes = block_shapes(teacher, x[:2].to(device))
    students = design_student(
        teacher.blocks,
        shapes,
        design,
        ratio,
        resolve_init(design, init),
        residual,
        plain=plain,
        channel_multiple=channel_multiple,
    )
    return progressive_distill(
        teacher, students, train_loader, steps_per_stage, optim or OptimConfig(), device, local_weight, order
    )
