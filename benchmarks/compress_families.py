"""PBKD across teacher families: a VGG, a torchvision ResNet-18, a CIFAR ResNet-20 and a user's own CNN.

    python benchmarks/compress_families.py [--families vgg16 resnet18 resnet20 user_cnn] [--seeds 0 1 2]

Per family the teacher is trained once (seed 0) into OUT/FAMILY/teacher/, then each seed is a full compression
run of that teacher (PBKD stages, KD fine-tune, the baselines scratch, KD, KD from PBKD's inherited student
(`kd_inherit`), FitNets and AT on the same student with the same number of steps) in OUT/FAMILY/seed<N>/. Every family asks for a MACs target (`student.macs_reduction`).
The VGG, ResNet-18 and ResNet-20 runs are `distillkit.api.compress` of a config file; the user CNN
(`benchmarks/user_cnn.py`, not part of distillkit) is registered as a backbone by this script and cut into
blocks by module names, through the same API. Finished runs are reused and cut-short ones resumed, so the
script can be stopped and started again. The ResNet-18 family reuses `runs/resprobe` (the teacher and the
`internal-copystem` seeds of benchmarks/compress_residual_probe.py) when their config is exactly this one.

CPU latency of teacher and student (batch 1 and 64) is measured by this script, after the runs, in one process
with `torch.set_num_threads(1)`, teacher and student interleaved, medians; cached in OUT/FAMILY/latency.json
(`--remeasure` measures again). The machine may be shared with other jobs.

Writes benchmarks/results/compress_families.md and benchmarks/results/compress_summary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from distillkit.config import CompressConfig, TrainConfig, dump_config

METHODS = ["scratch", "kd", "kd_inherit", "fitnets", "at"]
# Every run: no ONNX export, the job's own latency kept short (this script measures latency itself), every baseline.
COMMON = ["export_onnx=false", "profile.latency_batches=[1]", "profile.latency_repeats=3",
          f"baselines.methods=[{','.join(METHODS)}]"]  # fmt: skip
SHORT = ["pbkd.stage.epochs=0.5", "teacher.train.epochs=10"]  # the CPU-sized stages and teacher
STAGE_LR = ["pbkd.optim.lr=0.01"]
"""The stage learning rate of the short-stage families (the configs' 0.05 before): chosen on the probe seeds 10 and
11, where it lifted PBKD on every run of the three families probed (VGG-16, ResNet-20, user CNN), and then measured
on the table's seeds."""
KEEP_COPIES = ["pbkd.copies=keep"]
"""ResNet-20's copied stem is kept as the teacher's, its stage skipped: chosen on the probe seeds 10 and 11 (final
−0.01 and +0.39 against training it, with 47 fewer steps; its stage had cost up to 9.9 points after stage 1)."""
PLAIN_INTERNAL = ["student.plain=internal"]
"""VGG-16's and the user CNN's blocks end in their own last conv at the teacher's width rather than a random 1×1
restoring conv: chosen on the probe seeds 10 and 11 (PBKD +2.2 and +2.9 on the user CNN, drop 1.60 and 1.53; see
`compress_families_plain/`), then measured on the table's seeds. The ResNets' students have no restoring conv
(`student.residual: internal`) and a copied stem either way."""
RESULTS = Path("benchmarks/results")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}

FINETUNE_3 = ["pbkd.finetune.budget.epochs=3"]
"""VGG-16's and the user CNN's final KD fine-tune, 3 epochs (1 before): chosen on the probe seeds 10 and 11 against
the teachers trained on 2026-12-05 (PBKD final +1.01 / +0.85 on VGG-16, +0.33 / +0.57 on the user CNN; see
`compress_families_ft3/`), then measured on the table's seeds. The baselines' budget grows with it: every method
trains for PBKD's total steps."""


@dataclass
class Family:
    name: str
    label: str
    config: str  # a config file, or "user_cnn" (the config is built by `user_cnn_config`)
    overrides: list[str]
    macs_target: float
    max_drop: float
    reuse: str | None = None  # a folder holding teacher/ and seed<N>/ runs of the same config to reuse
    reuse_teacher: str | None = None
    notes: list[str] = field(default_factory=list)


FAMILIES = {
    "vgg16": Family(
        "vgg16",
        "VGG-16 (width 0.25)",
        "configs/compress_fashion_mnist_vgg16.yaml",
        [
            "data.train_subset=12000",
            "student.macs_reduction=3.0",
            *SHORT,
            *STAGE_LR,
            *PLAIN_INTERNAL,
            *FINETUNE_3,
        ],
        3.0,
        1.0,
    ),
    "resnet18": Family(
        "resnet18",
        "ResNet-18 (torchvision, width 0.25)",
        "configs/compress_fashion_mnist_resnet18.yaml",
        ["student.macs_reduction=2.5"],
        2.5,
        1.5,
        reuse="runs/resprobe/internal-copystem",
        reuse_teacher="runs/resprobe/teacher",
    ),
    "resnet20": Family(
        "resnet20",
        "ResNet-20 (CIFAR-style)",
        "configs/compress_fashion_mnist_resnet20.yaml",
        # 40 M MACs: the costliest per step, hence quarter-epoch stages
        ["pbkd.stage.epochs=0.25", "teacher.train.epochs=10", *STAGE_LR, *KEEP_COPIES],
        2.5,
        1.5,
    ),
    "user_cnn": Family(
        "user_cnn",
        "user CNN (module names, Python API)",
        "user_cnn",
        ["student.macs_reduction=2.5", *SHORT, *STAGE_LR, *PLAIN_INTERNAL, *FINETUNE_3],
        2.5,
        1.5,
    ),
}


# What a longer budget gives PBKD where a family misses its accuracy target: PBKD-only runs (no baselines) on
# seeds kept out of the reported table (`--probe FAMILY --probe-seeds 10 11`), each variant on the family's config.
PROBES: dict[str, dict[str, list[str]]] = {
    "vgg16": {
        "as benchmarked": [],
        "fine-tune 1 epoch": ["pbkd.finetune.budget.epochs=1"],
        "fine-tune 3 epochs": ["pbkd.finetune.budget.epochs=3"],
        "stages 1.5 epochs": ["pbkd.stage.epochs=1.5"],
        "stages 1.5, fine-tune 3": ["pbkd.stage.epochs=1.5", "pbkd.finetune.budget.epochs=3"],
        "stage lr 0.01": ["pbkd.optim.lr=0.01"],
        "stage norms precise": ["pbkd.stage_norm=precise"],
        "1×1 restore": ["student.plain=restore"],
    },
    "resnet20": {
        "as benchmarked": [],
        "stage lr 0.01": ["pbkd.optim.lr=0.01"],
        "stage norms precise": ["pbkd.stage_norm=precise"],
        "copies kept": ["pbkd.copies=keep"],
    },
    "user_cnn": {
        "as benchmarked": [],
        "fine-tune 1 epoch": ["pbkd.finetune.budget.epochs=1"],
        "fine-tune 3 epochs": ["pbkd.finetune.budget.epochs=3"],
        "stages 1.5 epochs": ["pbkd.stage.epochs=1.5"],
        "stage KD 1": ["pbkd.kd_weight=1"],
        "stage lr 0.01": ["pbkd.optim.lr=0.01"],
        "stage KD 1, lr 0.01": ["pbkd.kd_weight=1", "pbkd.optim.lr=0.01"],
        "stage norms precise": ["pbkd.stage_norm=precise"],
        "stages 0.25, fine-tune 1.75": ["pbkd.stage.epochs=0.25", "pbkd.finetune.budget.epochs=1.75"],
        "1×1 restore": ["student.plain=restore"],
    },
}


def user_cnn_config() -> dict:
    """The config a user writes for their own CNN: its registered name and the module names ending each block."""
    import user_cnn

    user_cnn.register()
    return {
        "data": {
            "name": "fashion_mnist",
            "root": "/usr/share/datasets/fashion-mnist",
            "image_size": 32,
            "train_subset": 12000,
            "batch_size": 64,
            "augment": True,
        },
        "teacher": {"arch": user_cnn.NAME, "train": {"epochs": 15}, "optim": {"lr": 0.05}},
        "blocks": list(user_cnn.BLOCKS),
        "student": {"design": "thin"},
        "pbkd": {
            "stage": {"epochs": 1},
            "optim": {"lr": 0.05},
            "finetune": {"enabled": True, "budget": {"epochs": 1}, "optim": {"lr": 0.01}},
        },
        "baselines": {"methods": list(METHODS), "optim": {"lr": 0.05}},
    }


def base_config(family: Family) -> str | dict:
    return user_cnn_config() if family.config == "user_cnn" else family.config


def family_config(
    family: Family, seed: int | None, teacher: Path | None, extra: list[str] | None = None
) -> CompressConfig:
    """The family's compress config for `seed` from `teacher`, with `extra` overrides last (a probe variant's)."""
    from distillkit.api import _config

    tail = [f"seed={seed}"] if seed is not None else []
    if teacher is not None:
        tail.append(f"teacher.checkpoint={teacher}")
    return _config(base_config(family), CompressConfig, [*family.overrides, *COMMON, *(extra or []), *tail])


def finished(folder: Path, want: CompressConfig) -> bool:
    """Whether `folder` holds a finished run of exactly `want`; a finished run of another config (a family's
    setting changed since it ran) stops the script with the folder named, rather than being reused."""
    report = folder / "report.json"
    if not report.is_file():
        return False
    have, wanted = json.loads(report.read_text())["config"], dump_config(want)
    if have != wanted:
        diff = sorted(k for k in set(have) | set(wanted) if have.get(k) != wanted.get(k))
        raise SystemExit(
            f"{folder} finished with another config than this script runs now (differs at: {', '.join(diff)}): "
            "move it away to run it again"
        )
    return True


def teacher_dir(out: Path, family: Family) -> Path:
    """The family's teacher folder: the reused one when its config is this family's, else OUT/FAMILY/teacher."""
    if family.reuse_teacher is not None:
        reused = Path(family.reuse_teacher)
        report = reused / "report.json"
        if report.is_file():
            cfg = family_config(family, 0, None)
            want = dump_config(TrainConfig(seed=0, device=cfg.device, data=cfg.data, model=cfg.teacher))
            have = json.loads(report.read_text())["config"]
            have["device"] = (
                want["device"] if have.get("device") == "cpu" else have.get("device")
            )  # auto → cpu
            if {k: have.get(k) for k in want} == want:
                return reused
            print(f"{family.name}: {reused} was trained with another config; training the teacher anew")
    return out / family.name / "teacher"


def train_teacher(out: Path, family: Family) -> dict:
    from distillkit.jobs.train import run_train

    folder = teacher_dir(out, family)
    if (folder / "report.json").is_file():
        return json.loads((folder / "report.json").read_text())
    cfg = family_config(family, 0, None)
    print(f"{family.name}: training the teacher into {folder}", flush=True)
    return run_train(TrainConfig(seed=0, device=cfg.device, data=cfg.data, model=cfg.teacher), folder)


def run_folder(out: Path, family: Family, seed: int) -> Path:
    """OUT/FAMILY/seed<N>, or the reused run of the same seed when its config is exactly this one."""
    teacher = teacher_dir(out, family) / "model.pt"
    if family.reuse is not None:
        reused = Path(family.reuse) / f"seed{seed}" / "report.json"
        if reused.is_file():
            want = dump_config(family_config(family, seed, teacher))
            have = json.loads(reused.read_text())["config"]
            if have == want:
                return reused.parent
            print(f"{family.name}: {reused.parent} has another config; running seed {seed} anew")
    return out / family.name / f"seed{seed}"


def run_seed(out: Path, family: Family, seed: int) -> None:
    from distillkit.api import compress

    folder = run_folder(out, family, seed)
    teacher = teacher_dir(out, family) / "model.pt"
    if finished(folder, family_config(family, seed, teacher)):
        return
    print(f"{family.name}: seed {seed} into {folder}", flush=True)
    start = time.time()
    compress(base_config(family), folder, [*family.overrides, *COMMON, f"seed={seed}", f"teacher.checkpoint={teacher}"],
             resume=True)  # fmt: skip
    print(f"{family.name}: seed {seed} done in {time.time() - start:.0f} s", flush=True)


def run_probes(out: Path, family: Family, seeds: list[int], only: list[str] | None = None) -> str:
    """Run the family's PBKD-only probe variants on `seeds` (kept out of the table); their results as Markdown."""
    from distillkit.api import compress

    teacher = teacher_dir(out, family) / "model.pt"
    teacher_acc = train_teacher(out, family)["accuracy"]  # trained once, then read back
    lines = [
        f"# compress_families probe: {family.label}",
        "",
        f"PBKD only (no baselines), seeds {seeds} (not in the benchmark table), on the family's config "
        f"(`{family.config}` with `{' '.join([*family.overrides, *COMMON])}`) plus each variant's overrides; "
        f"teacher {teacher_acc:.2f} %.",
        "",
        "| variant | overrides | seed | after stages | PBKD final | drop | steps | PBKD s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        for variant, extra in PROBES[family.name].items():
            folder = (
                out / family.name / "probe" / variant.replace(" ", "-").replace(",", "") / f"seed{seed}-pbkd"
            )
            if only and variant not in only and not (folder / "report.json").is_file():
                continue
            if not finished(folder, family_config(family, seed, teacher, [*extra, "baselines.methods=[]"])):
                overrides = [*family.overrides, *COMMON, *extra, "baselines.methods=[]"]
                overrides += [f"seed={seed}", f"teacher.checkpoint={teacher}"]
                print(f"{family.name} probe {variant}: seed {seed} into {folder}", flush=True)
                compress(base_config(family), folder, overrides, resume=True)
            r = json.loads((folder / "report.json").read_text())
            stages = ", ".join(f"{st['accuracy']:.2f}" for st in r["stages"] if st["block"] is not None)
            acc = r["student"]["accuracy"]
            lines.append(
                f"| {variant} | `{' '.join(extra) or '–'}` | {seed} | {stages} | {acc:.2f} | "
                f"{teacher_acc - acc:.2f} | {r['training']['pbkd_steps']} | {r['training']['pbkd_seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


OPS = ["conv2d", "batch_norm", "max_pool2d", "relu_", "add", "add_", "adaptive_avg_pool2d", "linear"]


def profile_ops(out: Path, names: list[str], seeds: list[int]) -> str:
    """One `torch.profiler` pass per model at batch 64, one thread: CPU ms per operator, teacher vs student."""
    from torch.profiler import ProfilerActivity, profile

    lines = [
        "# compress_families profile",
        "",
        "CPU ms per forward at batch 64 (one thread; mean of 5 after 3 warm-up), by operator, from one "
        "`torch.profiler` pass on a shared machine: indicative only.",
        "",
        "| family | model | convs | total | " + " | ".join(OPS) + " |",
        "|---|---|---|---|" + "---|" * len(OPS),
    ]
    torch.set_num_threads(1)
    for name in names:
        family = FAMILIES[name]
        folder = run_folder(out, family, seeds[0])
        if not (folder / "report.json").is_file():
            continue
        for label, net in zip(("teacher", "student"), load_pair(folder), strict=True):
            x = torch.randn(64, 1, 32, 32)
            with torch.inference_mode():
                for _ in range(3):
                    net(x)
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(5):
                        net(x)
            ms = {op: 0.0 for op in OPS}
            for event in prof.key_averages():
                op = event.key.removeprefix("aten::")
                if op in ms:
                    ms[op] += event.cpu_time_total / 5 / 1000
            convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
            cells = " | ".join(f"{ms[op]:.1f}" for op in OPS)
            lines.append(f"| {family.label} | {label} | {convs} | {sum(ms.values()):.1f} | {cells} |")
    return "\n".join(lines) + "\n"


def load_pair(folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The teacher (split into the run's blocks) and the PBKD student of a finished run, in eval mode."""
    from distillkit.api import load_student
    from distillkit.models import build_model, load_weights
    from distillkit.models.blocks import split_model

    cfg = CompressConfig.model_validate(json.loads((folder / "report.json").read_text())["config"])
    t = cfg.teacher
    model = build_model(t.arch, 10, 1, t.width, t.small_input)
    load_weights(model, t.checkpoint)
    return split_model(model.eval(), cfg.blocks).eval(), load_student(folder)


# ----------------------------------------------------------------------------------------------------- latency
def measure_latency_pair(out: Path, family: Family, seed_folder: Path, remeasure: bool) -> dict:
    """Median CPU latency (ms) of teacher and student at batch 1 and 64, one thread, interleaved."""
    from distillkit.api import load_student
    from distillkit.engine.profile import measure_latency
    from distillkit.models import build_model, load_weights
    from distillkit.models.blocks import split_model

    cache = out / family.name / "latency.json"
    if cache.is_file() and not remeasure:
        return json.loads(cache.read_text())
    report = json.loads((seed_folder / "report.json").read_text())
    cfg = CompressConfig.model_validate(report["config"])
    student = load_student(seed_folder)
    t = cfg.teacher
    model = build_model(t.arch, 10, 1, t.width, t.small_input)
    load_weights(model, t.checkpoint)
    teacher = split_model(model.eval(), cfg.blocks).eval()
    size = cfg.data.image_size
    torch.set_num_threads(1)
    rounds, repeats = 7, {1: 30, 64: 5}
    times: dict[str, dict[str, list[float]]] = {n: {"1": [], "64": []} for n in ("teacher", "student")}
    for _ in range(rounds):
        for b in (1, 64):
            for name, net in (("teacher", teacher), ("student", student)):
                lat = measure_latency(net, (b, 1, size, size), repeats[b], warmup=2, threads=1)
                times[name][str(b)].append(lat["median_ms"])
    result = {n: {b: statistics.median(v) for b, v in per.items()} for n, per in times.items()}
    result |= {"threads": 1, "rounds": rounds, "repeats": {str(k): v for k, v in repeats.items()},
               "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2))
    return result


# ------------------------------------------------------------------------------------------- tables and summary
def t_interval(values: list[float]) -> tuple[float, list[float] | None]:
    """Mean and 95 % t-interval (None for fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    half = T_975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))
    return mean, [mean - half, mean + half]


def mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def family_summary(
    family: str,
    reports: list[dict],
    teacher_accuracy: float,
    latency: dict | None,
    macs_target: float,
    max_drop: float,
) -> dict:
    """One family's entry of compress_summary.json from its finished compress reports (one per seed)."""
    reports = sorted(reports, key=lambda r: r["seed"])
    pbkd = [r["student"]["accuracy"] for r in reports]
    methods = {"pbkd": mean_std(pbkd)}
    for m in METHODS:
        if all(m in r["baselines"] for r in reports):
            methods[m] = mean_std([r["baselines"][m]["accuracy"] for r in reports])
    baselines = [m for m in METHODS if m in methods]
    entry: dict = {
        "family": family,
        "seeds": [r["seed"] for r in reports],
        "teacher_accuracy": teacher_accuracy,
        "macs_ratio": reports[0]["speedup"]["macs"],
        "macs_target": macs_target,
        "teacher_macs": reports[0]["teacher"]["macs"],
        "student_macs": reports[0]["student"]["macs"],
        "student_ratio": reports[0].get("student_ratio"),
        "drop": teacher_accuracy - methods["pbkd"]["mean"],
        "max_drop": max_drop,
        "methods": methods,
        "vs_best_baseline": None,
    }
    if baselines:
        best = max(baselines, key=lambda m: methods[m]["mean"])
        diffs = [r["student"]["accuracy"] - r["baselines"][best]["accuracy"] for r in reports]
        mean, ci = t_interval(diffs)
        entry["vs_best_baseline"] = {"baseline": best, "mean": mean, "ci95": ci, "per_seed": diffs}
    if latency is not None:
        speed = {b: latency["teacher"][b] / latency["student"][b] for b in ("1", "64")}
        entry["latency_ms"] = {"teacher": latency["teacher"], "student": latency["student"]}
        entry["speedup"] = speed
        entry["speedup64_over_macs"] = speed["64"] / entry["macs_ratio"]
    entry["targets"] = targets(entry)
    return entry


def targets(e: dict) -> dict:
    """Which targets the family meets: PBKD ≥ best baseline (mean ≥ 0, interval not entirely below 0), the MACs
    target at most `max_drop` points below the teacher, b64 speed-up ≥ 0.7 × MACs ratio."""
    vs = e["vs_best_baseline"]
    out = {
        "macs": e["macs_ratio"] >= e["macs_target"] - 1e-9,
        "drop": e["drop"] <= e["max_drop"],
        "vs_best_baseline": None
        if vs is None
        else vs["mean"] >= 0 and (vs["ci95"] is None or vs["ci95"][1] >= 0),
        "latency": None if "speedup64_over_macs" not in e else e["speedup64_over_macs"] >= 0.7,
    }
    return out


def _ms(d: dict) -> str:
    return f"{d['mean']:.2f} ± {d['std']:.2f}"


def _yes(v: bool | None) -> str:
    return "–" if v is None else ("yes" if v else "**no**")


def markdown(entries: list[dict], labels: dict[str, str], preamble: str = "") -> str:
    """The results tables of compress_families.md."""
    head = ["family", "seeds", "teacher", "PBKD", "scratch", "KD", "KD (inherit)", "FitNets", "AT", "MACs ×", "drop",
            "PBKD − best baseline (95 % CI)"]  # fmt: skip
    lines = [preamble, "Top-1 % on the 10 000-image test set, mean ± std over seeds.", ""] if preamble else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        m, vs = e["methods"], e["vs_best_baseline"]
        if vs is None:
            vs_text = "–"
        elif vs["ci95"] is None:
            vs_text = f"{vs['mean']:+.2f} vs {vs['baseline']} (one seed)"
        else:
            vs_text = f"{vs['mean']:+.2f} [{vs['ci95'][0]:+.2f}, {vs['ci95'][1]:+.2f}] vs {vs['baseline']}"
        row = [labels.get(e["family"], e["family"]), str(len(e["seeds"])), f"{e['teacher_accuracy']:.2f}",
               _ms(m["pbkd"]), *[_ms(m[k]) if k in m else "–" for k in METHODS],
               f"{e['macs_ratio']:.2f}", f"{e['drop']:.2f}", vs_text]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "CPU latency, one thread, median ms (teacher / student) and speed-up:", ""]
    head2 = ["family", "MACs (M) teacher / student", "b1 ms", "b64 ms", "speed-up b1", "speed-up b64",
             "speed-up b64 / MACs ×"]  # fmt: skip
    lines += ["| " + " | ".join(head2) + " |", "|" + "---|" * len(head2)]
    for e in entries:
        if "speedup" not in e:
            continue
        lt, ls, s = e["latency_ms"]["teacher"], e["latency_ms"]["student"], e["speedup"]
        row = [labels.get(e["family"], e["family"]), f"{e['teacher_macs'] / 1e6:.2f} / {e['student_macs'] / 1e6:.2f}",
               f"{lt['1']:.2f} / {ls['1']:.2f}", f"{lt['64']:.1f} / {ls['64']:.1f}", f"{s['1']:.2f}×",
               f"{s['64']:.2f}×", f"{e['speedup64_over_macs']:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Targets (PBKD ≥ best baseline: mean ≥ 0 and the interval not entirely below 0; the MACs target; "
              "drop ≤ 1.5 points, VGG ≤ 1.0; b64 speed-up ≥ 0.7 × MACs ratio):", ""]  # fmt: skip
    head3 = ["family", "PBKD ≥ best baseline", "MACs target met", "drop within", "latency b64 ≥ 0.7 × MACs"]
    lines += ["| " + " | ".join(head3) + " |", "|" + "---|" * len(head3)]
    for e in entries:
        t = e["targets"]
        row = [labels.get(e["family"], e["family"]), _yes(t["vs_best_baseline"]),
               f"{_yes(t['macs'])} ({e['macs_ratio']:.2f}× for {e['macs_target']:g}×)",
               f"{_yes(t['drop'])} ({e['drop']:.2f} for ≤ {e['max_drop']:g})", _yes(t["latency"])]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def collect(out: Path, names: list[str], seeds: list[int], remeasure: bool, latency: bool) -> list[dict]:
    """Every family's summary entry from its finished runs (families with none are left out)."""
    entries = []
    for name in names:
        family = FAMILIES[name]
        folders = [run_folder(out, family, s) for s in seeds]
        done = [f for f in folders if (f / "report.json").is_file()]
        tfile = teacher_dir(out, family) / "report.json"
        if not done or not tfile.is_file():
            continue
        reports = [json.loads((f / "report.json").read_text()) for f in done]
        lat = measure_latency_pair(out, family, done[0], remeasure) if latency else None
        teacher_report = json.loads(tfile.read_text())
        teacher_acc = teacher_report["accuracy"]
        entry = family_summary(name, reports, teacher_acc, lat, family.macs_target, family.max_drop)
        entry["runs"] = [str(f) for f in done]
        entry["teacher_seconds"] = teacher_report.get("train_seconds")
        entry["steps"] = reports[0]["training"]["pbkd_steps"]  # PBKD's and every baseline's, batches of 64
        entry["pbkd_seconds"] = mean_std([r["training"]["pbkd_seconds"] for r in reports])["mean"]
        entry["baseline_seconds"] = statistics.fmean(
            sum(b["seconds"] for b in r["baselines"].values()) for r in reports
        )
        entries.append(entry)
    return entries


def save_tables(entries: list[dict], labels: dict[str, str], preamble: str, dest: Path) -> str:
    """compress_families.md (the tables under `preamble`) and compress_summary.json in `dest`; the Markdown."""
    text = markdown(entries, labels, preamble)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "compress_families.md").write_text(text)
    (dest / "compress_summary.json").write_text(json.dumps(entries, indent=2) + "\n")
    return text


def write_results(entries: list[dict], dest: Path) -> str:
    """Write compress_families.md and compress_summary.json into `dest`; returns the Markdown."""
    labels = {n: f.label for n, f in FAMILIES.items()}
    sizes = [
        f"- {FAMILIES[e['family']].label}: `{FAMILIES[e['family']].config}` with "
        f"`{' '.join([*FAMILIES[e['family']].overrides, *COMMON])}`; runs {', '.join(f'`{r}`' for r in e['runs'])}; "
        f"teacher trained in {e['teacher_seconds'] or 0:.0f} s; {e['steps']} steps for PBKD and for each baseline; "
        f"per seed PBKD {e['pbkd_seconds']:.0f} s, the baselines {e['baseline_seconds']:.0f} s together"
        for e in entries
    ]
    preamble = "\n".join(
        [
            "# compress_families",
            "",
            "PBKD and the baselines (same student, same number of steps) per teacher family on Fashion-MNIST "
            "(12 000-image class-balanced training subset, 32×32). Teacher trained once per family (seed 0); "
            "seeds change data order, initialisation and the training subset. Each family asks for a MACs "
            "target (`student.macs_reduction`). Runs:",
            "",
            *sizes,
            "",
            f"Training time in all (teachers, PBKD and baselines of every seed listed): "
            f"{sum((e['teacher_seconds'] or 0) + len(e['seeds']) * (e['pbkd_seconds'] + e['baseline_seconds']) for e in entries):.0f} s "
            "of one thread on a 2-core machine shared with other jobs (evaluation and profiling come on top). "
            "Latency was measured by this script after the runs, one thread, teacher and student interleaved "
            "(medians of 7 rounds), on the same shared machine: read it as rough.",
            "",
            "The user CNN (`benchmarks/user_cnn.py`) is not part of distillkit: the script registers it as a "
            "backbone and compresses it with `distillkit.api.compress` and `blocks: [pool1, pool2, pool3]`.",
            "",
        ]
    )
    return save_tables(entries, labels, preamble, dest)


def merge_results(folders: list[Path], dest: Path) -> str:
    """One table and summary in `dest` from the summaries of several result folders (partial reruns): each family's
    entry from the last folder that holds it, with that folder named (`results_from`; its compress_families.md
    gives the command, settings and training times of the family's runs). Returns the Markdown."""
    if any(folder.resolve() == dest.resolve() for folder in folders):
        raise SystemExit(f"--merge: {dest} is where the merged table goes; merge other folders into it")
    found: dict[str, dict] = {}
    for folder in folders:
        path = folder / "compress_summary.json"
        if not path.is_file():
            raise SystemExit(f"{path}: no such file (a folder of compress_families.py results)")
        for entry in json.loads(path.read_text()):
            found[entry["family"]] = {**entry, "results_from": folder.as_posix()}
    entries = [found[name] for name in FAMILIES if name in found]
    labels = {n: f.label for n, f in FAMILIES.items()}
    sources = [
        f"- {labels[e['family']]}: [{e['results_from']}]({Path(e['results_from']).name}/compress_families.md)"
        for e in entries
    ]
    preamble = "\n".join(
        [
            "# compress_families",
            "",
            "PBKD and the baselines (same student, same number of steps) per teacher family on Fashion-MNIST "
            "(12 000-image class-balanced training subset, 32×32), assembled by `python benchmarks/"
            f"compress_families.py --merge {' '.join(f.as_posix() for f in folders)}` from the folders of the "
            "families' latest runs; each folder's table gives its command, settings, training times and latency "
            "conditions:",
            "",
            *sources,
            "",
        ]
    )
    return save_tables(entries, labels, preamble, dest)


def paired_runs(a: Path, b: Path, names: list[str], seeds: list[int]) -> list[dict]:
    """Per family and method (PBKD and every baseline), the paired differences seed by seed of top-1 accuracy, run
    folder `a` − run folder `b` (two `--out` folders of this script, e.g. a `--set` variant against the defaults),
    with their mean and 95 % t-interval. Only seeds finished in both count; the two must share the teacher (the
    same report), else they are not paired and the script stops naming the family."""
    rows = []
    for name in names:
        family = FAMILIES[name]
        teachers = [json.loads((teacher_dir(o, family) / "report.json").read_text()) if
                    (teacher_dir(o, family) / "report.json").is_file() else None for o in (a, b)]  # fmt: skip
        if None in teachers:
            continue
        if teachers[0] != teachers[1]:
            raise SystemExit(f"--compare: {name}'s teachers in {a} and {b} differ: the runs are not paired")
        reports = []
        for seed in seeds:
            pair = [run_folder(o, family, seed) / "report.json" for o in (a, b)]
            if all(f.is_file() for f in pair):
                reports.append([json.loads(f.read_text()) for f in pair])
        if not reports:
            continue
        for method in ["pbkd", *METHODS]:

            def acc(r: dict, m: str = method) -> float | None:
                return r["student"]["accuracy"] if m == "pbkd" else r["baselines"].get(m, {}).get("accuracy")

            both = [
                (x["seed"], acc(x), acc(y)) for x, y in reports if acc(x) is not None and acc(y) is not None
            ]
            if not both:
                continue
            diffs = [u - v for _, u, v in both]
            mean, ci = t_interval(diffs)
            rows.append({
                "family": name, "method": method, "seeds": [seed for seed, _, _ in both], "per_seed": diffs,
                "mean": mean, "ci95": ci, "a": mean_std([u for _, u, _ in both]),
                "b": mean_std([v for _, _, v in both]),
                "macs_ratio": [reports[0][0]["speedup"]["macs"], reports[0][1]["speedup"]["macs"]],
            })  # fmt: skip
    return rows


def verdict(ci: list[float] | None) -> str:
    """'better' / 'worse' when the interval lies above / below 0, else 'not separated'."""
    if ci is None or ci[0] <= 0 <= ci[1]:
        return "not separated"
    return "better" if ci[0] > 0 else "worse"


def compare_markdown(rows: list[dict], a: Path, b: Path) -> str:
    """The paired table of `paired_runs`."""
    labels = {n: f.label for n, f in FAMILIES.items()}
    names = {"pbkd": "PBKD", "scratch": "scratch", "kd": "KD", "kd_inherit": "`kd_inherit`", "fitnets": "FitNets",
             "at": "AT"}  # fmt: skip
    lines = [
        "# compress_families: paired comparison", "",
        f"`python benchmarks/compress_families.py --compare {a.as_posix()} {b.as_posix()}`", "",
        f"Top-1 % of each method's student, A = `{a.as_posix()}` against B = `{b.as_posix()}`, the same teacher, "
        "paired by seed (A − B), mean and 95 % t-interval; \"better\" or \"worse\" only where the interval "
        "excludes 0.", "",
        "| family | method | A | B | A − B per seed | mean | 95 % interval | verdict | MACs × (A / B) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        ci = "n/a" if r["ci95"] is None else f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]"
        lines.append(
            f"| {labels[r['family']]} | {names[r['method']]} | {r['a']['mean']:.2f} ± {r['a']['std']:.2f} | "
            f"{r['b']['mean']:.2f} ± {r['b']['std']:.2f} | {' / '.join(f'{d:+.2f}' for d in r['per_seed'])} | "
            f"{r['mean']:+.2f} | {ci} | {verdict(r['ci95'])} | "
            f"{r['macs_ratio'][0]:.2f} / {r['macs_ratio'][1]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/families"))
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where the tables go (another folder for a partial rerun)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides added to every family's config, last (a variant: give it its own --out and --results)",
    )
    parser.add_argument("--remeasure", action="store_true", help="measure latency again")
    parser.add_argument("--report-only", action="store_true", help="no training: tables from finished runs")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="no training: one table from these result folders",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("A", "B"),
        help="no training: each method's accuracy in run folders A − B (two --out folders), paired by seed",
    )
    parser.add_argument("--probe", choices=list(PROBES), help="run this family's probe variants instead")
    parser.add_argument("--profile", action="store_true", help="per-operator CPU time of teacher and student")
    parser.add_argument("--probe-seeds", type=int, nargs="+", default=[10])
    parser.add_argument(
        "--probe-variants", nargs="+", help="run only these probe variants (finished ones are listed)"
    )
    args = parser.parse_args()
    for family in FAMILIES.values():
        family.overrides = [*family.overrides, *args.set]
    for name in args.families:
        base_config(FAMILIES[name])  # registers the user CNN, which the report's latency also builds
    torch.set_num_threads(1)
    start = time.time()
    if args.merge:
        print(merge_results(args.merge, args.results))
        return
    if args.compare:
        rows = paired_runs(*args.compare, args.families, args.seeds)
        text = compare_markdown(rows, *args.compare)
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "compress_families_compare.md").write_text(text)
        (args.results / "compress_families_compare.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(text)
        return
    if args.profile:
        text = profile_ops(args.out, args.families, args.seeds)
        (RESULTS / "compress_families_profile.md").write_text(text)
        print(text)
        return
    if args.probe:
        text = run_probes(args.out, FAMILIES[args.probe], args.probe_seeds, args.probe_variants)
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / f"compress_families_probe_{args.probe}.md").write_text(text)
        print(text)
        return
    if not args.report_only:
        for name in args.families:
            train_teacher(args.out, FAMILIES[name])
        for seed in args.seeds:  # seed by seed, so that a cut-short benchmark has every family
            for name in args.families:
                run_seed(args.out, FAMILIES[name], seed)
                write_results(collect(args.out, args.families, args.seeds, False, False), args.results)
    text = write_results(collect(args.out, args.families, args.seeds, args.remeasure, True), args.results)
    print(text)
    print(f"wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
