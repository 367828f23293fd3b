"""The jobs as Python functions, with typed results, and the trained models loaded back from a run folder.

    from distillkit import api

    result = api.compress("configs/compress_fashion_mnist_vgg16.yaml", "runs/fmnist",
                          overrides=["pbkd.stage.epochs=1"])
    print(result.student.accuracy, result.macs_ratio)
    student = api.load_student("runs/fmnist")          # an nn.Module in eval mode

Each job function claims `out` exactly as the command line does (`engine.run_folder.claim`: the same refusals,
each a one-line `ConfigError`), runs the job unchanged and returns what it wrote to its report, typed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from distillkit.config import (
    CompressConfig,
    ImageDataConfig,
    Section,
    TrainConfig,
    VideoCompressConfig,
    VideoTrainConfig,
    apply_overrides,
    load_compress_config,
    load_config,
    load_train_config,
    validate,
)
from distillkit.config.core import as_recorded, task_of
from distillkit.errors import DistillkitError
from distillkit.incremental.metrics import classifier_figures, other_classifier

__all__ = [
    "ClassifierFigures",
    "CompressResult",
    "IncrementalResult",
    "ModelFigures",
    "StageFigures",
    "BaselineFigures",
    "TrainResult",
    "compress",
    "incremental",
    "load_incremental_model",
    "load_model",
    "load_student",
    "train",
]

T = TypeVar("T", bound=Section)
U = TypeVar("U", bound=Section)
ConfigLike = str | Path | dict | Section


# --------------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TrainResult:
    """What `distillkit train` reported (report.json). Accuracies are percentages."""

    out: Path
    model: str
    accuracy: float
    top5: float | None  # video runs only
    params: int
    macs: int | None  # image runs only
    train_seconds: float
    model_path: Path | None  # None when the model was loaded from `model.checkpoint` instead of trained
    report_path: Path


@dataclass(frozen=True)
class ModelFigures:
    """Top-1 accuracy (%), parameters, MACs and median latency (ms) per batch size of one model."""

    accuracy: float
    params: int
    macs: int
    latency_ms: dict[str, float]


@dataclass(frozen=True)
class StageFigures:
    """The student after one PBKD stage (`block` is None for the KD fine-tune)."""

    name: str
    stage: int
    block: int | None
    accuracy: float
    params: int
    macs: int
    steps: int
    seconds: float


@dataclass(frozen=True)
class BaselineFigures:
    """A baseline trained on the student architecture."""

    accuracy: float
    steps: int
    seconds: float


@dataclass(frozen=True)
class CompressResult:
    """What `distillkit compress` reported (report.json)."""

    out: Path
    teacher: ModelFigures
    student: ModelFigures
    macs_ratio: float  # teacher MACs / student MACs
    params_ratio: float
    stages: list[StageFigures]
    baselines: dict[str, BaselineFigures]
    blocks: list[str]
    student_path: Path
    onnx_path: Path | None
    teacher_path: Path | None  # None when the teacher was loaded from `teacher.checkpoint`
    report_path: Path


@dataclass(frozen=True)
class ClassifierFigures:
    """The figures of one classifier (`cnn` or `nme`) of a class-incremental run: `accuracy_matrix[i][j]` is the
    accuracy on step j's classes after step i; the rest as `incremental.metrics.summarize`."""

    classifier: str
    accuracy_matrix: list[list[float]]
    accuracy_per_step: list[float]
    avg_incremental_accuracy: float
    final_accuracy: float
    forgetting: float
    bwt: float
    old_accuracy: list[float | None]
    new_accuracy: list[float]


@dataclass(frozen=True)
class IncrementalResult:
    """What `distillkit incremental` reported (results.json).

    `own` holds the figures of the method's own classifier (NME for iCaRL-like methods, else CNN), `other` those
    of the other classifier when the run measured it (NME needs an exemplar memory), else None.
    """

    out: Path
    method: str
    classes_per_step: list[int]
    steps_done: int
    own: ClassifierFigures
    other: ClassifierFigures | None
    memory_frames: int
    memory_bytes: int
    memory_videos: int
    seconds_per_step: list[float]
    results_path: Path
    checkpoints: list[Path]

    @property
    def cnn(self) -> ClassifierFigures:
        """The CNN (network output) figures (always recorded: either the own classifier's or the other's)."""
        for figures in (self.own, self.other):
            if figures is not None and figures.classifier == "cnn":
                return figures
        raise DistillkitError(f"{self.results_path}: no CNN figures recorded")

    @property
    def nme(self) -> ClassifierFigures | None:
        """The nearest-mean-of-exemplars figures, when measured."""
        return self.own if self.own.classifier == "nme" else self.other


def train_result(report: dict, out: Path) -> TrainResult:
    """A `TrainResult` from a train report (as written to report.json)."""
    model_path = out / "model.pt"
    return TrainResult(
        out=out,
        model=report["model"],
        accuracy=report["accuracy"],
        top5=report.get("top5"),
        params=report["params"],
        macs=report.get("macs"),
        train_seconds=report["train_seconds"],
        model_path=model_path if model_path.is_file() else None,
        report_path=out / "report.json",
    )


def _figures(entry: dict) -> ModelFigures:
    return ModelFigures(entry["accuracy"], entry["params"], entry["macs"], dict(entry["latency_ms"]))


def compress_result(report: dict, out: Path) -> CompressResult:
    """A `CompressResult` from a compress report (as written to report.json)."""
    stages = [
        StageFigures(s["name"], s["stage"], s["block"], s["accuracy"], s["params"], s["macs"], s["steps"],
                     s["seconds"])
        for s in report["stages"]
    ]  # fmt: skip
    baselines = {
        m: BaselineFigures(b["accuracy"], b["steps"], b["seconds"]) for m, b in report["baselines"].items()
    }
    onnx, teacher = out / "student.onnx", out / "teacher.pt"
    return CompressResult(
        out=out,
        teacher=_figures(report["teacher"]),
        student=_figures(report["student"]),
        macs_ratio=report["speedup"]["macs"],
        params_ratio=report["speedup"]["params"],
        stages=stages,
        baselines=baselines,
        blocks=list(report["blocks"]),
        student_path=out / "student.pt",
        onnx_path=onnx if report.get("onnx") and onnx.is_file() else None,
        teacher_path=teacher if teacher.is_file() else None,
        report_path=out / "report.json",
    )


def _classifier(name: str, tree: Mapping[str, Any]) -> ClassifierFigures:
    return ClassifierFigures(
        classifier=name,
        accuracy_matrix=tree["accuracy_matrix"],
        accuracy_per_step=tree["accuracy_per_step"],
        avg_incremental_accuracy=tree["avg_incremental_accuracy"],
        final_accuracy=tree["final_accuracy"],
        forgetting=tree["forgetting"],
        bwt=tree["bwt"],
        old_accuracy=tree["old_accuracy"],
        new_accuracy=tree["new_accuracy"],
    )


def incremental_result(results: dict, out: Path) -> IncrementalResult:
    """An `IncrementalResult` from class-incremental results (as written to results.json)."""
    own_name = results.get("classifier") or "cnn"
    own_figures = classifier_figures(results, own_name)
    if own_figures is None:
        raise DistillkitError(f"{out / 'results.json'}: no figures of its own classifier {own_name!r}")
    own = _classifier(own_name, own_figures)
    other_figures = classifier_figures(results, other_classifier(own_name))
    other = _classifier(other_classifier(own_name), other_figures) if other_figures else None
    memory = results["memory"]
    return IncrementalResult(
        out=out,
        method=results["method"],
        classes_per_step=list(results["classes_per_step"]),
        steps_done=results["steps_done"],
        own=own,
        other=other,
        memory_frames=memory["frames"],
        memory_bytes=memory["bytes"],
        memory_videos=memory["videos"],
        seconds_per_step=list(results["seconds_per_step"]),
        results_path=out / "results.json",
        checkpoints=sorted((out / "checkpoints").glob("step_*.pt")),
    )


# ------------------------------------------------------------------------------------------------ configs
def _config(config: ConfigLike, schema: type[T], overrides: Sequence[str]) -> T:
    """`config` (a YAML path, a dict or a config object) with `overrides` (`--set` texts) applied, validated."""
    overrides = list(overrides)
    if isinstance(config, (str, Path)):
        return load_config(config, schema, overrides)
    if isinstance(config, Section):
        if not isinstance(config, schema):
            raise DistillkitError(f"config: a {type(config).__name__}, this job needs a {schema.__name__}")
        if not overrides:
            return config
        config = config.model_dump(mode="json")
    if not isinstance(config, dict):
        raise DistillkitError(f"config: a path, a dict or a {schema.__name__}, not a {type(config).__name__}")
    tree = copy.deepcopy(config)
    apply_overrides(tree, overrides, schema)
    return validate(tree, schema)


def _task_config(
    config: ConfigLike,
    overrides: Sequence[str],
    image: type[T],
    video: type[U],
    load: Callable[[str | Path, list[str]], T | U],
) -> T | U:
    """A job's config in its `video` schema when its `task` is `video`, else in its `image` one (`load` reads a
    file)."""
    if isinstance(config, (str, Path)):
        return load(config, list(overrides))
    if isinstance(config, (image, video)):
        return _config(config, type(config), overrides)
    if isinstance(config, dict):
        return _config(config, video if task_of(config, overrides, None) == "video" else image, overrides)
    return _config(config, image, overrides)  # the error names what is accepted


def _train_config(config: ConfigLike, overrides: Sequence[str]) -> TrainConfig | VideoTrainConfig:
    return _task_config(config, overrides, TrainConfig, VideoTrainConfig, load_train_config)


def _compress_config(config: ConfigLike, overrides: Sequence[str]) -> CompressConfig | VideoCompressConfig:
    return _task_config(config, overrides, CompressConfig, VideoCompressConfig, load_compress_config)


# ------------------------------------------------------------------------------------------------- jobs
def train(
    config: ConfigLike,
    out: str | Path,
    overrides: Sequence[str] = (),
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """`distillkit train CONFIG --out OUT [--set …]`: train and evaluate one image or video classifier.

    With `resume`, a finished run in `out` (same config) is returned without training again.
    """
    from distillkit.engine.run_folder import out_path
    from distillkit.jobs import TrainJob

    out = out_path(out)
    report = TrainJob().run(_train_config(config, overrides), out, resume=resume, overwrite=overwrite)
    return train_result(report, out)


def compress(
    config: ConfigLike,
    out: str | Path,
    overrides: Sequence[str] = (),
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> CompressResult:
    """`distillkit compress CONFIG --out OUT [--set …] [--resume]`: PBKD compression of the configured teacher."""
    from distillkit.engine.run_folder import out_path
    from distillkit.jobs import CompressJob

    out = out_path(out)
    report = CompressJob().run(_compress_config(config, overrides), out, resume=resume, overwrite=overwrite)
    return compress_result(report, out)


def incremental(
    config: ConfigLike,
    out: str | Path,
    overrides: Sequence[str] = (),
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> IncrementalResult:
    """`distillkit incremental CONFIG --out OUT [--set …] [--resume]`: a class-incremental run."""
    from distillkit.engine.run_folder import out_path
    from distillkit.incremental.config import IncrementalConfig
    from distillkit.jobs import IncrementalJob

    out = out_path(out)
    cfg = _config(config, IncrementalConfig, overrides)
    results = IncrementalJob().run(cfg, out, resume=resume, overwrite=overwrite)
    return incremental_result(results, out)


# -------------------------------------------------------------------------------------------- loading back
def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _run_job(folder: Path) -> str | None:
    """The job of the run `folder` holds: from its run.json, else guessed from its files (older runs)."""
    marker = _read_json(folder / "run.json")
    if marker is not None and isinstance(marker.get("job"), str):
        return marker["job"]
    report = _read_json(folder / "report.json")
    if report is not None:
        return "compress" if report.get("method") == "pbkd" else "train"
    if (folder / "results.json").is_file() or any((folder / "checkpoints").glob("step_*.pt")):
        return "incremental"
    return None


def _finished_report(folder: Path, job: str, what: str) -> dict:
    """The report.json of a finished `job` run in `folder`; a one-line error when it is not one."""
    if not folder.is_dir():
        raise DistillkitError(f"{folder}: not a folder; give the --out folder of a distillkit {job} run")
    found = _run_job(folder)
    if found != job:
        holds = f"holds a {found} run" if found else "is not a distillkit run folder"
        raise DistillkitError(f"{folder}: {holds}, not a {job} run; {what}")
    report = _read_json(folder / "report.json")
    if report is None or not isinstance(report.get("config"), dict):
        raise DistillkitError(f"{folder}: the {job} run has not finished (no report.json); {what}")
    return report


def _image_shape(cfg: ImageDataConfig) -> tuple[int, int]:
    """(input channels, classes) of an image data set, without loading it."""
    if cfg.name == "synthetic":
        return cfg.synthetic.channels, cfg.synthetic.num_classes
    if cfg.name in ("mnist", "fashion_mnist"):
        return 1, 10
    if cfg.name in ("cifar10", "cifar100"):
        return 3, 10 if cfg.name == "cifar10" else 100
    from distillkit.data.images import build_image_datasets

    data = build_image_datasets(cfg, 0)  # imagefolder: the classes are its subfolders
    return data.in_channels, data.num_classes


def _load_state(model: nn.Module, path: Path, what: str) -> nn.Module:
    from distillkit.engine.checkpoint import check_state_dict, read_state_dict

    state = read_state_dict(path)
    check_state_dict(state, model.state_dict(), path, what)
    model.load_state_dict(state)
    return model.eval()


def load_model(run_dir: str | Path) -> nn.Module:
    """The model a `train` run trained (model.pt, or the `model.checkpoint` it evaluated), in eval mode."""
    from distillkit.models import build_model
    from distillkit.models.factory import build_video_model

    folder = Path(run_dir)
    report = _finished_report(
        folder, "train", "load_model loads the model of a finished `distillkit train` run"
    )
    cfg = _train_config(report["config"], [])
    path = folder / "model.pt"
    if not path.is_file() and cfg.model.checkpoint is not None:
        path = Path(cfg.model.checkpoint)
    with torch.random.fork_rng(devices=[]):
        if isinstance(cfg, VideoTrainConfig):
            model = build_video_model(cfg.model, report["num_classes"], cfg.data.num_segments)
        else:
            channels, classes = _image_shape(cfg.data)
            m = cfg.model
            model = build_model(m.arch, classes, channels, m.width, m.small_input)
    return _load_state(model, path, "the model of the run's config")


def load_student(run_dir_or_path: str | Path) -> nn.Module:
    """The PBKD student of a `compress` run (its folder, or its student.pt), in eval mode.

    Rebuilt from the run's config (report.json) as the run built it: the teacher architecture cut into the run's
    blocks, a student block designed for each, then the weights of student.pt.
    """
    from distillkit.compress.student import student_from_config
    from distillkit.models import build_model
    from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model

    given = Path(run_dir_or_path)
    folder = given.parent if given.is_file() else given
    path = given if given.is_file() else folder / "student.pt"
    what = "load_student loads the student of a finished `distillkit compress` run"
    report = _finished_report(folder, "compress", what)
    if report["config"].get("task") == "video":
        return _load_video_student(folder, path, report)
    cfg = validate(
        as_recorded(report["config"], CompressConfig),
        CompressConfig,
        source=f"{folder / 'report.json'}: config",
    )
    channels, classes = _image_shape(cfg.data)
    t = cfg.teacher
    with torch.random.fork_rng(devices=[]):
        teacher = split_model(
            build_model(t.arch, classes, channels, t.width, t.small_input).eval(), cfg.blocks
        )
        size = cfg.data.image_size
        shapes = block_shapes(teacher, torch.zeros(2, channels, size, size))
        s = cfg.student
        ratio = report.get("student_ratio", s.ratio)  # the ratio `student.macs_reduction` chose
        blocks = student_from_config(teacher.blocks, shapes, s, ratio, "random")
        student = BlockwiseNet(blocks, copy.deepcopy(teacher.head), teacher.names)
    return _load_state(student, path, "the student of the run's config")


def _load_video_student(folder: Path, path: Path, report: dict) -> nn.Module:
    """The student of a video compress run, rebuilt on its teacher run's model (`teacher.from_run`, still needed)."""
    from distillkit.compress.student import student_from_config
    from distillkit.compress.video import load_video_teacher
    from distillkit.models.blocks import BlockwiseNet, block_shapes
    from distillkit.models.video_blocks import split_video_model

    cfg = validate(
        as_recorded(report["config"], VideoCompressConfig),
        VideoCompressConfig,
        source=f"{folder / 'report.json'}: config",
    )
    with torch.random.fork_rng(devices=[]):
        teacher = split_video_model(load_video_teacher(Path(cfg.teacher.from_run)).model, cfg.blocks)
        shapes = block_shapes(teacher, torch.zeros(2, *report["video"]["clip_shape"]))
        blocks = student_from_config(teacher.blocks, shapes, cfg.student, report["student_ratio"], "random")
        student = BlockwiseNet(blocks, copy.deepcopy(teacher.head), teacher.names)
    return _load_state(student, path, "the student of the run's config")


def load_incremental_model(run_dir: str | Path, step: int | None = None) -> nn.Module:
    """The model of a class-incremental run after its last finished step, or after `step`
    (checkpoints/step_XXX.pt), in eval mode; it maps clips (N, T, C, H, W) to logits over the classes seen."""
    from distillkit.engine.checkpoint import check_state_dict
    from distillkit.incremental.config import IncrementalConfig
    from distillkit.incremental.methods import build_method
    from distillkit.incremental.state import StreamFolder, StreamState
    from distillkit.models.factory import build_video_model

    folder = Path(run_dir)
    what = "load_incremental_model loads a model of a `distillkit incremental` run"
    if not folder.is_dir():
        raise DistillkitError(
            f"{folder}: not a folder; give the --out folder of a distillkit incremental run"
        )
    found = _run_job(folder)
    if found != "incremental":
        holds = f"holds a {found} run" if found else "is not a distillkit run folder"
        raise DistillkitError(f"{folder}: {holds}, not an incremental run; {what}")
    done = StreamFolder(folder).finished_steps()
    if not done:
        raise DistillkitError(
            f"{folder}: the incremental run has no finished step (no checkpoints/step_*.pt)"
        )
    step = done[-1] if step is None else step
    if step not in done:
        raise DistillkitError(f"{folder}: no checkpoint of step {step}; finished steps: {done}")
    path = StreamFolder(folder).checkpoint(step)
    state = StreamState.load(path)
    cfg = validate(state.config, IncrementalConfig, source=f"step {step} checkpoint: config")
    results = _read_json(folder / "results.json") or {}
    per_step = results.get("classes_per_step") or []
    if len(per_step) <= step:
        raise DistillkitError(f"{folder}: results.json does not record the classes of step {step}")
    seen = sum(per_step[: step + 1])
    method = build_method(cfg.method.name, cfg.method.options)
    with torch.random.fork_rng(devices=[]):
        model = build_video_model(cfg.model, per_step[0], cfg.data.num_segments)
        model.head = method.build_head(model.feature_dim, seen)
    check_state_dict(state.model, model.state_dict(), path, "the model of the run's config")
    model.load_state_dict(state.model)
    return model.eval()
