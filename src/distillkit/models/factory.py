"""Model factories the jobs share: a configured video network, and an image model loaded or trained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.config import BudgetConfig, OptimConfig, PerformanceConfig, TeacherConfig, VideoModelConfig
from distillkit.data.images import ImageDatasets
from distillkit.engine.checkpoint import save_checkpoint
from distillkit.engine.device import seed_everything
from distillkit.engine.distributed import all_reduce_sum, data_parallel, is_distributed, is_main
from distillkit.engine.fit_state import Resumable
from distillkit.engine.loop import ClassifierObjective, fit
from distillkit.models import build_model, load_weights
from distillkit.models.tsm import VideoResNet


def build_video_model(cfg: VideoModelConfig, num_classes: int, num_segments: int) -> VideoResNet:
    """The TSM/TSN network of a config (pretrained backbone from a local file when given)."""
    return VideoResNet(
        cfg.arch,
        num_classes,
        num_segments,
        width=cfg.width,
        shift=cfg.shift,
        shift_div=cfg.shift_div,
        small_input=cfg.small_input,
        pretrained=cfg.pretrained,
    )


@dataclass
class ObtainedModel:
    """A model ready for use, and what training it cost here (zeros when it was loaded)."""

    model: nn.Module
    seconds: float
    samples: int


def obtain_model(
    cfg: TeacherConfig,
    data: ImageDatasets,
    train_loader: DataLoader,
    device: torch.device,
    save_to: Path,
    seed: int,
    perf: PerformanceConfig | None = None,
    state: Path | None = None,
) -> ObtainedModel:
    """Build the model; load `cfg.checkpoint` if given, else train it (with the speed options `perf`) and save it
    to `save_to` (eval mode). Under torchrun it trains data-parallel (`engine.distributed.data_parallel`), rank 0
    saves, and `samples` counts every process's. With `state`, training keeps its state there after each epoch
    and goes on from it when it is there (`engine.fit_state`)."""
    seed_everything(seed)
    model = build_model(cfg.arch, data.num_classes, data.in_channels, cfg.width, cfg.small_input)
    if cfg.checkpoint is not None:
        load_weights(model, cfg.checkpoint)
        return ObtainedModel(model.to(device).eval(), 0.0, 0)
    trained = train_classifier(
        model.to(device),
        train_loader,
        cfg.train,
        cfg.optim,
        device,
        f"train {cfg.arch}",
        save_to,
        perf,
        state,
    )
    return ObtainedModel(model.eval(), trained.seconds, trained.samples)


def train_classifier(
    model: nn.Module,
    train_loader: DataLoader,
    budget: BudgetConfig,
    optim: OptimConfig,
    device: torch.device,
    desc: str,
    save_to: Path,
    perf: PerformanceConfig | None = None,
    state: Path | None = None,
) -> ObtainedModel:
    """Train `model` (on `device`) with cross-entropy for `budget`, data-parallel under torchrun; rank 0 saves its
    weights to `save_to`, and `samples` counts every process's. With `state`: as in `obtain_model`."""
    steps = budget.num_steps(len(train_loader))
    resumable = Resumable(state, model) if state is not None else None
    with data_parallel(model, device) as trained:
        result = fit(
            ClassifierObjective(trained), train_loader, steps, optim, device, desc=desc, perf=perf,
            resumable=resumable,
        )  # fmt: skip
    if is_main():
        save_checkpoint(model.state_dict(), save_to)
    samples = int(all_reduce_sum([result.samples])[0]) if is_distributed() else result.samples
    return ObtainedModel(model, result.seconds, samples)
