"""Finetune: train on the new classes only, nothing kept, nothing distilled (the lower bound)."""

from __future__ import annotations

from distillkit.incremental.methods.base import Method, register


@register
class Finetune(Method):
    """Cross-entropy on the new classes' data; no memory, no old model."""

    name = "finetune"
    uses_memory = False
