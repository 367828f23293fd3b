"""Training compute of PBKD and of the teacher, in multiply-accumulates (MACs) per the usual convention.

A forward pass through a part costing M MACs is counted as M; its backward pass as 2M when both input and weight
gradients are needed, and M when only one of them is (a frozen part that gradients flow through needs only input
gradients; the trained block of a PBKD stage needs only weight gradients, since its input carries none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from distillkit.engine.modes import eval_mode
from distillkit.engine.profile import count_macs
from distillkit.models.blocks import BlockwiseNet


@dataclass(frozen=True)
class BlockCosts:
    """Forward MACs per sample of every teacher block, every student block and the head."""

    teacher: list[int]
    student: list[int]
    head: int

    @property
    def teacher_total(self) -> int:
        return sum(self.teacher) + self.head

    @property
    def student_total(self) -> int:
        return sum(self.student) + self.head


def block_costs(
    teacher: BlockwiseNet, students: Sequence[nn.Module], input_shape: tuple[int, ...]
) -> BlockCosts:
    """Per-sample forward MACs of each block (input_shape without batch)."""
    device = next(teacher.parameters()).device
    x = torch.zeros(1, *input_shape, device=device)
    t_costs, s_costs = [], []
    with eval_mode(teacher), torch.no_grad():  # in eval mode: running statistics must not move
        for block, student in zip(teacher.blocks, students, strict=True):
            t_costs.append(count_macs(block, tuple(x.shape)))
            s_costs.append(count_macs(student, tuple(x.shape)))
            x = block(x)
    return BlockCosts(t_costs, s_costs, count_macs(teacher.head, tuple(x.shape)))


def supervised_training_macs(forward_macs: int, samples: int) -> int:
    """Training a whole network: forward + full backward (3 × forward) per sample."""
    return 3 * forward_macs * samples


def pbkd_stage_macs(
    costs: BlockCosts, k: int, replaced: set[int], local_loss: bool, stage_kd: bool = False
) -> int:
    """MACs per sample of one step of the stage that trains student block k (blocks in `replaced` are students);
    `stage_kd`: the stage loss has a logit-KD term (a forward pass of the whole teacher)."""
    current = [costs.student[j] if j in replaced else costs.teacher[j] for j in range(len(costs.teacher))]
    before = sum(current[:k])  # forward only, no gradients
    target = costs.teacher[k] if local_loss else 0  # the teacher block's output for the local loss
    trained = 2 * costs.student[k]  # forward + weight gradients
    after = 2 * (sum(current[k + 1 :]) + costs.head)  # forward + input gradients through frozen parts
    return before + target + trained + after + (costs.teacher_total if stage_kd else 0)


def pbkd_training_macs(
    costs: BlockCosts,
    order: Sequence[int],
    samples_per_stage: int,
    local_loss: bool,
    finetune_samples: int = 0,
    stage_kd: bool = False,
) -> int:
    """All PBKD stages (and the optional KD fine-tune: student trained, teacher forward)."""
    total, replaced = 0, set()
    for k in order:
        total += samples_per_stage * pbkd_stage_macs(costs, k, replaced, local_loss, stage_kd)
        replaced.add(k)
    total += finetune_samples * (3 * costs.student_total + costs.teacher_total)
    return total
