"""Shared test helpers: tiny models and data so the suite stays fast on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset


@pytest.fixture(autouse=True)
def _seed_and_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "0")


def tiny_loader(
    n: int = 32, channels: int = 3, size: int = 16, classes: int = 4, batch: int = 8
) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def logged(parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts as the log reads them, after checking each is what `fit` expects of an objective: a detached
    0-d tensor."""
    for name, value in parts.items():
        assert isinstance(value, torch.Tensor), f"{name} is a {type(value).__name__}, not a tensor"
        assert value.dim() == 0 and not value.requires_grad, f"{name} is not a detached 0-d tensor"
    return {name: value.item() for name, value in parts.items()}
