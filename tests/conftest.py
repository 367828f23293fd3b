"""Fixtures shared by several test modules. Tiny configs, data and the helpers a test calls with its own arguments
are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import TINY_COMPRESS, TINY_TRAIN


@pytest.fixture(autouse=True)
def _seed_and_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "0")


@pytest.fixture
def train_yaml(tmp_path: Path) -> Path:
    """`TINY_TRAIN` as a config file, train.yaml."""
    path = tmp_path / "train.yaml"
    path.write_text(TINY_TRAIN)
    return path


@pytest.fixture
def compress_yaml(tmp_path: Path) -> Path:
    """`TINY_COMPRESS` as a config file, compress.yaml."""
    path = tmp_path / "compress.yaml"
    path.write_text(TINY_COMPRESS)
    return path
