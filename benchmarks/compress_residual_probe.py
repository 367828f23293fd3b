"""PBKD on a residual teacher: student designs side by side, each a full `distillkit compress` run of one teacher.

    python benchmarks/compress_residual_probe.py --variants branch internal --seeds 0 [--no-baselines]

The teacher of configs/compress_fashion_mnist_resnet18.yaml (ResNet-18, width 0.25, Fashion-MNIST 12 000-image
subset) is trained once (seed 0) into OUT/teacher/; each (variant, seed) is then `distillkit compress` of that
teacher with the variant's overrides, written to OUT/VARIANT/seed<N>/ (finished runs are reused, cut-short ones
resumed; PBKD-only runs, `--no-baselines`, to OUT/VARIANT/seed<N>-pbkd/). Every variant asks for `student.macs_reduction: 2.5`, so all students meet the same MACs target.
Latency is measured only briefly and not reported (the machine may be shared); ONNX export is off.

Writes benchmarks/results/compress_residual_probe.md from every finished run under OUT: per run the PBKD accuracy
after each stage and after the fine-tune, the baselines, PBKD − best baseline; per variant with two or more
seeds the mean and a 95 % t-interval of the paired differences. `--init-probe` adds, per variant, the accuracy of
the teacher with one block swapped for its inherited, untrained student (what a stage starts from).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import torch

from distillkit.compress.student import ratio_from_config, student_from_config
from distillkit.config import CompressConfig, TrainConfig, load_config
from distillkit.data.images import build_image_datasets, make_loaders
from distillkit.engine.loop import evaluate
from distillkit.jobs.compress import CompressionRun
from distillkit.jobs.train import run_train
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model
from distillkit.models.factory import obtain_model

COMMON = [
    "student.macs_reduction=2.5",
    "export_onnx=false",
    "profile.latency_batches=[1]",
    "profile.latency_repeats=3",
]
OLD_STEM = "student.copy_if_costlier=false"
VARIANTS: dict[str, list[str]] = {
    # the design before: whole branch thinned with a 1×1 restore, the stem thinned although that costs more
    "branch": ["student.residual=branch", OLD_STEM],
    "internal": ["student.residual=internal", OLD_STEM],  # internal channels thinned only
    "internal-copystem": ["student.residual=internal", "student.copy_if_costlier=true"],  # the new default
    "branch-copystem": ["student.residual=branch", "student.copy_if_costlier=true"],
    # exploratory, on the new default
    "internal-copystem-stagekd": [
        "student.residual=internal",
        "student.copy_if_costlier=true",
        "pbkd.kd_weight=1",
    ],
    "internal-copystem-stage2": [
        "student.residual=internal",
        "student.copy_if_costlier=true",
        "pbkd.stage.epochs=2",
    ],
}
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}  # t quantiles for 1..4 degrees of freedom


def config(args: argparse.Namespace, variant: str, seed: int) -> CompressConfig:
    teacher = args.out / "teacher" / "model.pt"
    overrides = [*COMMON, *VARIANTS[variant], f"seed={seed}", f"teacher.checkpoint={teacher}"]
    if args.no_baselines:
        overrides.append("baselines.methods=[]")
    return load_config(args.config, CompressConfig, overrides)


def train_teacher(args: argparse.Namespace) -> dict:
    out = args.out / "teacher"
    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text())
    cfg = load_config(args.config, CompressConfig, [])
    return run_train(TrainConfig(seed=0, device=cfg.device, data=cfg.data, model=cfg.teacher), out)


def init_probe(args: argparse.Namespace, variant: str) -> list[float]:
    """Accuracy of the teacher with block k (each k alone) swapped for its inherited, untrained student."""
    cfg = config(args, variant, 0)
    data = build_image_datasets(cfg.data, cfg.seed)
    _, test_loader = make_loaders(data, cfg.data, cfg.seed)
    device = torch.device("cpu")
    obtained = obtain_model(cfg.teacher, data, None, device, cfg.teacher.checkpoint, cfg.seed)
    teacher = split_model(obtained.model, cfg.blocks).eval()
    shapes = block_shapes(teacher, torch.zeros(2, data.in_channels, data.image_size, data.image_size))
    ratio, _ = ratio_from_config(teacher, shapes, cfg.student)
    students = student_from_config(teacher.blocks, shapes, cfg.student, ratio, "inherit")
    accuracies = []
    for k, student in enumerate(students):
        blocks = list(teacher.blocks)
        blocks[k] = student
        accuracies.append(evaluate(BlockwiseNet(blocks, teacher.head, teacher.names), test_loader, device))
    return accuracies


def t_interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:+.2f} (one seed)"
    half = T_975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] (n={len(values)})"


def summarise(args: argparse.Namespace, teacher: dict, probes: dict[str, list[float]]) -> str:
    reports: dict[str, dict[str, dict]] = {}  # variant → run folder name (seedN, seedN-pbkd) → report
    for variant in VARIANTS:
        for path in sorted((args.out / variant).glob("seed*/report.json")):
            reports.setdefault(variant, {})[path.parent.name] = json.loads(path.read_text())
    methods = ["scratch", "kd", "fitnets", "at"]
    header = ["variant", "run", "ratio", "MACs ×", "stage 1..5", "PBKD final", *methods, "PBKD − best"]
    lines = [
        "# compress_residual_probe",
        "",
        f"Config `{args.config}` with `{' '.join(COMMON)}` and each variant's overrides; teacher trained once "
        f"(seed 0): {teacher['accuracy']:.2f} %, {teacher['macs'] / 1e6:.2f} M MACs. Top-1 % on the 10 000-image "
        "test set. Seeds change data order, initialisation and the 12 000-image training subset (the teacher saw "
        "seed 0's). Variants:",
        "",
        *[f"- `{v}`: `{' '.join(o)}`" for v, o in VARIANTS.items() if v in reports],
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    diffs: dict[str, dict[int, float]] = {}
    for variant, runs in reports.items():
        for folder, r in sorted(runs.items()):
            seed = r["seed"]
            stages = [s for s in r["stages"] if s["block"] is not None]
            base = {m: r["baselines"][m]["accuracy"] for m in methods if m in r["baselines"]}
            row = [
                variant,
                folder,
                f"{r['student_ratio']:.4g}",
                f"{r['speedup']['macs']:.2f}",
                ", ".join(f"{s['accuracy']:.2f}" for s in stages),
                f"{r['student']['accuracy']:.2f}",
                *[f"{base[m]:.2f}" if m in base else "–" for m in methods],
            ]
            if base:
                best = max(base, key=base.get)
                diff = r["student"]["accuracy"] - base[best]
                diffs.setdefault(variant, {})[seed] = diff
                row.append(f"{diff:+.2f} ({best})")
            else:
                row.append("–")
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "PBKD − best baseline, mean and 95 % t-interval over seeds:", ""]
    lines += [f"- `{v}`: {t_interval(list(d.values()))}" for v, d in diffs.items()]
    if probes:
        lines += [
            "",
            "Teacher with block k alone swapped for its inherited, untrained student (`--init-probe`), top-1 %:",
            "",
            "| variant | " + " | ".join(f"block {k}" for k in range(len(next(iter(probes.values()))))) + " |",
            "|---|" + "---|" * len(next(iter(probes.values()))),
            *[f"| {v} | " + " | ".join(f"{a:.2f}" for a in acc) + " |" for v, acc in probes.items()],
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/compress_fashion_mnist_resnet18.yaml"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["branch", "internal"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/resprobe"))
    parser.add_argument("--no-baselines", action="store_true", help="PBKD only")
    parser.add_argument("--init-probe", action="store_true", help="also the untrained-student swap table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = train_teacher(args)
    probe_file = args.out / "init_probe.json"
    probes = json.loads(probe_file.read_text()) if probe_file.is_file() else {}
    if args.init_probe:
        for variant in args.variants:
            probes[variant] = init_probe(args, variant)
            print(variant, probes[variant], flush=True)
        probe_file.write_text(json.dumps(probes))
    dest = Path("benchmarks/results/compress_residual_probe.md")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for variant in args.variants:
            out = args.out / variant / (f"seed{seed}-pbkd" if args.no_baselines else f"seed{seed}")
            if not (out / "report.json").is_file():
                CompressionRun(config(args, variant, seed), out, resume=True).run()
            dest.write_text(summarise(args, teacher, probes))  # after every run, so a cut-short probe reports
    text = summarise(args, teacher, probes)
    dest.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
