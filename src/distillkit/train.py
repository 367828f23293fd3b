"""`distillkit train`: train one image classifier and evaluate it (also how a teacher is obtained)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.compress.profile import count_macs, count_params
from distillkit.config import TeacherConfig, TrainConfig, dump_config
from distillkit.data.images import ImageDatasets, build_image_datasets, make_loaders
from distillkit.engine.checkpoint import save_checkpoint
from distillkit.engine.device import resolve_device, seed_everything
from distillkit.engine.loop import ClassifierObjective, evaluate, fit
from distillkit.models import build_model, load_weights
from distillkit.report.meta import run_metadata


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
) -> ObtainedModel:
    """Build the model; load `cfg.checkpoint` if given, else train it and save it to `save_to` (eval mode)."""
    seed_everything(seed)
    model = build_model(cfg.arch, data.num_classes, data.in_channels, cfg.width, cfg.small_input)
    if cfg.checkpoint is not None:
        load_weights(model, cfg.checkpoint)
        return ObtainedModel(model.to(device).eval(), 0.0, 0)
    model.to(device)
    steps = cfg.train.num_steps(len(train_loader))
    result = fit(ClassifierObjective(model), train_loader, steps, cfg.optim, device, desc=f"train {cfg.arch}")
    save_checkpoint(model.state_dict(), save_to)
    return ObtainedModel(model.eval(), result.seconds, result.samples)


def run_train(cfg: TrainConfig, out: Path) -> dict:
    """Train `cfg.model` on `cfg.data`; writes model.pt and report.json to `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = build_image_datasets(cfg.data, cfg.seed)
    train_loader, test_loader = make_loaders(data, cfg.data, cfg.seed)
    obtained = obtain_model(cfg.model, data, train_loader, device, out / "model.pt", cfg.seed)
    model, seconds = obtained.model, obtained.seconds
    input_shape = (1, data.in_channels, data.image_size, data.image_size)
    report = {
        "model": cfg.model.arch,
        "accuracy": evaluate(model, test_loader, device),
        "params": count_params(model),
        "macs": count_macs(model, input_shape),
        "train_seconds": seconds,
        "train_samples": obtained.samples,
        "seed": cfg.seed,
        "config": dump_config(cfg),
        **run_metadata(device),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"{cfg.model.arch}: top-1 {report['accuracy']:.2f}% on {cfg.data.name} ({seconds:.0f}s training)")
    return report
