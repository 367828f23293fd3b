"""`distillkit compress`: config → data + teacher → PBKD (+ baselines) → report, student, ONNX, plot.

A run has phases: the teacher, each PBKD stage, the KD fine-tune, each baseline. Each phase records what it
produced when it finishes (`compress.resume`), so that `--resume` goes on after the last finished one.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.compress.baselines import StudentObjective, baseline_student
from distillkit.compress.compute import block_costs, pbkd_training_macs, supervised_training_macs
from distillkit.compress.export import export_onnx
from distillkit.compress.pbkd import KDFinetuneObjective, progressive_distill, stage_order
from distillkit.compress.receptive_field import receptive_field
from distillkit.compress.resume import CompressionProgress
from distillkit.compress.student import is_copy, ratio_from_config, resolve_init, student_from_config
from distillkit.compress.video import check_video_teacher, clip_accuracy, load_video_teacher, teacher_data
from distillkit.config import CompressConfig, ProfileConfig, TeacherConfig, VideoCompressConfig, dump_config
from distillkit.data.images import ImageDatasets, build_image_datasets, make_loaders
from distillkit.data.videos import video_loader
from distillkit.engine.checkpoint import save_checkpoint
from distillkit.engine.device import resolve_device, seed_everything
from distillkit.engine.distributed import is_distributed, is_main
from distillkit.engine.loop import FitResult, evaluate, fit
from distillkit.engine.profile import measure_latency, profile_model
from distillkit.engine.run_folder import write_atomically
from distillkit.engine.tracking import tracker
from distillkit.jobs.base import Job, prepare
from distillkit.models import build_model
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model
from distillkit.models.factory import ObtainedModel, obtain_model
from distillkit.models.video_blocks import ClipBlock, frames_seen, shift_convs, split_video_model
from distillkit.report.meta import run_metadata
from distillkit.report.plots import plot_accuracy_vs_macs
from distillkit.report.run_report import compress_report, compress_summary
from distillkit.report.tables import print_table

T = TypeVar("T")


class CompressJob(Job[CompressConfig | VideoCompressConfig]):
    """Resumes after its last finished phase (teacher, each stage, fine-tune, each baseline). A config with
    `task: video` compresses a video network (`VideoCompressionRun`)."""

    name = "compress"

    def check(self, cfg: CompressConfig | VideoCompressConfig) -> None:
        """A video config's teacher run (and, with `teacher.train_on: memory`, its memory), before the run folder is
        claimed."""
        if isinstance(cfg, VideoCompressConfig):
            check_video_teacher(cfg)

    def legacy(self, out: Path) -> bool:
        """A compression run written before run folders were marked (run.json)."""
        return (out / "checkpoints" / "compress.pt").is_file()

    def execute(
        self, cfg: CompressConfig | VideoCompressConfig, out: Path, device: torch.device, resume: bool
    ) -> dict:
        kind = VideoCompressionRun if isinstance(cfg, VideoCompressConfig) else CompressionRun
        return kind(cfg, out, device=device, resume=resume).run()


@dataclass
class Meter:
    """Accuracy and costs of a model: parameters, MACs (on `input_shape`, one image without its batch) and
    latency; latency on rank 0 only (other ranks would perturb it)."""

    profile: ProfileConfig
    input_shape: tuple[int, ...]
    test_loader: DataLoader
    device: torch.device
    accuracy_of: Callable[[nn.Module], float] | None = None
    """Accuracy (%) of a model on the test set (default: `engine.loop.evaluate`)."""
    unit: str | None = None
    """What one input is ("clips"): entries then also give `<unit>_per_s` per batch size (batch / latency)."""

    def accuracy(self, model: nn.Module) -> float:
        if self.accuracy_of is not None:
            return self.accuracy_of(model)
        return evaluate(model, self.test_loader, self.device, sharded=is_distributed())

    def add_throughput(self, entry: dict[str, Any]) -> None:
        """Inputs per second at each batch size of `entry["latency_ms"]`, as `<unit>_per_s` (with a `unit`)."""
        if self.unit is not None:
            lat = entry["latency_ms"]
            entry[f"{self.unit}_per_s"] = {b: int(b) * 1000.0 / ms for b, ms in lat.items() if ms > 0}

    @property
    def stage_repeats(self) -> int:
        """Timed runs of a stage's latency: indicative, kept short."""
        return min(10, self.profile.latency_repeats)

    def measure(self, model: nn.Module, repeats: int | None = None) -> dict[str, Any]:
        """The report entry of `model`: accuracy, params, MACs, latency (and GPU latency on CUDA)."""
        p = self.profile
        batches = p.latency_batches if is_main() else []
        prof = profile_model(
            model, self.input_shape, batches, repeats or p.latency_repeats, self.device, p.latency_threads
        )
        entry = {
            "accuracy": self.accuracy(model),
            "params": prof["params"],
            "macs": prof["macs"],
            "latency_ms": prof["latency_ms"],
        }
        if "gpu_latency_ms" in prof:
            entry["gpu_latency_ms"] = prof["gpu_latency_ms"]
        self.add_throughput(entry)
        return entry

    def side_by_side_latency(
        self, models: dict[str, nn.Module], rounds: int = 3
    ) -> dict[str, dict[str, float]]:
        """Median latency per batch size, measured round-robin over `models` (`rounds` rounds), so that machine
        load hits all alike; rank 0 only (other ranks get empty dicts)."""
        p = self.profile
        if not is_main():
            return {n: {} for n in models}
        times: dict[str, dict[str, list[float]]] = {
            n: {str(b): [] for b in p.latency_batches} for n in models
        }
        repeats = max(1, p.latency_repeats // rounds)
        for _ in range(rounds):
            for b in p.latency_batches:
                for name, model in models.items():
                    lat = measure_latency(
                        model, (b, *self.input_shape), repeats, device=self.device, threads=p.latency_threads
                    )
                    times[name][str(b)].append(lat["median_ms"])
        return {n: {b: statistics.median(v) for b, v in per.items()} for n, per in times.items()}


@dataclass
class Prepared:
    """What a run compresses and how it measures: the training loader, the input shape (one sample), the meter, the
    teacher as obtained and cut into blocks, and the number of training samples."""

    train_loader: DataLoader
    input_shape: tuple[int, ...]
    meter: Meter
    obtained: ObtainedModel
    teacher: BlockwiseNet
    train_samples: int


class CompressionRun:
    """One compression job; `run()` returns the report dict written to report.json.

    With `resume`, a run that `out` already holds goes on after its last finished phase (`compress.resume`);
    without it, such a folder is refused.
    """

    def __init__(
        self,
        cfg: CompressConfig | VideoCompressConfig,
        out: Path,
        quiet: bool = False,
        device: torch.device | None = None,
        resume: bool = False,
    ) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.quiet = quiet or not is_main()
        self.device = device if device is not None else resolve_device(cfg.device)
        prepare(cfg.perf, cfg.data.batch_size, self.out, self.device)
        self.progress = CompressionProgress(cfg, self.out, resume)

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message)

    def phase(
        self,
        name: str,
        what: str,
        run: Callable[[], T],
        load: Callable[[dict], T],
        record: Callable[[T], dict],
    ) -> T:
        """Phase `name` (`what` in messages): read back by `load` from what it recorded when an earlier run
        finished it, or `run` and recorded (`record` gives what to keep)."""
        saved = self.progress.finished(name)
        if saved is None:
            done = run()
            self.progress.record(name, record(done))
            return done
        done = load(saved)
        self.resumed(name, what)
        return done

    def resumed(self, name: str, what: str) -> None:
        """Restore the random state phase `name` ended with, so that later phases train as they would have."""
        self.progress.resume_after(name)
        self.say(f"resumed: {what} had finished")

    def run(self) -> dict:
        cfg = self.cfg
        seed_everything(cfg.seed)
        p = self.prepare()
        train_loader, input_shape, meter = p.train_loader, p.input_shape, p.meter
        obtained, teacher = p.obtained, p.teacher
        shapes = block_shapes(teacher, torch.zeros(2, *input_shape, device=self.device))
        teacher_entry = meter.measure(teacher)

        seed_everything(cfg.seed)
        ratio = self.student_ratio(teacher, shapes)
        s = cfg.student
        students = student_from_config(teacher.blocks, shapes, s, ratio)
        facts = self.describe(teacher, students)
        costs = block_costs(teacher, students, input_shape)
        steps = cfg.pbkd.stage.num_steps(len(train_loader))
        keep = cfg.pbkd.copies == "keep"  # the stages of blocks that are the teacher's own are skipped
        kept = {k for k, b in enumerate(students) if keep and is_copy(b, teacher.blocks[k])}
        trained = [k for k in stage_order(cfg.pbkd.order, len(teacher.blocks)) if k not in kept]
        stages, student = self.distil(teacher, students, train_loader, steps, meter, kept)

        ft = cfg.pbkd.finetune
        ft_steps = ft.budget.num_steps(len(train_loader)) if ft.enabled else 0
        if ft.enabled:
            stages.append(self.finetune(student, teacher, train_loader, ft_steps, len(stages) + 1, meter))
        pbkd_seconds = sum(s["seconds"] for s in stages)
        student_entry = meter.measure(student)
        both = meter.side_by_side_latency({"teacher": teacher, "student": student})
        teacher_entry["latency_ms"], student_entry["latency_ms"] = both["teacher"], both["student"]
        meter.add_throughput(teacher_entry)
        meter.add_throughput(student_entry)

        total_steps = steps * len(trained) + ft_steps
        baselines = {
            method: self.baseline(method, teacher, shapes, ratio, train_loader, total_steps, meter)
            for method in cfg.baselines.methods
        }

        batch = cfg.data.batch_size
        pbkd_macs = pbkd_training_macs(
            costs,
            trained,
            steps * batch,
            cfg.pbkd.local_weight > 0,
            ft_steps * batch,
            cfg.pbkd.kd_weight > 0,
        )
        teacher_macs = supervised_training_macs(costs.teacher_total, obtained.samples)
        training = {
            "teacher_seconds": round(obtained.seconds, 2),
            "teacher_samples": obtained.samples,
            "teacher_macs": teacher_macs,
            "pbkd_seconds": round(pbkd_seconds, 2),
            "pbkd_steps": total_steps,
            "pbkd_macs": pbkd_macs,
            "pbkd_to_teacher_time": pbkd_seconds / obtained.seconds if obtained.seconds else None,
            "pbkd_to_teacher_macs": pbkd_macs / teacher_macs if teacher_macs else None,
            "train_samples": p.train_samples,
            "batches_per_epoch": len(train_loader),
        }
        return self.write(
            teacher_entry, student_entry, stages, baselines, student, training, ratio, input_shape, facts
        )

    def prepare(self) -> Prepared:
        """The data, the teacher (loaded or trained: `teacher`) cut into `blocks`, and the meter."""
        cfg = self.cfg
        data = build_image_datasets(cfg.data, cfg.seed)
        train_loader, test_loader = make_loaders(data, cfg.data, cfg.seed, distributed=is_distributed())
        self.progress.generator = train_loader.generator
        input_shape = (data.in_channels, data.image_size, data.image_size)
        meter = Meter(cfg.profile, input_shape, test_loader, self.device)
        obtained = self.teacher(data, train_loader)
        teacher = split_model(obtained.model, cfg.blocks).to(self.device)
        return Prepared(train_loader, input_shape, meter, obtained, teacher, len(data.train))

    def describe(self, teacher: BlockwiseNet, students: list[nn.Module]) -> dict[str, Any]:
        """Report entries of this kind of run beyond the common ones (none for images)."""
        return {}

    def teacher(self, data: ImageDatasets, train_loader: DataLoader) -> ObtainedModel:
        """The teacher: loaded or trained as configured; when resuming a run that trained it, read back from
        OUT/teacher.pt with the training cost recorded then."""
        cfg, t = self.cfg, self.cfg.teacher

        def obtain(teacher_cfg: TeacherConfig) -> ObtainedModel:
            return obtain_model(
                teacher_cfg, data, train_loader, self.device, self.out / "teacher.pt", cfg.seed, cfg.perf
            )

        def train() -> ObtainedModel:
            if t.checkpoint is None:
                # a `blocks` list that cannot split the teacher, or a MACs target out of reach, fails first
                model = build_model(t.arch, data.num_classes, data.in_channels, t.width, t.small_input)
                untrained = split_model(model, cfg.blocks)
                if cfg.student.macs_reduction is not None:
                    example = torch.zeros(2, data.in_channels, data.image_size, data.image_size)
                    self.student_ratio(untrained, block_shapes(untrained, example))
            return obtain(t)

        def load(saved: dict) -> ObtainedModel:
            trained = t.model_copy(update={"checkpoint": self.out / "teacher.pt"})
            model = obtain(t if t.checkpoint is not None else trained).model
            return ObtainedModel(model, saved["seconds"], saved["samples"])

        return self.phase(
            "teacher", "the teacher", train, load, lambda o: {"seconds": o.seconds, "samples": o.samples}
        )

    def student_ratio(self, teacher: BlockwiseNet, shapes: list[tuple[torch.Size, torch.Size]]) -> float:
        """`student.ratio`, or the largest ratio meeting `student.macs_reduction` (`ratio_from_config`)."""
        s = self.cfg.student
        if s.macs_reduction is None:
            return s.ratio
        ratio, reached = ratio_from_config(teacher, shapes, s)
        self.say(f"student: ratio {ratio:g} for {reached:.2f}× fewer MACs (asked: {s.macs_reduction:g}×)")
        return ratio

    def distil(
        self,
        teacher: BlockwiseNet,
        students: list[nn.Module],
        train_loader: DataLoader,
        steps: int,
        meter: Meter,
        kept: set[int],
    ) -> tuple[list[dict], BlockwiseNet]:
        """The PBKD stages (the student blocks of those an earlier run finished read back; those of `kept` not
        trained): their report entries and the student network."""
        pbkd = self.cfg.pbkd
        order = stage_order(pbkd.order, len(teacher.blocks))
        stages: list[dict] = []
        done = 0
        while done < len(order) and (saved := self.progress.finished(f"stage {done + 1}")) is not None:
            students[order[done]].load_state_dict(saved["block"])
            stages.append(saved["entry"])
            done += 1
        if done:
            self.resumed(f"stage {done}", f"stages 1–{done}")

        def after_stage(stage: int, k: int, net: BlockwiseNet, result: FitResult) -> None:
            measured = meter.measure(net, meter.stage_repeats)
            entry = {"name": f"block {k}", "block": k, "stage": stage + 1, **measured}
            entry |= {"steps": result.steps, "seconds": round(result.seconds, 2)}
            stages.append(entry)
            tracker().scalars("stages", {"accuracy": entry["accuracy"], "macs": entry["macs"]}, stage + 1)
            self.progress.record(f"stage {stage + 1}", {"block": _detached(net.blocks[k]), "entry": entry})
            self.say(
                f"stage {stage + 1}: block {k} replaced, accuracy {entry['accuracy']:.2f}%, "
                f"MACs {entry['macs'] / 1e6:.2f}M, {result.seconds:.1f}s"
            )

        student = progressive_distill(
            teacher,
            students,
            train_loader,
            steps,
            pbkd.optim,
            self.device,
            pbkd.local_weight,
            pbkd.order,
            after_stage,
            self.cfg.perf,
            done,
            pbkd.kd_weight,
            pbkd.kd_temperature,
            pbkd.stage_norm,
            pbkd.stage_norm_batches,
            kept,
        )
        return stages, student

    def finetune(
        self,
        student: BlockwiseNet,
        teacher: BlockwiseNet,
        train_loader: DataLoader,
        steps: int,
        stage: int,
        meter: Meter,
    ) -> dict:
        """The optional last stage, the whole student trained with KD from the teacher: its report entry."""
        ft = self.cfg.pbkd.finetune

        def train() -> dict:
            result = fit(
                KDFinetuneObjective(student, teacher, ft.alpha, ft.temperature),
                train_loader,
                steps,
                ft.optim,
                self.device,
                desc="finetune (KD)",
                perf=self.cfg.perf,
            )
            return {
                "name": "finetune",
                "block": None,
                "stage": stage,
                **meter.measure(student, meter.stage_repeats),
                "steps": steps,
                "seconds": round(result.seconds, 2),
            }

        def load(saved: dict) -> dict:
            student.load_state_dict(saved["student"])
            return saved["entry"]

        def record(entry: dict) -> dict:
            return {"student": _detached(student), "entry": entry}

        return self.phase("finetune", "the fine-tune", train, load, record)

    def baseline(
        self,
        method: str,
        teacher: BlockwiseNet,
        shapes: list[tuple[torch.Size, torch.Size]],
        ratio: float,
        train_loader: DataLoader,
        steps: int,
        meter: Meter,
    ) -> dict:
        """Baseline `method` trained on the same student architecture for `steps` (PBKD's): from fresh weights, or
        (`kd_inherit`) from the student PBKD starts from (`student.init`)."""
        cfg = self.cfg

        def train() -> dict:
            seed_everything(cfg.seed)
            net = baseline_student(method, teacher, shapes, cfg.student, ratio).to(self.device)
            result = fit(
                StudentObjective(method, net, teacher, cfg.baselines),
                train_loader,
                steps,
                cfg.baselines.optim,
                self.device,
                desc=f"baseline {method}",
                perf=cfg.perf,
            )
            accuracy = meter.accuracy(net)
            tracker().scalars("baselines", {method: accuracy}, steps)
            return {"accuracy": accuracy, "steps": steps, "seconds": round(result.seconds, 2)}

        return self.phase(f"baseline {method}", f"baseline {method}", train, lambda saved: saved, lambda r: r)

    def write(
        self,
        teacher_entry: dict,
        student_entry: dict,
        stages: list[dict],
        baselines: dict[str, dict],
        student: BlockwiseNet,
        training: dict,
        ratio: float,
        input_shape: tuple[int, ...],
        facts: dict[str, Any] | None = None,
    ) -> dict:
        """The report; on rank 0 also written with the student, its ONNX export and the plot."""
        cfg = self.cfg
        main = is_main()
        if main:
            save_checkpoint(student.state_dict(), self.out / "student.pt")
        onnx_info = None
        if cfg.export_onnx and main:
            onnx_info = export_onnx(student, (1, *input_shape), self.out / "student.onnx")
        lat_t, lat_s = teacher_entry["latency_ms"], student_entry["latency_ms"]
        speedup = {
            "macs": teacher_entry["macs"] / student_entry["macs"],
            "params": teacher_entry["params"] / student_entry["params"],
            "latency": {b: lat_t[b] / lat_s[b] for b in lat_t},  # empty on ranks other than 0
        }
        report = {
            "method": "pbkd",
            "student_ratio": ratio,
            "teacher": teacher_entry,
            "student": student_entry,
            "stages": stages,
            "speedup": speedup,
            "baselines": baselines,
            "training": training,
            "onnx": onnx_info,
            "blocks": list(student.names),
            "student_init": resolve_init(cfg.student.design, cfg.student.init),
            **(facts or {}),
            "seed": cfg.seed,
            "config": dump_config(cfg),
            **run_metadata(self.device),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not main:
            return report
        write_atomically(self.out / "report.json", json.dumps(report, indent=2))
        plot_accuracy_vs_macs(report, self.out / "accuracy_vs_macs.png")
        write_atomically(self.out / "report.md", compress_report(report, time.strftime("%Y-%m-%d %H:%M")))
        if not self.quiet:
            print_summary(report)
        return report


class VideoCompressionRun(CompressionRun):
    """`task: video`: the teacher is a TSM/TSN network read from a finished run (`compress.video`), cut into clip
    blocks between residual units (`models.video_blocks`); accuracy is clip-level as in training, MACs are per
    clip, and the report gives clips/s and what each block sees in space and time (`video`)."""

    cfg: VideoCompressConfig

    def prepare(self) -> Prepared:
        cfg = self.cfg
        folder = Path(cfg.teacher.from_run)

        def load() -> ObtainedModel:
            found = load_video_teacher(folder)
            self.found = found
            return ObtainedModel(found.model, found.seconds, found.samples)

        obtained = self.phase(
            "teacher",
            "the teacher",
            load,
            lambda saved: load(),
            lambda o: {"seconds": o.seconds, "samples": o.samples},
        )
        data, self.trained_on = teacher_data(cfg, self.found)
        seed_everything(cfg.seed)
        distributed = is_distributed()
        train_loader = video_loader(data.train, cfg.data, train=True, seed=cfg.seed, distributed=distributed)
        test_loader = video_loader(data.test, cfg.data, train=False, seed=cfg.seed, distributed=distributed)
        self.progress.generator = train_loader.generator
        clip, _ = data.test[0]
        segments = cfg.data.num_segments
        input_shape = (segments, *clip.shape[-3:])  # one view of a test clip: (T, C, H, W)

        def accuracy(model: nn.Module) -> float:
            return clip_accuracy(model, test_loader, self.device, segments)

        meter = Meter(cfg.profile, input_shape, test_loader, self.device, accuracy, "clips")
        self.clip_shape = list(input_shape)
        teacher = split_video_model(self.found.model, cfg.blocks).to(self.device)
        return Prepared(train_loader, input_shape, meter, obtained, teacher, len(data.train))

    def describe(self, teacher: BlockwiseNet, students: list[nn.Module]) -> dict[str, Any]:
        segments = self.cfg.data.num_segments
        seen_t, seen_s = frames_seen(teacher.blocks, segments), frames_seen(students, segments)
        blocks = []
        for k, (t, s) in enumerate(zip(teacher.blocks, students, strict=True)):
            rf_t, rf_s = (receptive_field(b.frames if isinstance(b, ClipBlock) else b) for b in (t, s))
            blocks.append(
                {
                    "name": teacher.names[k],
                    "receptive_field": list(rf_t.size),
                    "student_receptive_field": list(rf_s.size),
                    "shifts": len(shift_convs(t)),
                    "student_shifts": len(shift_convs(s)),
                    "frames_seen": seen_t[k],
                    "student_frames_seen": seen_s[k],
                }
            )
        found = self.found
        return {
            "video": {
                "teacher_run": str(self.cfg.teacher.from_run),
                "teacher_kind": found.kind,
                "num_segments": segments,
                "clip_shape": self.clip_shape,
                "classes": len(found.classes),
                "trained_on": self.trained_on,
                "frames_per_unit": 3 if segments > 1 and any(b["shifts"] for b in blocks) else 1,
                "blocks": blocks,
            }
        }


def _detached(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of `module`'s state dict on the CPU, unaffected by later training."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def print_summary(report: dict) -> None:
    """Teacher vs student (and baselines) as a table on the terminal."""
    header, rows = compress_summary(report)
    print_table("PBKD compression", header, rows)
    video = report.get("video")
    if video:
        seen = ", ".join(f"{b['name']} {b['student_frames_seen']}" for b in video["blocks"])
        print(
            f"video: {video['num_segments']} frames a clip; each shifting unit sees {video['frames_per_unit']} "
            f"frames; frames seen after each block: {seen}; the student trained on {video['trained_on']}"
        )
