"""PBKD compression: split a teacher into blocks, design students, replace blocks one at a time.

from distillkit.compress import compress_model
student = compress_model(my_cnn, ["layer1", "layer2", "layer3"], train_loader, steps_per_stage=300)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.compress.pbkd import KDFinetuneObjective, progressive_distill
from distillkit.compress.student import design_student, macs_outside_blocks, ratio_for_macs, resolve_init
from distillkit.config import OptimConfig
from distillkit.engine.device import resolve_device
from distillkit.engine.loop import fit
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model

__all__ = ["BlockwiseNet", "compress_model", "design_student", "progressive_distill", "split_model"]


def compress_model(
    model: nn.Module,
    blocks: Sequence[str] | str,
    train_loader: DataLoader,
    steps_per_stage: int,
    ratio: float | None = None,
    design: str = "thin",
    init: str = "auto",
    local_weight: float = 1.0,
    optim: OptimConfig | None = None,
    order: str | Sequence[int] = "bottom_up",
    device: str | torch.device = "auto",
    residual: str = "internal",
    plain: str = "internal",
    channel_multiple: int = 1,
    macs_reduction: float | None = None,
    finetune_steps: int = 0,
    finetune_optim: OptimConfig | None = None,
) -> BlockwiseNet:
    """Compress a trained `model` by PBKD, cutting it after each module named in `blocks` ("auto" for VGG/ResNet).

    The student's width is `ratio` (the share of filters each thinned conv keeps; 0.5 if neither is given) or
    `macs_reduction` (the widest student with at least that many times fewer MACs than `model`, as the config's
    `student.macs_reduction`). `finetune_steps` > 0 ends with the whole student trained by KD from the teacher
    (α 0.5, temperature 4, as `pbkd.finetune`; `finetune_optim` defaults to SGD at lr 0.01).

    The model is not modified; the returned student is a `BlockwiseNet` (an ordinary `nn.Module`). `init="auto"`
    starts thin student convs from the teacher's largest filters; `residual` says how residual units are thinned,
    `plain` how a block's own output width comes back, `channel_multiple` keeps thinned widths in whole multiples
    (see `distillkit.compress.student`).
    """
    if ratio is not None and macs_reduction is not None:
        raise ValueError("compress_model: give ratio or macs_reduction, not both")
    device = resolve_device(device) if isinstance(device, str) else device
    teacher = split_model(model.eval(), blocks).to(device)
    x, _ = next(iter(train_loader))
    shapes = block_shapes(teacher, x[:2].to(device))
    if macs_reduction is not None:
        ratio, _ = ratio_for_macs(
            teacher.blocks,
            shapes,
            design,
            macs_reduction,
            macs_outside_blocks(teacher, shapes),
            residual,
            plain=plain,
            channel_multiple=channel_multiple,
        )
    students = design_student(
        teacher.blocks,
        shapes,
        design,
        0.5 if ratio is None else ratio,
        resolve_init(design, init),
        residual,
        plain=plain,
        channel_multiple=channel_multiple,
    )
    student = progressive_distill(
        teacher, students, train_loader, steps_per_stage, optim or OptimConfig(), device, local_weight, order
    )
    if finetune_steps > 0:
        objective = KDFinetuneObjective(student, teacher, alpha=0.5, temperature=4.0)
        fit(
            objective,
            train_loader,
            finetune_steps,
            finetune_optim or OptimConfig(lr=0.01),
            device,
            "finetune (KD)",
        )
        student.eval()
    return student
