"""`distillkit train`'s configs: one image classifier (`TrainConfig`) or one video classifier
(`VideoTrainConfig`, `task: video`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from distillkit.config.common import BudgetConfig, JobConfig, OptimConfig, TeacherConfig, VideoModelConfig
from distillkit.config.core import load_task_config
from distillkit.config.data import ImageDataConfig, VideoDataConfig


class TrainConfig(JobConfig):
    """`distillkit train`: train one classifier (the teacher, or any model) and evaluate it."""

    task: Literal["image"] = "image"
    """`image` for this schema; a config with `task: video` is a `VideoTrainConfig`."""
    data: ImageDataConfig = ImageDataConfig()
    """Image data set."""
    model: TeacherConfig = TeacherConfig()
    """The network to train."""


class VideoTrainConfig(JobConfig):
    """`distillkit train` with `task: video`: train a video classifier (non-incremental; the Joint bound)."""

    task: Literal["video"] = "video"
    """Must be `video`."""
    data: VideoDataConfig = VideoDataConfig()
    """Video data set."""
    model: VideoModelConfig = VideoModelConfig()
    """The video network."""
    train: BudgetConfig = BudgetConfig(epochs=10)
    """Training length."""
    optim: OptimConfig = OptimConfig(lr=0.01, weight_decay=1e-4)
    """Optimiser."""


def load_train_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> TrainConfig | VideoTrainConfig:
    """`distillkit train`'s config: a `VideoTrainConfig` when its `task` (or a `task=` override) is `video`."""
    return load_task_config(path, overrides, TrainConfig, VideoTrainConfig)
