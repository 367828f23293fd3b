"""TCD (Park, Kang & Han, "Class-Incremental Learning for Action Recognition in Videos", ICCV 2021).

TSM backbone, PODNet's local similarity classifier trained with its NCA loss, imprinted new weights and
class-balanced fine-tuning, plus the paper's two losses:

* **time-channel importance distillation**: each stage output keeps its time axis; every (time, channel) slice's
  squared activations are L2-normalised over space and compared with the old model's (`tcd_feature_loss`), and
  the frame embeddings likewise (`tcd_embedding_loss`), each slice weighted by its importance: the squared
  gradient of the old model's NCA loss w.r.t. that slice, summed over space, averaged over samples and divided
  by its mean (`slice_energy`, `importance_weights`; a slice the old classes do not depend on is not distilled);
* **temporal diversity**: the cosine similarities between each channel's spatial maps at different times are
  pushed to zero (`temporal_diversity_loss`), on every step including the base one.

Deviations from the reference code (github.com/bellos1203/TCD), one line each:
the importance is measured at the start of a step on the exemplar memory with the old model in eval mode (the
code measures it after a step on that step's training set in training mode), so nothing is carried across steps;
λ₁ is scaled by sqrt(seen / new) like our PODNet (`feature_scaling`; the code keeps it constant);
the diversity loss leaves out the diagonal of the similarity matrix (the code includes it; it is 1 up to an
epsilon except for all-zero maps, where it adds a constant without gradient);
new proxies are imprinted from interleaved shares of the class (the code clusters with k-means);
CBF defaults are PODNet's here (the code:
20 epochs at lr 1e-4); our backbone is a narrow TSM ResNet on synthetic or small clips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from distillkit.config import MAX_EPOCHS
from distillkit.distill.losses import (
    importance_weights,
    nca_loss,
    slice_energy,
    tcd_embedding_loss,
    tcd_feature_loss,
    temporal_diversity_loss,
)
from distillkit.engine.loop import LossParts
from distillkit.incremental.methods.base import (
    Outputs,
    SimilarityHeadMethod,
    SimilarityHeadOptions,
    StepContext,
    StepTools,
    register,
)
from distillkit.models.heads import make_head


class TCDOptions(SimilarityHeadOptions):
    """Options of `tcd` (weights from the paper's UCF101 scripts)."""

    feature_weight: float = Field(0.3, ge=0)
    """λ₁: weight of the importance-weighted distillation of the stage features (mean over the stages)."""
    feature_scaling: bool = True
    """Scale λ₁ by sqrt(seen classes / new classes), as PODNet; false: constant, as the reference code."""
    embedding_weight: float = Field(0.01, ge=0)
    """λ₀: weight of the importance-weighted distillation of the frame embeddings, scaled by
    sqrt(old classes / new classes) (the code's `geo` schedule)."""
    diversity_weight: float = Field(0.01, ge=0)
    """λ₂: weight of the temporal diversity loss (mean over the stages), at every step."""
    importance: bool = True
    """Weight the distillation by the old model's time-channel importance; false: every slice weighs 1."""
    stages: list[str] | None = None
    """Backbone stages distilled and diversified (None: every stage)."""
    cbf_epochs: float = Field(2.0, ge=0, le=MAX_EPOCHS)
    """Class-balanced fine-tuning of the classifier on the memory after each incremental step (0: off)."""
    proxies: int = Field(1, ge=1)
    """Proxies per class of the local similarity classifier (the reference UCF101 scripts: 1; PODNet: 10)."""
    nca_margin: float = Field(0.6, ge=0)
    """Margin δ of the NCA loss."""
    classifier: Literal["cnn", "nme"] = "cnn"
    """The method's own classifier: the head, or the nearest mean of exemplars (both are reported with a
    memory)."""


@register
class TCD(SimilarityHeadMethod):
    """NCA on a local similarity classifier + time-channel importance-weighted distillation of the stage
    features and frame embeddings + temporal diversity loss; imprinting and class-balanced fine-tuning."""

    name = "tcd"
    Options = TCDOptions
    head = "lsc"
    needs_old_outputs = True

    def __init__(self, options: TCDOptions) -> None:
        super().__init__(options)
        self.nme = options.classifier == "nme"
        self.importance: dict[str, torch.Tensor] = {}
        """The step's importance (T, C) per stage and for the frame embeddings (`frames`); empty: weights 1."""

    def build_head(self, in_features: int, out_features: int) -> nn.Module:
        return make_head("lsc", in_features, out_features, self.options.proxies)

    def stages(self, names: Iterable[str]) -> list[str]:
        """The chosen stages, else every stage among `names`."""
        return list(self.options.stages or [k for k in names if k.startswith("layer")])

    def begin_step(self, model: nn.Module, ctx: StepContext, tools: StepTools) -> None:
        self.importance = {}
        super().begin_step(model, ctx, tools)  # imprinting
        if ctx.step > 0 and self.options.importance and ctx.old_model is not None:
            self.importance = self.measure_importance(ctx.old_model, tools.memory_batches())

    def measure_importance(
        self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Importance (T, C) of each chosen stage and of `frames`: squared gradients of `model`'s NCA loss on
        `batches` (each sample's own, the batch norms in eval mode), summed over space and samples, divided by
        their mean. Empty without batches. The model's weights get no gradient."""
        names = self.stages(model.stages)
        captured: dict[str, torch.Tensor] = {}

        def keep(stage: str):
            return lambda module, inputs, output: captured.__setitem__(stage, output)

        hooks = [getattr(model, s).register_forward_hook(keep(s)) for s in names]
        energy: dict[str, torch.Tensor] = {}
        try:
            for x, y in batches:
                n, t = x.shape[:2]
                with torch.enable_grad():
                    out = model.forward_features(x.detach().requires_grad_(True))
                    loss = nca_loss(
                        model.head.cosine(out["pooled"]), y, model.head.sigma, self.options.nca_margin
                    )
                    tensors = [captured[s] for s in names] + [out["frames"]]
                    grads = torch.autograd.grad(loss * n, tensors)  # × n: each sample's own gradient
                for key, g in zip([*names, "frames"], grads, strict=True):
                    e = slice_energy(g.unflatten(0, (n, t)) if key != "frames" else g).detach()
                    energy[key] = energy[key] + e if key in energy else e
        finally:
            for hook in hooks:
                hook.remove()
        return {key: importance_weights(e) for key, e in energy.items()}

    def classification_loss(self, out: Outputs, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """PODNet's NCA loss with a margin on the local similarity classifier."""
        return nca_loss(out["cosine"], y, out["scale"], self.options.nca_margin)

    def loss(
        self, out: Outputs, old: Outputs | None, y: torch.Tensor, ctx: StepContext
    ) -> tuple[torch.Tensor, LossParts]:
        o = self.options
        ce = self.classification_loss(out, y, ctx)
        stages = self.stages(out)
        total, parts = ce, {"ce": ce.detach()}
        if o.diversity_weight > 0:
            diversity = torch.stack([temporal_diversity_loss(out[s]) for s in stages]).mean()
            total = total + o.diversity_weight * diversity
            parts["diversity"] = diversity.detach()
        if old is None:
            return total, parts
        w = self.importance
        feature = torch.stack([tcd_feature_loss(out[s], old[s], w.get(s)) for s in stages]).mean()
        embedding = tcd_embedding_loss(out["frames"], old["frames"], w.get("frames"))
        scale = math.sqrt(ctx.num_seen / ctx.num_new) if o.feature_scaling else 1.0
        total = total + scale * o.feature_weight * feature
        total = total + math.sqrt(ctx.num_old / ctx.num_new) * o.embedding_weight * embedding
        return total, {**parts, "feature": feature.detach(), "embedding": embedding.detach()}
