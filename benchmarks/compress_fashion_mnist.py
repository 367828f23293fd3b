"""PBKD vs baselines on Fashion-MNIST (VGG-16 teacher), mean ± std over seeds.

    python benchmarks/compress_fashion_mnist.py [--seeds 0 1 2] [--config configs/compress_fashion_mnist_vgg16.yaml]

The teacher is trained once (seed 0, as `distillkit train` would) into runs/bench/compress_fmnist/teacher/; each
seed is then a full `distillkit compress` run of that teacher (PBKD stages, fine-tune, baselines, profiling) written
to runs/bench/compress_fmnist/seed<N>/. Finished parts are reused. Prints a Markdown table and writes it to
benchmarks/results/compress_fashion_mnist.md. Latencies of teacher and student are measured side by side in
the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from compress_families import t_interval

from distillkit.compress.compute import supervised_training_macs
from distillkit.config import CompressConfig, TrainConfig, load_config
from distillkit.jobs.compress import CompressionRun
from distillkit.jobs.train import run_train
from distillkit.report.tables import markdown_table


def mean_std(values: list[float], fmt: str = "{:.2f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def summarise(reports: list[dict]) -> str:
    def col(path: str) -> list[float]:
        out = []
        for r in reports:
            v = r
            for part in path.split("."):
                v = v[part]
            out.append(float(v))
        return out

    rows = [
        [
            "teacher (VGG-16)",
            mean_std(col("teacher.accuracy")),
            f"{reports[0]['teacher']['macs'] / 1e6:.2f}",
            f"{reports[0]['teacher']['params']:,}",
            "1.00×",
            "1.00×",
        ],
        [
            "PBKD student",
            mean_std(col("student.accuracy")),
            f"{reports[0]['student']['macs'] / 1e6:.2f}",
            f"{reports[0]['student']['params']:,}",
            mean_std(col("speedup.latency.1")) + "×",
            mean_std(col("speedup.latency.64")) + "×",
        ],
    ]
    for method in reports[0]["baselines"]:
        rows.append(
            [f"{method} (same student)", mean_std(col(f"baselines.{method}.accuracy")), "", "", "", ""]
        )
    header = ["model", "top-1 % (mean ± std)", "MACs (M)", "params", "CPU speed-up b1", "CPU speed-up b64"]
    table = markdown_table(header, rows)
    drop = [r["teacher"]["accuracy"] - r["student"]["accuracy"] for r in reports]
    best = [max(b["accuracy"] for b in r["baselines"].values()) for r in reports]
    pbkd_vs_best = [r["student"]["accuracy"] - b for r, b in zip(reports, best, strict=True)]
    paired = []
    if reports[0]["baselines"]:  # PBKD − the baseline of highest mean, paired by seed
        name = max(reports[0]["baselines"], key=lambda m: statistics.fmean(col(f"baselines.{m}.accuracy")))
        diffs = [r["student"]["accuracy"] - r["baselines"][name]["accuracy"] for r in reports]
        mean, ci = t_interval(diffs)
        interval = f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "(one seed: no interval)"
        per_seed = " / ".join(f"{d:+.2f}" for d in diffs)
        paired = [
            f"- PBKD − {name} (the best baseline by mean), paired by seed: {per_seed}; {mean:+.2f} {interval}"
        ]
    lat = reports[0]["teacher"]["latency_ms"], reports[0]["student"]["latency_ms"]
    time_ratio = col("training.pbkd_to_teacher_time")
    macs_ratio = col("training.pbkd_to_teacher_macs")
    extra = [
        f"- seeds: {[r['seed'] for r in reports]}; MACs ratio teacher/student: {reports[0]['speedup']['macs']:.2f}×",
        f"- top-1 drop teacher → PBKD student: {mean_std(drop)} points",
        f"- PBKD minus each seed's best baseline: {mean_std(pbkd_vs_best)} points",
        *paired,
        f"- CPU latency, seed {reports[0]['seed']} (ms, median): teacher b1 {lat[0]['1']:.2f}, b64 {lat[0]['64']:.2f}; "
        f"student b1 {lat[1]['1']:.2f}, b64 {lat[1]['64']:.2f}",
        f"- training compute (MACs), PBKD (all stages incl. fine-tune) / teacher: {mean_std(macs_ratio, '{:.3f}')}",
        f"- training time, PBKD (all stages incl. fine-tune) / teacher: {mean_std(time_ratio)} "
        f"({mean_std(col('training.pbkd_seconds'), '{:.0f}')} s / {reports[0]['training']['teacher_seconds']:.0f} s)",
        f"- stage accuracies (seed {reports[0]['seed']}): "
        + ", ".join(f"{s['name']} {s['accuracy']:.2f}" for s in reports[0]["stages"]),
    ]
    return table + "\n" + "\n".join(extra) + "\n"


def train_teacher(config: Path, overrides: list[str], out: Path) -> dict:
    """Train the teacher of `config` once (seed 0); returns its train report."""
    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text())
    cfg = load_config(config, CompressConfig, overrides)
    train_cfg = TrainConfig(seed=0, device=cfg.device, data=cfg.data, model=cfg.teacher)
    return run_train(train_cfg, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/compress_fashion_mnist_vgg16.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/compress_fmnist"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--name", default="compress_fashion_mnist", help="results file benchmarks/results/NAME.md"
    )
    args = parser.parse_args()
    teacher = train_teacher(args.config, args.overrides, args.out / "teacher")
    reports = []
    for seed in args.seeds:
        out = args.out / f"seed{seed}"
        if (out / "report.json").is_file():
            reports.append(json.loads((out / "report.json").read_text()))
            continue
        overrides = [
            *args.overrides,
            f"seed={seed}",
            f"teacher.checkpoint={args.out / 'teacher' / 'model.pt'}",
        ]
        cfg = load_config(args.config, CompressConfig, overrides)
        reports.append(CompressionRun(cfg, out, resume=True).run())  # a cut-short seed goes on
        write_summary(args, reports, teacher)  # after every seed, so a cut-short run still reports
    write_summary(args, reports, teacher)


def write_summary(args: argparse.Namespace, reports: list[dict], teacher: dict) -> None:
    """Print the table and write it to benchmarks/results/NAME.md."""
    for r in reports:  # the teacher was trained once, outside the compression runs
        t = r["training"]
        cfg = CompressConfig.model_validate(r["config"])
        samples = cfg.teacher.train.num_steps(t["batches_per_epoch"]) * cfg.data.batch_size
        t["teacher_seconds"] = teacher["train_seconds"]
        t["teacher_macs"] = supervised_training_macs(r["teacher"]["macs"], samples)
        t["pbkd_to_teacher_time"] = t["pbkd_seconds"] / t["teacher_seconds"]
        t["pbkd_to_teacher_macs"] = t["pbkd_macs"] / t["teacher_macs"]
    text = summarise(reports)
    print(text)
    dest = Path(f"benchmarks/results/{args.name}.md")
    dest.parent.mkdir(parents=True, exist_ok=True)
    overrides = "".join(f" --set {o}" for o in args.overrides)
    dest.write_text(f"Config: `{args.config}`{overrides}\n\n" + text)


if __name__ == "__main__":
    main()
