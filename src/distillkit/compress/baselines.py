"""Baselines trained on the PBKD student architecture: from scratch, KD, FitNets and attention transfer."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from distillkit.compress.pbkd import WholeStudentObjective
from distillkit.compress.student import fresh_copy, student_from_config
from distillkit.config import BaselineConfig, StudentConfig
from distillkit.distill.losses import attention_loss, hint_loss, kd_loss
from distillkit.engine.loop import LossParts
from distillkit.models.blocks import BlockwiseNet


def baseline_student(
    method: str,
    teacher: BlockwiseNet,
    shapes: list[tuple[torch.Size, torch.Size]],
    student: StudentConfig,
    ratio: float,
) -> BlockwiseNet:
    """The student baseline `method` trains: PBKD's architecture (`student` at `ratio`) from fresh weights and a
    fresh head, or for `kd_inherit` from where PBKD starts (blocks built with `student.init`, the teacher's head).
    Every weight trains, parts copied from the frozen teacher (shortcuts, a copied stem) included."""
    same_start = method == "kd_inherit"
    blocks = student_from_config(teacher.blocks, shapes, student, ratio, None if same_start else "random")
    head = copy.deepcopy(teacher.head) if same_start else fresh_copy(teacher.head)
    net = BlockwiseNet(blocks, head, teacher.names)
    net.requires_grad_(True)
    return net


class StudentObjective(WholeStudentObjective):
    """One baseline's loss on the student, with the frozen teacher as the source of knowledge.

    - scratch: CE.
    - kd: (1 − α)·CE + α·KD(T) (Hinton et al., 2015).
    - kd_inherit: the same loss, on a student that starts where PBKD's does (the job builds it with
      `student.init`): KD from the same start, against which the blockwise stages themselves are measured.
    - fitnets: CE + w·MSE between the middle block outputs (the hint; Romero et al., 2015). Student blocks
      restore the teacher's channels, so no regressor is needed; trained jointly rather than in two stages.
    - at: CE + β·Σ attention losses at every block output (Zagoruyko & Komodakis, 2017); of clips
      (N, T, C, H, W), each frame's attention map.
    """

    def __init__(
        self, method: str, student: BlockwiseNet, teacher: BlockwiseNet, cfg: BaselineConfig
    ) -> None:
        self.method, self.student, self.teacher, self.cfg = method, student, teacher, cfg
        self.hint_block = len(student.blocks) // 2

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        if self.method == "scratch":
            ce = F.cross_entropy(self.student(x), y)
            return ce, {"ce": ce.detach()}
        feats = self.student.block_outputs(x)
        logits = self.student.head(feats[-1])
        ce = F.cross_entropy(logits, y)
        with torch.no_grad():
            teacher_feats = self.teacher.block_outputs(x)
            teacher_logits = self.teacher.head(teacher_feats[-1])
        if self.method in ("kd", "kd_inherit"):
            kd = kd_loss(logits, teacher_logits, self.cfg.kd_temperature)
            a = self.cfg.kd_alpha
            return (1 - a) * ce + a * kd, {"ce": ce.detach(), "kd": kd.detach()}
        if self.method == "fitnets":
            k = self.hint_block
            hint = hint_loss(feats[k], teacher_feats[k])
            return ce + self.cfg.fitnets_weight * hint, {"ce": ce.detach(), "hint": hint.detach()}
        if self.method == "at":
            pairs = zip(map(_frames, feats), map(_frames, teacher_feats), strict=True)
            at = torch.stack([attention_loss(s, t) for s, t in pairs]).sum()
            return ce + self.cfg.at_weight * at, {"ce": ce.detach(), "at": at.detach()}
        raise ValueError(f"unknown baseline '{self.method}'")


def _frames(features: torch.Tensor) -> torch.Tensor:
    """Feature maps (N, C, H, W): clips' (N, T, C, H, W) as N·T frames."""
    return features.flatten(0, 1) if features.dim() == 5 else features
