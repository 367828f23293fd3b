"""LUCIR (Hou et al., 2019): cosine classifier, less-forget feature distillation, margin ranking, optional CBF."""

from __future__ import annotations

import math

import torch
from pydantic import Field

from distillkit.distill.losses import less_forget_loss, margin_ranking_loss
from distillkit.engine.distributed import process_share
from distillkit.engine.loop import LossParts
from distillkit.incremental.methods.base import (
    Outputs,
    SimilarityHeadMethod,
    SimilarityHeadOptions,
    StepContext,
    register,
)


class LUCIROptions(SimilarityHeadOptions):
    """Options of `lucir` (defaults from the paper)."""

    lambda_base: float = Field(5.0, ge=0)
    """Less-forget weight, scaled by sqrt(old classes / new classes) at each step."""
    margin: float = Field(0.5, ge=0)
    """Margin of the ranking loss (on cosine similarities)."""
    hard_negatives: int = Field(2, ge=1)
    """New-class scores each old-class sample is ranked against."""
    ranking_weight: float = Field(1.0, ge=0)
    """Weight of the margin ranking loss."""


@register
class LUCIR(SimilarityHeadMethod):
    """Cross-entropy on σ·cos logits + λ·(1 − cos(f, f_old)) + margin ranking of old samples vs new classes."""

    name = "lucir"
    Options = LUCIROptions
    needs_old_outputs = True

    def distillation(
        self, out: Outputs, old: Outputs, y: torch.Tensor, ctx: StepContext
    ) -> tuple[list[torch.Tensor], LossParts]:
        o = self.options
        forget = less_forget_loss(out["pooled"], old["pooled"])
        rank = margin_ranking_loss(out["cosine"], y, ctx.num_old, o.margin, o.hard_negatives, process_share)
        weight = o.lambda_base * math.sqrt(ctx.num_old / ctx.num_new)
        return [weight * forget, o.ranking_weight * rank], {
            "less_forget": forget.detach(),
            "ranking": rank.detach(),
        }
