"""Joint: every step trains on all data of every class seen so far (the upper bound)."""

from __future__ import annotations

from distillkit.incremental.methods.base import Method, register


@register
class Joint(Method):
    """Cross-entropy on all data seen so far; needs no memory since it keeps everything."""

    name = "joint"
    uses_memory = False
    train_on = "seen"
