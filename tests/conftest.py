"""Fixtures of every test. Tiny configs, data and helpers shared by several test modules are in helpers.py."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "0")
