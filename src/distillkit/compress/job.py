"""`distillkit compress`: config → data + teacher → PBKD (+ baselines) → report, student, ONNX, plot."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.compress.baselines import StudentObjective
from distillkit.compress.compute import block_costs, pbkd_training_macs, supervised_training_macs
from distillkit.compress.export import export_onnx
from distillkit.compress.pbkd import KDFinetuneObjective, progressive_distill, stage_order
from distillkit.compress.resume import CompressionProgress
from distillkit.compress.student import design_student, fresh_copy, ratio_for_macs, resolve_init
from distillkit.config import CompressConfig, dump_config
from distillkit.data.images import ImageDatasets, build_image_datasets, make_loaders
from distillkit.engine.checkpoint import save_checkpoint
from distillkit.engine.device import resolve_device, seed_everything
from distillkit.engine.distributed import is_distributed, is_main, per_process_batch
from distillkit.engine.loop import check_performance, evaluate, fit
from distillkit.engine.profile import count_macs, measure_latency, profile_model
from distillkit.engine.tracking import tracker
from distillkit.models import build_model
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model
from distillkit.models.factory import ObtainedModel, obtain_model
from distillkit.report.meta import run_metadata
from distillkit.report.plots import plot_accuracy_vs_macs
from distillkit.report.run_report import compress_report, compress_summary
from distillkit.report.tables import print_table


class CompressionRun:
    """One compression job; `run()` returns the report dict written to report.json.

    With `resume`, a run that `out` already holds goes on after its last finished phase (`compress.resume`);
    without it, such a folder is refused.
    """

    def __init__(
        self,
        cfg: CompressConfig,
        out: Path,
        quiet: bool = False,
        device: torch.device | None = None,
        resume: bool = False,
    ) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.quiet = quiet or not is_main()
        self.device = device if device is not None else resolve_device(cfg.device)
        self.distributed = is_distributed()
        check_performance(cfg.perf, self.device)
        if self.distributed:
            per_process_batch(cfg.data.batch_size, "data.batch_size")  # before any work
        self.progress = CompressionProgress(cfg, self.out, resume)
        if is_main():
            self.out.mkdir(parents=True, exist_ok=True)

    def profile(self, model: nn.Module, repeats: int | None = None) -> dict:
        """Parameters, MACs and latency; latency on rank 0 only (other ranks would perturb it)."""
        p = self.cfg.profile
        return profile_model(
            model,
            self.input_shape,
            p.latency_batches if is_main() else [],
            repeats or p.latency_repeats,
            self.device,
            p.latency_threads,
        )

    def measure(self, model: nn.Module, test_loader: DataLoader, repeats: int | None = None) -> dict:
        prof = self.profile(model, repeats)
        entry = {
            "accuracy": evaluate(model, test_loader, self.device, sharded=self.distributed),
            "params": prof["params"],
            "macs": prof["macs"],
        }
        entry["latency_ms"] = prof["latency_ms"]
        if "gpu_latency_ms" in prof:
            entry["gpu_latency_ms"] = prof["gpu_latency_ms"]
        return entry

    def side_by_side_latency(
        self, models: dict[str, nn.Module], rounds: int = 3
    ) -> dict[str, dict[str, float]]:
        """Median CPU/GPU latency per batch size, measured round-robin over `models` (`rounds` rounds); rank 0
        only (other ranks get empty dicts)."""
        p = self.cfg.profile
        if not is_main():
            return {n: {} for n in models}
        times: dict[str, dict[str, list[float]]] = {
            n: {str(b): [] for b in p.latency_batches} for n in models
        }
        repeats = max(1, p.latency_repeats // rounds)
        for _ in range(rounds):
            for b in p.latency_batches:
                for name, model in models.items():
                    shape = (b, *self.input_shape)
                    lat = measure_latency(
                        model, shape, repeats, device=self.device, threads=p.latency_threads
                    )
                    times[name][str(b)].append(lat["median_ms"])
        return {n: {b: statistics.median(v) for b, v in per.items()} for n, per in times.items()}

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message)

    def teacher(self, data: ImageDatasets, train_loader: DataLoader) -> ObtainedModel:
        """The teacher: loaded or trained as configured; when resuming a run that trained it, read back from
        OUT/teacher.pt with the training cost recorded then."""
        cfg, progress = self.cfg, self.progress
        saved = progress.finished("teacher")
        t = teacher_cfg = cfg.teacher
        if t.checkpoint is None and saved is None:
            # a `blocks` list that cannot split the teacher, or a MACs target out of reach, fails before it trains
            untrained = split_model(
                build_model(t.arch, data.num_classes, data.in_channels, t.width, t.small_input), cfg.blocks
            )
            if cfg.student.macs_reduction is not None:
                example = torch.zeros(2, data.in_channels, data.image_size, data.image_size)
                self.student_ratio(untrained, block_shapes(untrained, example))
        if t.checkpoint is None and saved is not None:
            teacher_cfg = t.model_copy(update={"checkpoint": self.out / "teacher.pt"})
        obtained = obtain_model(
            teacher_cfg, data, train_loader, self.device, self.out / "teacher.pt", cfg.seed, cfg.perf
        )
        if saved is None:
            progress.record("teacher", {"seconds": obtained.seconds, "samples": obtained.samples})
            return obtained
        progress.resume_after("teacher")
        self.say("resumed: the teacher had finished")
        return ObtainedModel(obtained.model, saved["seconds"], saved["samples"])

    def student_ratio(self, teacher: BlockwiseNet, shapes: list[tuple[torch.Size, torch.Size]]) -> float:
        """`student.ratio`, or the largest ratio meeting `student.macs_reduction` (`ratio_for_macs`)."""
        s = self.cfg.student
        if s.macs_reduction is None:
            return s.ratio
        one = (1, *shapes[0][0][1:])
        outside = count_macs(teacher, one) - sum(
            count_macs(b, (1, *sh[0][1:])) for b, sh in zip(teacher.blocks, shapes, strict=True)
        )
        ratio, reached = ratio_for_macs(
            teacher.blocks, shapes, s.design, s.macs_reduction, outside, s.residual, s.copy_if_costlier
        )
        self.say(f"student: ratio {ratio:g} for {reached:.2f}× fewer MACs (asked: {s.macs_reduction:g}×)")
        return ratio

    @property
    def student_init(self) -> str:
        return resolve_init(self.cfg.student.design, self.cfg.student.init)

    def run(self) -> dict:
        cfg = self.cfg
        seed_everything(cfg.seed)
        data = build_image_datasets(cfg.data, cfg.seed)
        train_loader, test_loader = make_loaders(data, cfg.data, cfg.seed, distributed=self.distributed)
        self.input_shape = (data.in_channels, data.image_size, data.image_size)
        progress = self.progress
        progress.generator = train_loader.generator
        obtained = self.teacher(data, train_loader)
        teacher = split_model(obtained.model, cfg.blocks).to(self.device)
        example = torch.zeros(2, *self.input_shape, device=self.device)
        shapes = block_shapes(teacher, example)
        teacher_entry = self.measure(teacher, test_loader)

        steps = cfg.pbkd.stage.num_steps(len(train_loader))
        stage_repeats = min(10, cfg.profile.latency_repeats)  # per-stage latency: indicative, kept short
        stages: list[dict] = []
        order = stage_order(cfg.pbkd.order, len(teacher.blocks))

        def after_stage(stage: int, k: int, net: BlockwiseNet, result) -> None:
            entry = {
                "name": f"block {k}",
                "block": k,
                "stage": stage + 1,
                **self.measure(net, test_loader, stage_repeats),
            }
            entry |= {"steps": result.steps, "seconds": round(result.seconds, 2)}
            stages.append(entry)
            tracker().scalars("stages", {"accuracy": entry["accuracy"], "macs": entry["macs"]}, stage + 1)
            progress.record(f"stage {stage + 1}", {"block": _detached(net.blocks[k]), "entry": entry})
            if not self.quiet:
                print(
                    f"stage {stage + 1}: block {k} replaced, accuracy {entry['accuracy']:.2f}%, "
                    f"MACs {entry['macs'] / 1e6:.2f}M, {result.seconds:.1f}s"
                )

        seed_everything(cfg.seed)
        ratio = self.student_ratio(teacher, shapes)
        s = cfg.student
        students = design_student(
            teacher.blocks, shapes, s.design, ratio, s.init, s.residual, s.copy_if_costlier
        )
        costs = block_costs(teacher, students, self.input_shape)
        done = 0
        while done < len(order) and (saved := progress.finished(f"stage {done + 1}")) is not None:
            students[order[done]].load_state_dict(saved["block"])
            stages.append(saved["entry"])
            done += 1
        if done:
            progress.resume_after(f"stage {done}")
            self.say(f"resumed: stages 1–{done} had finished")
        student = progressive_distill(
            teacher,
            students,
            train_loader,
            steps,
            cfg.pbkd.optim,
            self.device,
            cfg.pbkd.local_weight,
            cfg.pbkd.order,
            after_stage,
            cfg.perf,
            done,
            cfg.pbkd.kd_weight,
            cfg.pbkd.kd_temperature,
        )
        total_steps = steps * len(students)
        ft = cfg.pbkd.finetune
        ft_steps = ft.budget.num_steps(len(train_loader)) if ft.enabled else 0
        total_steps += ft_steps
        saved = progress.finished("finetune") if ft.enabled else None
        if saved is not None:
            student.load_state_dict(saved["student"])
            stages.append(saved["entry"])
            progress.resume_after("finetune")
            self.say("resumed: the fine-tune had finished")
        elif ft.enabled:
            result = fit(
                KDFinetuneObjective(student, teacher, ft.alpha, ft.temperature),
                train_loader,
                ft_steps,
                ft.optim,
                self.device,
                desc="finetune (KD)",
                perf=cfg.perf,
            )
            entry = {
                "name": "finetune",
                "block": None,
                "stage": len(stages) + 1,
                **self.measure(student, test_loader, stage_repeats),
                "steps": ft_steps,
                "seconds": round(result.seconds, 2),
            }
            stages.append(entry)
            progress.record("finetune", {"student": _detached(student), "entry": entry})
        pbkd_seconds = sum(s["seconds"] for s in stages)
        student_entry = self.measure(student, test_loader)
        # Final latencies: teacher and student measured in alternation, so machine load hits both alike.
        both = self.side_by_side_latency({"teacher": teacher, "student": student})
        teacher_entry["latency_ms"], student_entry["latency_ms"] = both["teacher"], both["student"]

        baselines = {}
        for method in cfg.baselines.methods:
            if (saved := progress.finished(f"baseline {method}")) is not None:
                baselines[method] = saved
                progress.resume_after(f"baseline {method}")
                self.say(f"resumed: baseline {method} had finished")
                continue
            seed_everything(cfg.seed)
            fresh = design_student(
                teacher.blocks, shapes, s.design, ratio, "random", s.residual, s.copy_if_costlier
            )
            net = BlockwiseNet(fresh, fresh_copy(teacher.head), teacher.names).to(self.device)
            result = fit(
                StudentObjective(method, net, teacher, cfg.baselines),
                train_loader,
                total_steps,
                cfg.baselines.optim,
                self.device,
                desc=f"baseline {method}",
                perf=cfg.perf,
            )
            baselines[method] = {
                "accuracy": evaluate(net, test_loader, self.device, sharded=self.distributed),
                "steps": total_steps,
                "seconds": round(result.seconds, 2),
            }
            tracker().scalars("baselines", {method: baselines[method]["accuracy"]}, total_steps)
            progress.record(f"baseline {method}", baselines[method])

        batch = cfg.data.batch_size
        pbkd_macs = pbkd_training_macs(
            costs, order, steps * batch, cfg.pbkd.local_weight > 0, ft_steps * batch, cfg.pbkd.kd_weight > 0
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
            "train_samples": len(data.train),
            "batches_per_epoch": len(train_loader),
        }
        return self.write(teacher_entry, student_entry, stages, baselines, student, training, ratio)

    def write(
        self, teacher_entry, student_entry, stages, baselines, student, training: dict, ratio: float
    ) -> dict:
        """The report; on rank 0 also written with the student, its ONNX export and the plot."""
        cfg = self.cfg
        main = is_main()
        if main:
            save_checkpoint(student.state_dict(), self.out / "student.pt")
        onnx_info = None
        if cfg.export_onnx and main:
            onnx_info = export_onnx(student, (1, *self.input_shape), self.out / "student.onnx")
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
            "student_init": self.student_init,
            "seed": cfg.seed,
            "config": dump_config(cfg),
            **run_metadata(self.device),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not main:
            return report
        (self.out / "report.json").write_text(json.dumps(report, indent=2))
        plot_accuracy_vs_macs(report, self.out / "accuracy_vs_macs.png")
        (self.out / "report.md").write_text(compress_report(report, time.strftime("%Y-%m-%d %H:%M")))
        if not self.quiet:
            print_summary(report)
        return report


def _detached(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of `module`'s state dict on the CPU, unaffected by later training."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def print_summary(report: dict) -> None:
    """Teacher vs student (and baselines) as a table on the terminal."""
    header, rows = compress_summary(report)
    print_table("PBKD compression", header, rows)
