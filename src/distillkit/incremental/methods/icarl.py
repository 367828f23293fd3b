"""iCaRL (Rebuffi et al., 2017): herding exemplars, KD on the old logits, nearest-mean-of-exemplars classifier."""

from __future__ import annotations

from pydantic import Field

from distillkit.config import Section
from distillkit.incremental.methods.base import register
from distillkit.incremental.methods.lwf import LwF


class ICaRLOptions(Section):
    """Options of `icarl`."""

    temperature: float = Field(2.0, gt=0)
    """Distillation temperature (PyCIL's iCaRL uses 2)."""
    weight: float = Field(1.0, ge=0)
    """Weight of the distillation term."""


@register
class ICaRL(LwF):
    """LwF's loss on new data *and exemplars*, classified by the nearest mean of exemplars (NME).

    As in PyCIL, training uses softmax cross-entropy plus KD on the old logits rather than the paper's per-class
    sigmoids; exemplars are picked by herding (`memory.selection: herding`, the default).
    """

    name = "icarl"
    Options = ICaRLOptions
    uses_memory = True
    nme = True
