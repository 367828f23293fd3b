"""`distillkit train`: train one image or video classifier and evaluate it (also how a teacher is obtained).

Launched by torchrun with WORLD_SIZE > 1, it trains data-parallel (DDP; `data.batch_size` is the global batch),
evaluates on shards of the test set, and only rank 0 writes files and prints; every rank returns the same report.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from distillkit.config import TrainConfig, VideoTrainConfig, dump_config
from distillkit.data.images import build_image_datasets, make_loaders
from distillkit.data.video.dataset import append_skip_log, read_skip_log
from distillkit.data.videos import build_video_datasets, video_loader
from distillkit.engine.device import seed_everything
from distillkit.engine.distributed import gather_objects, is_distributed, is_main, process_group
from distillkit.engine.loop import evaluate, predict
from distillkit.engine.metrics import confusion_matrix, topk_accuracy
from distillkit.engine.profile import count_macs, count_params
from distillkit.engine.run_folder import write_atomically
from distillkit.engine.tracking import tracker
from distillkit.jobs.base import Job, prepare
from distillkit.models import load_weights
from distillkit.models.factory import build_video_model, obtain_model, train_classifier
from distillkit.report.meta import run_metadata
from distillkit.report.plots import plot_confusion_matrix
from distillkit.report.run_report import train_report

TRAINING_STATE = "checkpoints/train.pt"
"""Where a train run keeps its training state after each epoch, for `--resume` (`engine.fit_state`)."""


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
        return train_model(cfg, out, device)


def run_train(cfg: TrainConfig | VideoTrainConfig, out: Path) -> dict:
    """Train `cfg.model` on `cfg.data` into `out`, outside a run folder's bookkeeping (no run.json, no
    `--resume` checks): what `TrainJob` executes, for benchmarks and tests."""
    with process_group(cfg.device) as device:
        return train_model(cfg, Path(out), device)


def train_model(cfg: TrainConfig | VideoTrainConfig, out: Path, device: torch.device) -> dict:
    """Train and evaluate the image or video classifier of `cfg` on `device`; returns the report."""
    if isinstance(cfg, VideoTrainConfig):
        return train_videos(cfg, out, device)
    return train_images(cfg, out, device)


def train_images(cfg: TrainConfig, out: Path, device: torch.device) -> dict:
    """Train an image classifier; writes model.pt, report.json and report.md to `out`."""
    prepare(cfg.perf, cfg.data.batch_size, out, device)
    seed_everything(cfg.seed)
    distributed = is_distributed()
    data = build_image_datasets(cfg.data, cfg.seed)
    train_loader, test_loader = make_loaders(data, cfg.data, cfg.seed, distributed=distributed)
    obtained = obtain_model(
        cfg.model, data, train_loader, device, out / "model.pt", cfg.seed, cfg.perf, out / TRAINING_STATE
    )
    model, seconds = obtained.model, obtained.seconds
    input_shape = (1, data.in_channels, data.image_size, data.image_size)
    report = {
        "model": cfg.model.arch,
        "accuracy": evaluate(model, test_loader, device, sharded=distributed),
        "params": count_params(model),
        "macs": count_macs(model, input_shape),
        "train_seconds": seconds,
        "train_samples": obtained.samples,
        "seed": cfg.seed,
        "config": dump_config(cfg),
        **run_metadata(device),
    }
    tracker().scalars("test", {"accuracy": report["accuracy"]}, obtained.samples)
    if is_main():
        write_report(report, out)
        print(
            f"{cfg.model.arch}: top-1 {report['accuracy']:.2f}% on {cfg.data.name} ({seconds:.0f}s training)"
        )
    return report


def train_videos(cfg: VideoTrainConfig, out: Path, device: torch.device) -> dict:
    """Train a TSM/TSN video classifier; report top-1/top-5 and a confusion matrix (`confusion_matrix.png`)."""
    with tempfile.TemporaryDirectory() as scratch:
        return _train_videos(cfg, out, device, Path(scratch))


def _train_videos(cfg: VideoTrainConfig, out: Path, device: torch.device, scratch: Path) -> dict:
    prepare(cfg.perf, cfg.data.batch_size, out, device)
    seed_everything(cfg.seed)
    distributed = is_distributed()
    data = build_video_datasets(cfg.data, cfg.seed)
    # Rank 0 logs skipped videos to the run folder; other ranks to a scratch file, merged into it at the end.
    skip_log = out / "skipped.jsonl" if is_main() else scratch / "skipped.jsonl"
    skip_log.unlink(missing_ok=True)
    if data.missing and is_main():  # listed videos not on disk, left out before any work (on_error: skip)
        append_skip_log(skip_log, data.missing)
    for split in (data.train, data.test):
        split.skip_log = skip_log
    train_loader = video_loader(data.train, cfg.data, train=True, seed=cfg.seed, distributed=distributed)
    test_loader = video_loader(data.test, cfg.data, train=False, seed=cfg.seed, distributed=distributed)
    model = build_video_model(cfg.model, data.num_classes, cfg.data.num_segments).to(device)
    seconds = samples = 0
    if cfg.model.checkpoint is not None:
        load_weights(model, cfg.model.checkpoint)
    else:
        name = "TSM" if cfg.model.shift else "TSN"
        trained = train_classifier(
            model, train_loader, cfg.train, cfg.optim, device, f"train {name}", out / "model.pt", cfg.perf,
            out / TRAINING_STATE,
        )  # fmt: skip
        seconds, samples = trained.seconds, trained.samples
    logits, targets = predict(model, test_loader, device, sharded=distributed)
    matrix = confusion_matrix(logits, targets, data.num_classes)
    skipped = _merge_skips(read_skip_log(skip_log), skip_log) if distributed else read_skip_log(skip_log)
    report = {
        "model": f"{'tsm' if cfg.model.shift else 'tsn'}_{cfg.model.arch}",
        "accuracy": topk_accuracy(logits, targets, 1),
        "top5": topk_accuracy(logits, targets, 5),
        "num_classes": data.num_classes,
        "test_videos": len(targets),
        "confusion_matrix": matrix,
        "class_names": data.class_names,
        "params": count_params(model),
        "train_seconds": seconds,
        "train_samples": samples,
        "skipped": {"count": len(skipped), "videos": skipped},
        "seed": cfg.seed,
        "config": dump_config(cfg),
        **run_metadata(device),
    }
    if not is_main():
        return report
    plot_confusion_matrix(matrix, data.class_names, out / "confusion_matrix.png", "Test confusion matrix")
    write_report(report, out)
    print(
        f"{report['model']}: top-1 {report['accuracy']:.2f}%, top-5 {report['top5']:.2f}% on "
        f"{len(targets)} test videos ({seconds:.0f}s training)"
    )
    if skipped:
        print(f"skipped {len(skipped)} unreadable videos (on_error: skip); listed in {skip_log}")
    return report


def write_report(report: dict, out: Path) -> None:
    """report.json and its Markdown rendering, report.md, each written atomically."""
    write_atomically(out / "report.json", json.dumps(report, indent=2))
    write_atomically(out / "report.md", train_report(report, time.strftime("%Y-%m-%d %H:%M")))


def _merge_skips(own: list[dict[str, str]], log: Path) -> list[dict[str, str]]:
    """Distinct skipped videos of all ranks (rank order); rank 0 appends the others' to its log `log`."""
    merged: dict[str, dict[str, str]] = {}
    for part in gather_objects(own):
        for entry in part:  # type: ignore[union-attr]
            merged.setdefault(entry["source"], entry)
    mine = {e["source"] for e in own}
    others = [entry for source, entry in merged.items() if source not in mine]
    if is_main() and others:
        with open(log, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(entry) + "\n" for entry in others)
    return list(merged.values())
