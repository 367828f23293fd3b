"""iCaRL (Rebuffi et al., 2017): herding exemplars, KD on the old logits, nearest-mean-of-exemplars classifier."""

from __future__ import annotations

from distillkit.incremental.methods.base import register
from distillkit.incremental.methods.lwf import LwF


@register
class ICaRL(LwF):
    """LwF's loss on new data *and exemplars*, classified by the nearest mean of exemplars (NME).

    As in PyCIL, training uses softmax cross-entropy plus KD on the old logits rather than the paper's per-class
    sigmoids; exemplars are picked by herding (`memory.selection: herding`, the default). Options as `lwf`'s
    (`temperature`, 2 as in PyCIL; `weight`).
    """

    name = "icarl"
    uses_memory = True
    nme = True
