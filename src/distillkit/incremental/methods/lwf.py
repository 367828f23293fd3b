"""LwF (Li & Hoiem, 2016): distil the old model's outputs on new data; no exemplars."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from distillkit.config import Section
from distillkit.distill.losses import kd_loss
from distillkit.engine.loop import LossParts
from distillkit.incremental.methods.base import Method, Outputs, StepContext, register


class LogitKDOptions(Section):
    """Options of the KD on old logits (`icarl`'s; `lwf`'s add `new_logits_only`)."""

    temperature: float = Field(2.0, gt=0)
    """Distillation temperature."""
    weight: float = Field(1.0, ge=0)
    """Weight of the distillation term."""


class LwFOptions(LogitKDOptions):
    """Options of `lwf`."""

    new_logits_only: bool = True
    """Cross-entropy over the new classes' logits only (Li & Hoiem train the new task's outputs on its own data,
    as PyCIL's LwF does): the old classes' logits are then shaped by distillation alone. False: over every
    seen class, which pushes the old logits down on every new-class clip."""


@register
class LwF(Method):
    """Cross-entropy on new data (over the new classes' logits) plus KD of the old classes' logits from the
    previous model; stores nothing."""

    name = "lwf"
    Options = LwFOptions
    uses_memory = False
    needs_old_outputs = True

    def classification_loss(self, out: Outputs, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Cross-entropy over the new classes' logits after the base step (`new_logits_only`), else over all."""
        if ctx.num_old and self.options.new_logits_only:
            return F.cross_entropy(out["logits"][:, ctx.num_old :], y - ctx.num_old)
        return F.cross_entropy(out["logits"], y)

    def distillation(
        self, out: Outputs, old: Outputs, y: torch.Tensor, ctx: StepContext
    ) -> tuple[list[torch.Tensor], LossParts]:
        kd = kd_loss(out["logits"][:, : ctx.num_old], old["logits"], self.options.temperature)
        return [self.options.weight * kd], {"kd": kd.detach()}
