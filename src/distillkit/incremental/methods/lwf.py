"""LwF (Li & Hoiem, 2016): distil the old model's outputs on new data; no exemplars."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from distillkit.config import Section
from distillkit.distill.losses import kd_loss
from distillkit.incremental.methods.base import Method, Outputs, StepContext, register


class LwFOptions(Section):
    """Options of `lwf`."""

    temperature: float = Field(2.0, gt=0)
    """Distillation temperature."""
    weight: float = Field(1.0, ge=0)
    """Weight of the distillation term."""


@register
class LwF(Method):
    """Cross-entropy on new data plus KD of the old classes' logits from the previous model; stores nothing."""

    name = "lwf"
    Options = LwFOptions
    uses_memory = False
    needs_old_outputs = True

    def loss(
        self, out: Outputs, old: Outputs | None, y: torch.Tensor, ctx: StepContext
    ) -> tuple[torch.Tensor, dict[str, float]]:
        ce = F.cross_entropy(out["logits"], y)
        if old is None:
            return ce, {"ce": ce.item()}
        kd = kd_loss(out["logits"][:, : ctx.num_old], old["logits"], self.options.temperature)
        return ce + self.options.weight * kd, {"ce": ce.item(), "kd": kd.item()}
