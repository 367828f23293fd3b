"""`distillkit compress`: PBKD compression of a teacher, with baselines on the same student."""

from __future__ import annotations

from pathlib import Path

import torch

from distillkit.compress.job import CompressionRun
from distillkit.config import CompressConfig
from distillkit.jobs.base import Job


class CompressJob(Job[CompressConfig]):
    """Resumes after its last finished phase (teacher, each stage, fine-tune, each baseline)."""

    name = "compress"

    def legacy(self, out: Path) -> bool:
        """A compression run written before run folders were marked (run.json)."""
        return (out / "checkpoints" / "compress.pt").is_file()

    def execute(self, cfg: CompressConfig, out: Path, device: torch.device, resume: bool) -> dict:
        return CompressionRun(cfg, out, device=device, resume=resume).run()
