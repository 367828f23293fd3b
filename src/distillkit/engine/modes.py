"""Evaluation mode without side effects on the modules' own training flags."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode inside the block; afterwards every submodule gets its own training flag back.

    `model.train(was_training)` would set them all alike: a net whose batch norms are frozen (eval) inside a
    wrapper that is not would come back with its batch norms training, and the next forward pass would move
    their running statistics."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
