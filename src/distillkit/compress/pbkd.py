"""Progressive blockwise knowledge distillation (Wang, Zhao, Li, Tan, IJCAI 2018).

Network A⁰ is the teacher. Stage k replaces one teacher block with its student block; everything else is
frozen (blocks already replaced keep their trained student weights). Only the new block trains, on
``CE(Aᵏ(x), y) + λ · ½‖S_k(h) − T_k(h)‖²`` where h is the input of block k in Aᵏ; optionally (not in the paper)
``+ w · KD(Aᵏ(x), A⁰(x))``, logit distillation from the whole teacher. With precise norms (not in the paper) the
block's batch-norm statistics are estimated afresh after its stage, with the weights it ends with
(docs/design.md, "PBKD").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import islice

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from distillkit.config import OptimConfig, PerformanceConfig
from distillkit.distill.losses import kd_loss, local_l2
from distillkit.engine.loop import FitResult, LossParts, fit
from distillkit.engine.precision import to_device
from distillkit.errors import ConfigError
from distillkit.models.blocks import BlockwiseNet


def stage_order(order: str | Sequence[int], num_blocks: int) -> list[int]:
    """Block indices in the order they are replaced: bottom_up, top_down, or an explicit permutation."""
    if order == "bottom_up":
        return list(range(num_blocks))
    if order == "top_down":
        return list(reversed(range(num_blocks)))
    indices = list(order)
    if sorted(indices) != list(range(num_blocks)):
        raise ConfigError(f"pbkd.order {indices} must list each block index 0..{num_blocks - 1} once")
    return indices


def estimate_block_norms(
    net: BlockwiseNet, k: int, loader: DataLoader, batches: int, device: torch.device
) -> None:
    """Set the running statistics of every batch norm in `net.blocks[k]` to their plain averages over the first
    `batches` batches of `loader` (the input of block k as the net computes it; no gradient). The global random
    state is left as it was, so what trains after it draws the same batches as without it."""
    block = net.blocks[k]
    norms = [m for m in block.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    was_training = [m.training for m in block.modules()]
    cuda = [device] if device.type == "cuda" else []
    try:
        block.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
            m.train()
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            for x, _ in islice(iter(loader), batches):
                block(net.run_blocks(to_device(x, device), 0, k))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        for m, training in zip(block.modules(), was_training, strict=True):
            m.training = training


class BlockStageObjective:
    """Stage objective: train `net.blocks[k]` only, with CE on the whole net plus the local L2 to the teacher
    (and, with `kd_weight` > 0, logit KD from the whole `teacher` at `temperature`)."""

    def __init__(
        self,
        net: BlockwiseNet,
        k: int,
        teacher_block: nn.Module,
        local_weight: float,
        teacher: nn.Module | None = None,
        kd_weight: float = 0.0,
        temperature: float = 4.0,
    ) -> None:
        self.net, self.k, self.teacher_block, self.local_weight = net, k, teacher_block, local_weight
        if kd_weight > 0 and teacher is None:
            raise ConfigError("the stage KD term needs the teacher")
        self.teacher, self.kd_weight, self.temperature = teacher, kd_weight, temperature

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.net.blocks[self.k].parameters()

    def trainable_module(self) -> nn.Module:
        return self.net.blocks[self.k]

    def set_mode(self) -> None:
        self.net.eval()
        self.net.blocks[self.k].train()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        with torch.no_grad():
            h = self.net.run_blocks(x, 0, self.k)
            target = self.teacher_block(h) if self.local_weight > 0 else None
        s = self.net.blocks[self.k](h)
        logits = self.net.head(self.net.run_blocks(s, self.k + 1))
        ce = F.cross_entropy(logits, y)
        loss, parts = ce, {"ce": ce.detach()}
        if target is not None:
            local = local_l2(s, target)
            loss, parts = loss + self.local_weight * local, parts | {"local": local.detach()}
        if self.kd_weight > 0:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
            kd = kd_loss(logits, teacher_logits, self.temperature)
            loss, parts = loss + self.kd_weight * kd, parts | {"kd": kd.detach()}
        return loss, parts


class WholeStudentObjective:
    """The part of an objective that trains a whole student beside a frozen teacher (in eval mode)."""

    student: nn.Module
    teacher: nn.Module

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.student.parameters()

    def trainable_module(self) -> nn.Module:
        return self.student

    def set_mode(self) -> None:
        self.student.train()
        self.teacher.eval()


class KDFinetuneObjective(WholeStudentObjective):
    """The whole student trained with (1 − α)·CE + α·KD from the frozen teacher."""

    def __init__(self, student: nn.Module, teacher: nn.Module, alpha: float, temperature: float) -> None:
        self.student, self.teacher, self.alpha, self.temperature = student, teacher, alpha, temperature

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        logits = self.student(x)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        ce = F.cross_entropy(logits, y)
        kd = kd_loss(logits, teacher_logits, self.temperature)
        return (1 - self.alpha) * ce + self.alpha * kd, {"ce": ce.detach(), "kd": kd.detach()}


StageCallback = Callable[[int, int, BlockwiseNet, FitResult], None]


def progressive_distill(
    teacher: BlockwiseNet,
    students: Sequence[nn.Module],
    loader: DataLoader,
    steps_per_stage: int,
    optim: OptimConfig,
    device: torch.device,
    local_weight: float = 1.0,
    order: str | Sequence[int] = "bottom_up",
    after_stage: StageCallback | None = None,
    perf: PerformanceConfig | None = None,
    done: int = 0,
    kd_weight: float = 0.0,
    kd_temperature: float = 4.0,
    stage_norm: str = "batch",
    stage_norm_batches: int = 20,
    kept: Collection[int] = (),
) -> BlockwiseNet:
    """Replace the teacher's blocks by `students` one stage at a time; returns the student network.

    The teacher is never modified: its parameters are frozen and the student gets its own copy of the head.
    `after_stage(stage, block, net, fit_result)` is called after each stage trained (for evaluation, reports
    and checkpoints); `perf` holds the speed options of every stage's training. The first `done` stages have
    finished before (a resumed run): their student blocks, given trained, are put in place without training.
    `kd_weight` > 0 adds logit KD from the teacher at `kd_temperature` to every stage's loss. `stage_norm`
    "precise" estimates the new block's batch-norm statistics afresh on `stage_norm_batches` batches after its
    stage trained; "batch" keeps the running averages of training. The blocks in `kept` (students that are their
    teacher blocks exactly: `student.is_copy`) are put in place without training: `after_stage` gets a 0-step
    result.
    """
    if stage_norm not in ("batch", "precise"):
        raise ConfigError(f"pbkd.stage_norm must be 'batch' or 'precise', not {stage_norm!r}")
    if len(students) != len(teacher.blocks):
        raise ConfigError(f"{len(students)} student blocks for {len(teacher.blocks)} teacher blocks")
    teacher.to(device).eval().requires_grad_(False)
    net = BlockwiseNet(list(teacher.blocks), copy.deepcopy(teacher.head), teacher.names).to(device)
    for stage, k in enumerate(stage_order(order, len(students))):
        net.requires_grad_(False)
        net.blocks[k] = students[k].to(device).requires_grad_(True)
        if stage < done:
            net.blocks[k].requires_grad_(False)
            continue
        if k in kept:
            net.blocks[k].requires_grad_(False)
            if after_stage is not None:
                after_stage(stage, k, net, FitResult(steps=0, seconds=0.0, samples=0))
            continue
        objective = BlockStageObjective(
            net, k, teacher.blocks[k], local_weight, teacher, kd_weight, kd_temperature
        )
        desc = f"stage {stage + 1}: block {k}"
        result = fit(objective, loader, steps_per_stage, optim, device, desc=desc, perf=perf)
        net.blocks[k].requires_grad_(False)
        if stage_norm == "precise":
            estimate_block_norms(net, k, loader, stage_norm_batches, device)
        if after_stage is not None:
            after_stage(stage, k, net, result)
    net.eval().requires_grad_(True)
    return net
