"""The objectives of a class-incremental step: the method's loss over the current and the old model's outputs
(with temporal or scale consistency when asked), and class-balanced fine-tuning of the head alone or of the whole
network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from distillkit.distill.losses import kd_loss, less_forget_loss
from distillkit.engine.loop import LossParts
from distillkit.incremental.memory import at_scale
from distillkit.incremental.methods import Method, Outputs, StepContext, VideoBackbone
from distillkit.incremental.replay import Replay, downsample_clips


def model_outputs(model: VideoBackbone, x: torch.Tensor) -> Outputs:
    """Stage features, frame and clip features, `logits`, and for a cosine or local-similarity head its class
    similarities `cosine` and scale `scale` (logits = scale · cosine)."""
    out = Outputs(**model.forward_features(x))
    out["logits"] = model.classify(out["pooled"])
    if hasattr(model.head, "cosine"):
        out["cosine"] = model.head.cosine(out["pooled"])
        out["scale"] = model.head.sigma
    return out


def normalise_with_batch_statistics(model: nn.Module) -> nn.Module:
    """Put every batch norm of a frozen `model` in training mode with momentum 0: it normalises each batch with
    that batch's statistics and never changes its running ones."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
            module.momentum = 0.0
    return model


class WithOutputs(nn.Module):
    """`model` whose `forward` returns `model_outputs` (so that DDP, which hooks `forward`, can wrap it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Outputs:
        return model_outputs(self.model, x)


@dataclass(frozen=True)
class Consistency:
    """Temporal consistency of a step (`train.temporal_consistency`): cross-entropy with `weight` on copies of
    the new classes' clips down-sampled to `frames` frames and replayed as `replay`."""

    weight: float
    frames: int
    replay: Replay


@dataclass(frozen=True)
class ScaleConsistency:
    """Scale consistency of a step (`Method.scale_consistency`): copies of the new classes' clips at `scale` of
    each side and back (`memory.at_scale`), their clip embeddings pulled towards the clips' as loaded (1 − cos,
    the clips as loaded getting no gradient from it) with `weight`."""

    weight: float
    scale: float


class StepObjective:
    """One step's training objective: the current model trains, the old one (frozen) gives its outputs.

    `net` computes the current model's outputs: `WithOutputs(model)`, possibly wrapped in DDP. With
    `consistency`, the batch's new-class clips are also seen down-sampled (`replay.downsample_clips`), with
    `scale` at a smaller resolution (`memory.at_scale`): one forward pass of both models over the batch and the
    copies (batch norms see both), the method's loss on the batch's outputs, cross-entropy on the temporal
    copies' and the embedding distance of the scaled copies to their clips'."""

    def __init__(
        self,
        net: nn.Module,
        old_model: nn.Module | None,
        method: Method,
        ctx: StepContext,
        consistency: Consistency | None = None,
        scale: ScaleConsistency | None = None,
    ) -> None:
        self.net, self.old_model, self.method, self.ctx = net, old_model, method, ctx
        self.consistency, self.scale = consistency, scale

    def parameters(self):
        return self.net.parameters()

    def set_mode(self) -> None:
        self.net.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        tc, sc, n = self.consistency, self.scale, x.shape[0]
        new = y >= self.ctx.num_old
        copies = [] if tc is None else [downsample_clips(x[new], tc.frames, tc.replay)]
        copies += [] if sc is None else [at_scale(x[new], sc.scale)]
        inputs = torch.cat([x, *copies]) if copies else x
        out, rest = _split(self.net(inputs), n)
        out["clips"] = x
        old = None
        if self.old_model is not None and self.method.needs_old_outputs:
            with torch.no_grad():
                old, _ = _split(model_outputs(self.old_model, inputs), n)
        loss, parts = self.method.loss(out, old, y, self.ctx)
        if not copies:
            return loss, parts
        m, zero = int(new.sum()), loss.new_zeros(())  # a sync with the device, only when there are copies
        if tc is not None:
            temporal, rest = _split(rest, m) if m else (rest, rest)
            tc_loss = F.cross_entropy(temporal["logits"], y[new]) if m else zero
            loss, parts = loss + tc.weight * tc_loss, {**parts, "tc": tc_loss.detach()}
        if sc is not None:
            sc_loss = less_forget_loss(rest["pooled"], out["pooled"][new].detach()) if m else zero
            loss, parts = loss + sc.weight * sc_loss, {**parts, "sc": sc_loss.detach()}
        return loss, parts


def _split(outputs: Outputs, n: int) -> tuple[Outputs, Outputs]:
    """Outputs of a batch split into those of its first `n` samples and of the rest (tensors without a batch
    dimension, such as a head's scale, go to both); the outputs themselves when the batch has `n` samples."""
    total = len(outputs["logits"])
    if total == n:
        return outputs, Outputs()
    head, tail = Outputs(), Outputs()
    for k, v in outputs.items():
        batched = v.dim() > 0 and v.shape[0] == total
        head[k], tail[k] = (v[:n], v[n:]) if batched else (v, v)
    return head, tail


BALANCED_KD_TEMPERATURE = 2.0
"""The KD temperature of class-balanced fine-tuning of the whole network (EEIL's)."""


class BalancedNetworkObjective:
    """Class-balanced fine-tuning of the whole network (EEIL's balanced fine-tuning; Castro et al., ECCV 2018):
    cross-entropy + KD (T = 2) from the model as the step left it (`frozen`), every batch norm in eval mode so its
    statistics stay the step's."""

    def __init__(self, model: nn.Module, frozen: nn.Module) -> None:
        self.model, self.frozen = model, frozen

    def parameters(self):
        return self.model.parameters()

    def trainable_module(self) -> nn.Module:
        return self.model

    def set_mode(self) -> None:
        self.model.eval()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        logits = self.model(x)
        with torch.no_grad():
            target = self.frozen(x)
        ce, kd = F.cross_entropy(logits, y), kd_loss(logits, target, BALANCED_KD_TEMPERATURE)
        return ce + kd, {"ce": ce.detach(), "kd": kd.detach()}


class HeadObjective:
    """Cross-entropy training of the head alone, the backbone frozen in eval mode (class-balanced fine-tuning)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def parameters(self):
        return self.model.head.parameters()

    def set_mode(self) -> None:
        self.model.eval()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        with torch.no_grad():
            pooled = self.model.forward_features(x)["pooled"]
        ce = F.cross_entropy(self.model.classify(pooled), y)
        return ce, {"ce": ce.detach()}
