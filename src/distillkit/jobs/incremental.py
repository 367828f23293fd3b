"""`distillkit incremental`: a class-incremental run of one method over a stream of steps."""

from __future__ import annotations

from pathlib import Path

import torch

from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.methods import build_method
from distillkit.incremental.runner import run_incremental
from distillkit.jobs.base import Job


class IncrementalJob(Job[IncrementalConfig]):
    """Resumes after its last finished step."""

    name = "incremental"

    def check(self, cfg: IncrementalConfig) -> None:
        build_method(cfg.method.name, cfg.method.options)  # the method's options, before any work

    def legacy(self, out: Path) -> bool:
        """A class-incremental run written before run folders were marked (run.json)."""
        return any((out / "checkpoints").glob("step_*.pt"))

    def execute(self, cfg: IncrementalConfig, out: Path, device: torch.device, resume: bool) -> dict:
        return run_incremental(cfg, out, resume=resume)
