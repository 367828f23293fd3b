"""PODNet (Douillard et al., 2020): pooled-outputs distillation on stage features, cosine classifier."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from distillkit.config import MAX_EPOCHS
from distillkit.distill.losses import nca_loss, pod_flat_loss, pod_spatial_loss
from distillkit.engine.loop import LossParts
from distillkit.incremental.methods.base import (
    Outputs,
    SimilarityHeadMethod,
    SimilarityHeadOptions,
    StepContext,
    register,
)
from distillkit.models.heads import make_head


class PODNetOptions(SimilarityHeadOptions):
    """Options of `podnet` (weights from the paper's CIFAR setting)."""

    pod_spatial: float = Field(3.0, ge=0)
    """Weight of POD-spatial, scaled by sqrt(seen classes / new classes)."""
    pod_flat: float = Field(1.0, ge=0)
    """Weight of POD-flat on the clip embedding, scaled the same way."""
    cbf_epochs: float = Field(2.0, ge=0, le=MAX_EPOCHS)
    """Class-balanced fine-tuning of the classifier on the memory after each incremental step (PODNet's
    CIFAR setting fine-tunes it; without it the classifier is biased to the newest classes; 0: off)."""
    classifier: Literal["cosine", "lsc"] = "cosine"
    """`cosine`: one proxy per class, trained with cross-entropy; `lsc`: PODNet's local similarity classifier
    (`proxies` per class) trained with its NCA loss (margin `nca_margin`)."""
    proxies: int = Field(10, ge=1)
    """Proxies per class of the local similarity classifier (PODNet's CIFAR setting: 10)."""
    nca_margin: float = Field(0.6, ge=0)
    """Margin δ of the NCA loss (PODNet: 0.6)."""
    stages: list[str] | None = None
    """Backbone stages distilled by POD-spatial, each frame's map pooled separately (None: every stage)."""


@register
class PODNet(SimilarityHeadMethod):
    """Cross-entropy on a cosine classifier (or PODNet's local similarity classifier with its NCA loss:
    `classifier: lsc`) with imprinted new weights + POD-spatial on every chosen stage (frames as images) +
    POD-flat on the clip embedding; optional class-balanced fine-tuning of the classifier."""

    name = "podnet"
    Options = PODNetOptions
    needs_old_outputs = True

    def __init__(self, options: PODNetOptions) -> None:
        super().__init__(options)
        self.head = "lsc" if options.classifier == "lsc" else "cosine"

    def build_head(self, in_features: int, out_features: int) -> torch.nn.Module:
        return make_head(self.head, in_features, out_features, self.options.proxies)

    def classification_loss(self, out: Outputs, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Cross-entropy on the cosine head, or NCA with a margin on the local similarity classifier."""
        if self.options.classifier == "lsc":
            return nca_loss(out["cosine"], y, out["scale"], self.options.nca_margin)
        return F.cross_entropy(out["logits"], y)

    def distillation(
        self, out: Outputs, old: Outputs, y: torch.Tensor, ctx: StepContext
    ) -> tuple[list[torch.Tensor], LossParts]:
        o = self.options
        scale = math.sqrt(ctx.num_seen / ctx.num_new)
        stages = o.stages or [k for k in out if k.startswith("layer")]
        spatial = torch.stack(
            [pod_spatial_loss(out[s].flatten(0, 1), old[s].flatten(0, 1)) for s in stages]
        ).mean()
        flat = pod_flat_loss(out["pooled"], old["pooled"])
        term = scale * (o.pod_spatial * spatial + o.pod_flat * flat)
        return [term], {"pod_spatial": spatial.detach(), "pod_flat": flat.detach()}
