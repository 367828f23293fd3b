"""iCaRL (Rebuffi et al., 2017): herding exemplars, KD on the old logits, nearest-mean-of-exemplars classifier."""

from __future__ import annotations

import torch

from distillkit.incremental.methods.base import Method, Outputs, StepContext, register
from distillkit.incremental.methods.lwf import LogitKDOptions, LwF


@register
class ICaRL(LwF):
    """LwF's loss on new data *and exemplars*, classified by the nearest mean of exemplars (NME).

    As in PyCIL, training uses softmax cross-entropy plus KD on the old logits rather than the paper's per-class
    sigmoids; exemplars are picked by herding (`memory.selection: herding`, the default). Options as `lwf`'s
    (`temperature`, 2 as in PyCIL; `weight`). Cross-entropy runs over every seen class, since exemplars of the
    old classes are in each batch.
    """

    name = "icarl"
    Options = LogitKDOptions
    uses_memory = True
    nme = True

    def classification_loss(self, out: Outputs, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return Method.classification_loss(self, out, y, ctx)  # over every seen class, not LwF's new ones
