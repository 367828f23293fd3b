"""`distillkit train`: train one image or video classifier and evaluate it."""

from __future__ import annotations

from pathlib import Path

import torch

from distillkit.config import TrainConfig, VideoTrainConfig
from distillkit.engine.distributed import is_main
from distillkit.jobs.base import Job
from distillkit.train import TRAINING_STATE, run_train


class TrainJob(Job[TrainConfig | VideoTrainConfig]):
    """`--resume` returns a finished run's report.json, or goes on training an unfinished run after its last full
    epoch (its training state, kept in checkpoints/train.pt)."""

    name = "train"
    finished = "report.json"

    def execute(
        self, cfg: TrainConfig | VideoTrainConfig, out: Path, device: torch.device, resume: bool
    ) -> dict:
        if resume and is_main():
            kept = (out / TRAINING_STATE).is_file()
            going = "after its last full epoch" if kept else "from the start (no epoch had finished)"
            print(f"resume: going on with the train run in {out} {going}")
        return run_train(cfg, out)
