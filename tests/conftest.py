"""Fixtures shared by several test modules. Tiny configs, data and the helpers a test calls with its own arguments
are in helpers.py."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch
from helpers import TINY_COMPRESS, TINY_TRAIN


def pytest_configure(config: pytest.Config) -> None:
    """DataLoader workers in the test process start from a fork server, not by forking this process. By the time a
    test forks, earlier tests have left threads here (torch.profiler's kineto config loader, onnxruntime's pool,
    OpenMP's, OpenBLAS's); a fork that meets one of them holding a lock, or kineto's fork handler stopping its
    thread, could leave the workers or this process waiting forever (seen twice, in CI and a fresh clone's run: the
    suite hung in the first test to fork DataLoader workers after the profiler tests). The fork server is a fresh
    process that imported torch and nothing else."""
    multiprocessing.set_start_method("forkserver", force=True)
    multiprocessing.set_forkserver_preload(["torch"])


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
