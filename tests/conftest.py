"""Fixtures shared by several test modules. Tiny configs, data and the helpers a test calls with its own arguments
are in helpers.py."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch
from helpers import TINY_COMPRESS, TINY_TRAIN


def pytest_configure(config: pytest.Config) -> None:
    """DataLoader workers in the test process start from a fork server, not by forking this process. A fork
    copies only the forking thread, and earlier tests leave thread pools here (kineto's from torch.profiler,
    onnxruntime's, OpenMP's, OpenBLAS's): a worker that needs one waits forever. The suite hung twice in the
    first test to fork workers, and once in the loader benchmark's process, whose worker waited inside FFmpeg's
    thread pool (since then `PyAVReader` keeps FFmpeg on the calling thread). The fork server is a fresh process
    that imported torch and nothing else."""
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
