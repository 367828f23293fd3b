"""`distillkit train`: train one image or video classifier and evaluate it."""

from __future__ import annotations

from pathlib import Path

import torch

from distillkit.config import TrainConfig, VideoTrainConfig
from distillkit.jobs.base import Job
from distillkit.train import run_train


class TrainJob(Job[TrainConfig | VideoTrainConfig]):
    """Trains in one go: `--resume` returns a finished run's report.json, or trains an unfinished one again."""

    name = "train"
    finished = "report.json"
    verb = "training"

    def execute(
        self, cfg: TrainConfig | VideoTrainConfig, out: Path, device: torch.device, resume: bool
    ) -> dict:
        return run_train(cfg, out)
