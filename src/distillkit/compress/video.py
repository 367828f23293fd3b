"""What PBKD of a video network needs beyond the image path: the teacher, read from a finished run folder
(`teacher.from_run`), the data it is compressed on, and clip-level accuracy.

A `train` run with `task: video` gives its model.pt, classifying the data set's classes. An `incremental` run gives
the model after its last step, classifying the classes it has seen in its class order; the student is tested on all
the videos of those classes, labels mapped to the teacher's outputs as the run maps them
(`incremental.data.ClassSubset`), and trains on them (`teacher.train_on: all`) or only on the exemplars of the run's
memory after its last step (`memory`: what the class-incremental setting keeps, replayed as the run replays it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from distillkit.config import VideoCompressConfig, VideoTrainConfig, validate
from distillkit.data.videos import VideoDatasets, build_video_datasets
from distillkit.engine.checkpoint import check_state_dict, read_state_dict
from distillkit.engine.distributed import is_distributed
from distillkit.engine.loop import predict
from distillkit.engine.metrics import topk_accuracy
from distillkit.errors import ConfigError, DistillkitError
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset
from distillkit.incremental.replay import Replay
from distillkit.models.factory import build_video_model
from distillkit.models.tsm import VideoResNet

KEY = "teacher.from_run"
RUNS = "a finished `distillkit train` run with task: video, or a finished `distillkit incremental` run"


@dataclass
class VideoTeacher:
    """A trained video network and what it classifies: `classes[i]` is the data set's label of output i."""

    model: VideoResNet
    kind: Literal["train", "incremental"]
    classes: list[int]
    num_segments: int
    seconds: float
    """What training it cost (all steps of an incremental run)."""
    samples: int
    """Training samples it saw (0 when the run does not record them: an incremental run)."""
    memory: Path | None = None
    """An incremental run's memory folder after its last step."""
    replay: Replay = "hold"
    """How that run replays an exemplar of fewer key-frames than its clips (`memory.replay`)."""


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load_video_teacher(folder: Path) -> VideoTeacher:
    """The model of the run in `folder` (`teacher.from_run`), in eval mode; one-line `DistillkitError`s when the
    folder is missing, is not such a run, has not finished, or holds no video model."""
    if not folder.is_dir():
        raise ConfigError(f"{KEY}: {folder} is not a folder; give the --out folder of {RUNS}")
    marker = _json(folder / "run.json")
    job = marker.get("job") if marker is not None else None
    if job == "train":
        return _train_teacher(folder)
    if job == "incremental":
        return _incremental_teacher(folder)
    holds = f"holds a {job} run" if isinstance(job, str) else "is not a distillkit run folder (no run.json)"
    raise ConfigError(f"{KEY}: {folder} {holds}; give the --out folder of {RUNS}")


def _video_model(cfg: Any, num_classes: int, num_segments: int) -> VideoResNet:
    """The configured network, untrained (its `pretrained` backbone file is not read: all weights are loaded)."""
    with torch.random.fork_rng(devices=[]):
        return build_video_model(cfg.model_copy(update={"pretrained": None}), num_classes, num_segments)


def _train_teacher(folder: Path) -> VideoTeacher:
    report = _json(folder / "report.json")
    if report is None or not isinstance(report.get("config"), dict):
        raise ConfigError(f"{KEY}: the train run in {folder} has not finished (no report.json)")
    if report["config"].get("task", "image") != "video":
        raise ConfigError(
            f"{KEY}: {folder} holds an image classifier (task: image), not a video model; compress it with "
            f"an image config (teacher.checkpoint: {folder / 'model.pt'})"
        )
    cfg = validate(report["config"], VideoTrainConfig, source=f"{folder / 'report.json'}: config")
    path = folder / "model.pt"
    if not path.is_file() and cfg.model.checkpoint is not None:
        path = Path(cfg.model.checkpoint)  # a run that evaluated a given checkpoint
    if not path.is_file():
        raise ConfigError(f"{KEY}: the train run in {folder} has no model.pt")
    num_classes = int(report["num_classes"])
    model = _video_model(cfg.model, num_classes, cfg.data.num_segments)
    state = read_state_dict(path)
    check_state_dict(state, model.state_dict(), path, "the model of the run's config")
    model.load_state_dict(state)
    seconds, samples = float(report.get("train_seconds", 0.0)), int(report.get("train_samples", 0))
    return VideoTeacher(
        model.eval(), "train", list(range(num_classes)), cfg.data.num_segments, seconds, samples
    )


def _incremental_teacher(folder: Path) -> VideoTeacher:
    from distillkit.incremental.config import IncrementalConfig
    from distillkit.incremental.methods import build_method
    from distillkit.incremental.state import StreamFolder, StreamState

    results = _json(folder / "results.json")
    if results is None:
        raise ConfigError(f"{KEY}: the incremental run in {folder} has not finished a step (no results.json)")
    per_step, order = list(results["classes_per_step"]), list(results["class_order"])
    seen = sum(per_step)
    if seen < len(order):
        raise ConfigError(
            f"{KEY}: the incremental run in {folder} has not finished (it has learnt {seen} of its "
            f"{len(order)} classes); finish it with `distillkit incremental --resume`"
        )
    path = StreamFolder(folder).checkpoint(len(per_step) - 1)
    if not path.is_file():
        raise ConfigError(
            f"{KEY}: the incremental run in {folder} has no checkpoint of its last step ({path})"
        )
    state = StreamState.load(path)
    cfg = validate(state.config, IncrementalConfig, source=f"{path}: config")
    method = build_method(cfg.method.name, cfg.method.options)
    model = _video_model(cfg.model, per_step[0], cfg.data.num_segments)
    model.head = method.build_head(model.feature_dim, seen)
    check_state_dict(state.model, model.state_dict(), path, "the model of the run's config")
    model.load_state_dict(state.model)
    seconds = float(sum(results.get("seconds_per_step", [])))
    memory = StreamFolder(folder).memory(len(per_step) - 1)
    return VideoTeacher(
        model.eval(), "incremental", order[:seen], cfg.data.num_segments, seconds, 0, memory=memory,
        replay=cfg.memory.replay,
    )  # fmt: skip


def teacher_data(cfg: VideoCompressConfig, teacher: VideoTeacher) -> tuple[VideoDatasets, str]:
    """The data set of `cfg.data`, restricted to the teacher's classes with labels mapped to its outputs (an
    incremental teacher; training on the run's memory with `teacher.train_on: memory`), and a sentence saying what
    the student trains on."""
    _check_train_on(cfg, teacher)
    if cfg.data.num_segments != teacher.num_segments:
        raise ConfigError(
            f"data.num_segments is {cfg.data.num_segments}, the teacher ({KEY}) was trained on "
            f"{teacher.num_segments}; give the teacher run's"
        )
    data = build_video_datasets(cfg.data, cfg.seed)
    if teacher.kind == "train":
        if data.num_classes != len(teacher.classes):
            raise ConfigError(
                f"data: the data set has {data.num_classes} classes, the teacher ({KEY}) classifies "
                f"{len(teacher.classes)}; give the teacher run's data section"
            )
        return data, f"all {len(data.train)} training videos of the data set"
    from distillkit.incremental.data import ClassSubset
    from distillkit.incremental.scenario import Scenario

    if max(teacher.classes) >= data.num_classes:
        raise ConfigError(
            f"data: the data set has {data.num_classes} classes, the teacher ({KEY}) has seen labels up to "
            f"{max(teacher.classes)}; give the incremental run's data section"
        )
    scenario = Scenario(class_order=teacher.classes, steps=[teacher.classes])
    train = ClassSubset(data.train, teacher.classes, scenario)
    test = ClassSubset(data.test, teacher.classes, scenario)
    names = [data.class_names[c] for c in teacher.classes]
    if cfg.teacher.train_on == "memory":
        memory = _run_memory(teacher)
        clips = MemoryDataset(memory, data.train.transform, seed=cfg.seed, replay=teacher.replay)
        subset = VideoDatasets(clips, test, len(teacher.classes), names, data.train_eval, data.missing)
        said = (
            f"the {len(clips)} exemplars of the incremental run's memory after its last step ({memory.frames} "
            f"frames of {len(teacher.classes)} classes), the data the class-incremental setting keeps"
        )
        return subset, said
    subset = VideoDatasets(train, test, len(teacher.classes), names, data.train_eval, data.missing)
    said = (
        f"all {len(train)} training videos of the {len(teacher.classes)} classes the incremental run has seen "
        "(the teacher itself saw old classes only through its memory)"
    )
    return subset, said


def check_video_teacher(cfg: VideoCompressConfig) -> None:
    """Load the teacher of `cfg` and, with `teacher.train_on: memory`, its run's memory: their one-line errors
    before any work."""
    teacher = load_video_teacher(Path(cfg.teacher.from_run))
    _check_train_on(cfg, teacher)
    if cfg.teacher.train_on == "memory":
        _run_memory(teacher)


def _check_train_on(cfg: VideoCompressConfig, teacher: VideoTeacher) -> None:
    if cfg.teacher.train_on == "memory" and teacher.kind != "incremental":
        raise ConfigError(
            f"teacher.train_on: memory needs an incremental run's teacher; {cfg.teacher.from_run} holds a "
            f"{teacher.kind} run (give train_on: all)"
        )


def _run_memory(teacher: VideoTeacher) -> ExemplarMemory:
    """The incremental run's memory after its last step; one line when it is missing, empty or lacks a class the
    teacher classifies."""
    where = f"teacher.train_on: memory: {KEY}"
    if teacher.memory is None or not (teacher.memory / ExemplarMemory.MANIFEST).is_file():
        raise ConfigError(f"{where}: the run keeps no memory after its last step ({teacher.memory})")
    memory = ExemplarMemory.load(teacher.memory)
    missing = sorted(set(range(len(teacher.classes))) - set(memory.classes))
    if missing:
        raise ConfigError(
            f"{where}: the memory in {teacher.memory} holds no exemplar of {len(missing)} of the "
            f"{len(teacher.classes)} classes the teacher classifies (outputs {missing[:5]}); give train_on: all"
        )
    return memory


class _Segments(nn.Module):
    """`model` with the `num_segments` that `engine.loop.predict` reads to split multi-view test clips."""

    def __init__(self, model: nn.Module, num_segments: int) -> None:
        super().__init__()
        self.model, self.num_segments = model, num_segments

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def clip_accuracy(model: nn.Module, loader: DataLoader, device: torch.device, num_segments: int) -> float:
    """Top-1 accuracy (%) over the test videos, as `distillkit train` evaluates a video model (the logits of a
    video's test views averaged)."""
    logits, targets = predict(_Segments(model, num_segments), loader, device, sharded=is_distributed())
    if len(targets) == 0:
        raise DistillkitError("no test videos to evaluate the video model on")
    return topk_accuracy(logits, targets, 1)
