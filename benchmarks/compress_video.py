"""PBKD of TSM video networks on the embedded motion videos: (a) a trained TSM against scratch and KD on the same
student, (b) the final model of a class-incremental run.

    OMP_NUM_THREADS=1 python benchmarks/compress_video.py [--out runs/compress_video] [--seeds 0 1 2]
    OMP_NUM_THREADS=1 python benchmarks/compress_video.py --parts b     # (b) alone
    OMP_NUM_THREADS=1 python benchmarks/compress_video.py --probe-seeds 10 11

(a) The teacher (configs/train_video_synthetic_motion_18.yaml: TSM ResNet-18 at width 1/8, 18 motion classes, 40
training and 20 test videos a class) is trained once (seed 0) into OUT/teacher; each seed is then a compression run
of it (configs/compress_synthetic_motion_tsm.yaml: ≥ 2× fewer MACs per clip, the stem kept, PBKD stages of 1
epoch, a 14-epoch KD fine-tune) with the baselines scratch, KD and KD from PBKD's starting student (`kd_inherit`)
trained on the same student architecture for PBKD's number of steps, with the same optimiser (AdamW, lr 0.002), in
OUT/seed<N>. PBKD's student starts from the teacher's largest filters (`student.init: auto`, the image path's
default); scratch and KD start from fresh weights. Paired differences PBKD − baseline per seed, mean and 95 %
t-interval.

`--probe-seeds` runs, instead, PBKD alone (no baselines) in each of `PROBES`' variants of the config on those seeds,
in OUT/probe/<variant>_seed<N>, and writes benchmarks/results/compress_video_probe.md: how the config's settings
were chosen, on seeds the table does not use.

(b) A LUCIR run and a civc run (configs/incremental_synthetic_motion.yaml's videos with 40 training and 20 test
videos a class, 6 base classes then 4 steps of 3; 60 base epochs, 4 per step; each method at its defaults) in
OUT/incremental_<method>; each final model is compressed (the same student design, seed 0, no baselines) twice: on
all training videos of the 18 classes it has seen (the teacher itself saw old classes only through its memory), and
on the run's memory after its last step alone (`teacher.train_on: memory`, what the class-incremental setting keeps)
for the same number of steps; both are tested on all the test videos of those classes, as the run evaluates its
final model. Writes benchmarks/results/compress_video_incremental.md (`--parts b` runs only this part, `--parts a`
only (a)).

Finished runs are reused, so the script can be stopped and started again (an unfinished compress run resumes).
Clips/s: CPU, batch 16, one thread, measured by the compress job (teacher and student interleaved, medians); the
machine may be shared with other jobs. (a) writes benchmarks/results/compress_video.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from distillkit import api
from distillkit.incremental.memory import ExemplarMemory

CONFIGS = Path("configs")
RESULTS = Path("benchmarks/results")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
SMALL = ["data.synthetic.train_per_class=40", "data.synthetic.test_per_class=20"]
STREAM = [*SMALL, "train.base.epochs=60", "train.step.epochs=4"]
STREAMS = {"lucir": [*STREAM, "method.name=lucir"], "civc": [*STREAM, "method.name=civc"]}
"""The class-incremental runs of (b): the stream, and each method at its defaults."""
ON_MEMORY = [
    "teacher.train_on=memory", "pbkd.stage.steps=45", "pbkd.finetune.budget.steps=630", "baselines.methods=[kd_inherit]"
]  # fmt: skip
"""(b)'s compression on the run's memory alone, for the number of steps the compression on all 720 training videos
takes (45 a stage, 14 epochs of fine-tune), with KD from PBKD's starting student on the same clips and steps."""
BEFORE = ["student.plain=restore", "pbkd.copies=train", "pbkd.stage.epochs=3", "pbkd.finetune.enabled=false"]
"""The config before the probes: the stem thinned (one thin conv and a 1×1 restore that starts random), 3-epoch
stages, no fine-tune."""
STAGES3 = ["pbkd.stage.epochs=3"]
PROBES = {
    "stem thinned, no fine-tune (before)": BEFORE,
    "stem kept, no fine-tune": [*STAGES3, "pbkd.finetune.enabled=false"],
    "stem thinned, 3-epoch fine-tune": [
        "student.plain=restore", "pbkd.copies=train", *STAGES3, "pbkd.finetune.budget.epochs=3"
    ],
    "stem kept, 3-epoch fine-tune": [*STAGES3, "pbkd.finetune.budget.epochs=3"],
    "stem kept, 6-epoch fine-tune": [*STAGES3, "pbkd.finetune.budget.epochs=6"],
    "stem kept, logit KD in the stages, 6-epoch fine-tune": [
        *STAGES3, "pbkd.finetune.budget.epochs=6", "pbkd.kd_weight=1"
    ],
    "stem kept, 1-epoch stages, 14-epoch fine-tune (the config)": [],
}  # fmt: skip
"""The probe's variants of configs/compress_synthetic_motion_tsm.yaml, as overrides (PBKD alone)."""


def compress(out: Path, teacher: Path, seed: int, extra: list[str]) -> dict:
    """The report of a compression run (run, resumed, or read back when it finished)."""
    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text())
    overrides = [f"teacher.from_run={teacher}", f"seed={seed}", "export_onnx=false", *extra]
    api.compress(CONFIGS / "compress_synthetic_motion_tsm.yaml", out, overrides, resume=out.exists())
    return json.loads((out / "report.json").read_text())


def final_ce(run: Path, method: str) -> float | None:
    """The last logged training cross-entropy of baseline `method` in the run folder `run` (metrics.jsonl)."""
    ce = None
    for line in (run / "metrics.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("group") == f"baseline {method}" and "ce" in entry:
            ce = entry["ce"]
    return ce


def t_interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:+.2f} (one seed: no interval)"
    half = T_975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))
    verdict = "better" if mean - half > 0 else "worse" if mean + half < 0 else "not separated"
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] ({verdict})"


def costs(report: dict) -> list[str]:
    t, s = report["teacher"], report["student"]
    return [
        f"{t['macs'] / 1e6:.1f} → {s['macs'] / 1e6:.1f} ({t['macs'] / s['macs']:.2f}×)",
        f"{t['params']:,} → {s['params']:,}",
        f"{t['clips_per_s']['16']:.0f} → {s['clips_per_s']['16']:.0f} "
        f"({s['clips_per_s']['16'] / t['clips_per_s']['16']:.2f}×)",
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def probe(out: Path, teacher: Path, seeds: list[int]) -> None:
    """PBKD alone in each variant of `PROBES` on `seeds`: final accuracy, accuracy after each stage, MACs ratio;
    each variant's difference with the first, per seed. Writes benchmarks/results/compress_video_probe.md."""
    runs = {
        (name, seed): compress(out / "probe" / f"{slug(name)}_seed{seed}", teacher, seed,
                               ["baselines.methods=[]", *overrides])
        for name, overrides in PROBES.items() for seed in seeds
    }  # fmt: skip
    first = next(iter(PROBES))
    rows = []
    for name in PROBES:
        acc = [runs[name, s]["student"]["accuracy"] for s in seeds]
        base = [runs[first, s]["student"]["accuracy"] for s in seeds]
        stages = [" → ".join(f"{a:.1f}" for a in stage_accuracies(runs[name, s])) for s in seeds]
        r = runs[name, seeds[0]]
        rows.append(
            [name, " / ".join(f"{a:.2f}" for a in acc), f"{statistics.fmean(acc):.2f}",
             " / ".join(f"{a - b:+.2f}" for a, b in zip(acc, base, strict=True)),
             f"{r['teacher']['macs'] / r['student']['macs']:.2f}", " ; ".join(stages)]
        )  # fmt: skip
    t = runs[first, seeds[0]]["teacher"]["accuracy"]
    lines = [
        "# PBKD of a TSM video network: probes for the config",
        "",
        f"Written by `OMP_NUM_THREADS=1 python benchmarks/compress_video.py --probe-seeds {' '.join(map(str, seeds))}`"
        f" (runs in `{out / 'probe'}`). PBKD alone (no baselines) on seeds the table does not use, each variant of "
        "`configs/compress_synthetic_motion_tsm.yaml` given by its overrides in the script (`PROBES`); the teacher "
        f"of the table ({t:.2f} %). Accuracy: top-1 % over the 360 test videos (one is 0.28 points).",
        "",
    ]
    lines += table(
        [
            "variant",
            "PBKD, per seed",
            "mean",
            "− first row, per seed",
            "MACs ×",
            "after each stage (→ fine-tune)",
        ],
        rows,
    )
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compress_video_probe.md").write_text(text)
    print(text)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def stage_accuracies(report: dict) -> list[float]:
    """Test accuracy after each PBKD stage, then after the fine-tune when there is one (report.json)."""
    return [s["accuracy"] for s in report["stages"]]


def incremental_part(out: Path) -> None:
    """(b): each method of `STREAMS` run on the stream, its final model compressed on all the training videos of
    the classes seen and on the run's memory alone; writes benchmarks/results/compress_video_incremental.md."""
    rows = []
    for method, overrides in STREAMS.items():
        inc = out / f"incremental_{method}"
        results_file = inc / "results.json"
        if not results_file.is_file() or json.loads(results_file.read_text())["steps_done"] < 5:
            api.incremental(
                CONFIGS / "incremental_synthetic_motion.yaml", inc, overrides, resume=inc.exists()
            )
        results = json.loads(results_file.read_text())
        every = compress(out / f"incremental_{method}_all", inc, 0, ["baselines.methods=[]"])
        kept = compress(out / f"incremental_{method}_memory", inc, 0, ON_MEMORY)
        steps = (every["training"]["pbkd_steps"], kept["training"]["pbkd_steps"])
        if steps[0] != steps[1]:
            raise SystemExit(f"{method}: the two compressions trained {steps[0]} and {steps[1]} steps")
        t = results["final_accuracy"]
        if max(abs(r["teacher"]["accuracy"] - t) for r in (every, kept)) > 1e-3:
            raise SystemExit(f"{method}: the compressions' teacher is not the run's final model ({t:.2f} %)")
        memory = ExemplarMemory.load(inc / "memory" / "step_004")
        student, inherit = kept["student"]["accuracy"], kept["baselines"]["kd_inherit"]["accuracy"]
        rows.append(
            [method, f"{t:.2f}", f"{every['student']['accuracy']:.2f} ({every['student']['accuracy'] - t:+.2f})",
             f"{student:.2f} ({student - t:+.2f})", f"{inherit:.2f} ({inherit - t:+.2f})",
             f"{memory.videos} clips, {memory.frames} frames", str(steps[0]), *costs(kept)]
        )  # fmt: skip
    lines = [
        "# PBKD of the final model of a class-incremental run (embedded motion videos)",
        "",
        "Written by `OMP_NUM_THREADS=1 python benchmarks/compress_video.py --parts b` (runs in "
        f"`{out}/incremental_*`). Each method runs `configs/incremental_synthetic_motion.yaml` with "
        f"`{' '.join(STREAM)}` (6 base classes then 4 steps of 3, 1 440 frames of memory, the method's defaults); "
        "its final model is compressed with `configs/compress_synthetic_motion_tsm.yaml` (seed 0, no baselines) "
        "twice: on all the training videos of the 18 classes seen (`teacher.train_on: all`; the teacher saw its old "
        "classes only through its memory) and on the run's memory after its last step alone (`teacher.train_on: "
        "memory`, the data the class-incremental setting keeps), for the same number of steps "
        f"(`{' '.join(ON_MEMORY[1:3])}`: the first one's 1-epoch stages and 14-epoch fine-tune over 720 videos), "
        "beside KD from PBKD's starting student (`kd_inherit`) on the same clips for the same steps. All are tested "
        f"on all the test videos of the 18 classes (one is {100 / 360:.2f} points).",
        "",
    ]
    lines += table(
        ["method", "teacher (the run's final accuracy)", "PBKD, all videos (− teacher)",
         "PBKD, memory alone (− teacher)", "kd_inherit, memory alone (− teacher)", "memory", "steps",
         "MACs/clip (M)", "params", "clips/s (b16)"],
        rows,
    )  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compress_video_incremental.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compress_video"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["a", "b"],
        default=["a", "b"],
        help="(a) the trained TSM, (b) incremental runs",
    )
    parser.add_argument("--probe-seeds", type=int, nargs="+", help="run `PROBES` (PBKD alone) on these seeds")
    args = parser.parse_args()
    out: Path = args.out

    if "b" in args.parts:
        incremental_part(out)
    if "a" not in args.parts:
        return
    teacher = out / "teacher"
    api.train(CONFIGS / "train_video_synthetic_motion_18.yaml", teacher, resume=teacher.exists())
    if args.probe_seeds:
        probe(out, teacher, args.probe_seeds)
        return
    reports = {seed: compress(out / f"seed{seed}", teacher, seed, []) for seed in args.seeds}

    lines = [
        "# PBKD of TSM video networks (embedded motion videos)",
        "",
        "Written by `OMP_NUM_THREADS=1 python benchmarks/compress_video.py "
        f"--seeds {' '.join(map(str, args.seeds))}` (runs in `{out}`). Accuracy: top-1 % over the test videos "
        "(one centre clip each, as `distillkit train` evaluates). MACs per clip of 8 frames at 28×28; clips/s on the "
        "CPU at batch 16, one thread, teacher and student measured interleaved on a machine shared with other jobs.",
        "",
        "## (a) A trained TSM ResNet-18 (width 1/8), 18 classes",
        "",
        "Teacher: `configs/train_video_synthetic_motion_18.yaml` (40 training, 20 test videos a class; 40 epochs, "
        "seed 0, trained once). Student: `configs/compress_synthetic_motion_tsm.yaml` — the thin design at the "
        "largest filter ratio giving ≥ 2× fewer MACs, blocks = stem + 4 stages, the one-conv stem kept as the "
        "teacher's (`student.plain: internal`, `pbkd.copies: keep`), PBKD stages of 1 epoch each, then a 14-epoch "
        "KD fine-tune of the whole student (chosen on probe seeds 10 and 11: compress_video_probe.md); scratch and "
        "KD (α 0.9, T 4) train the same architecture from fresh weights, `kd_inherit` from PBKD's starting student, "
        "each for PBKD's number of steps with the same optimiser (AdamW, lr 0.002, cosine). One test video is "
        f"{100 / 360:.2f} points.",
        "",
    ]
    methods = list(next(iter(reports.values()))["baselines"])
    rows = []
    for seed, r in reports.items():
        b = r["baselines"]
        ce = [final_ce(out / f"seed{seed}", m) for m in methods]
        rows.append(
            [str(seed), f"{r['teacher']['accuracy']:.2f}", f"{r['student']['accuracy']:.2f}",
             *(f"{b[m]['accuracy']:.2f}" for m in methods),
             " / ".join("–" if c is None else f"{c:.2f}" for c in ce), f"{r['student_ratio']:g}",
             str(r["training"]["pbkd_steps"])]
        )  # fmt: skip
    header = [
        "seed",
        "teacher",
        "PBKD",
        *methods,
        f"last train CE {' / '.join(methods)}",
        "filter ratio",
        "steps",
    ]
    lines += table(header, rows)
    lines += [
        f"Chance is {100 / 18:.2f} %, and a training cross-entropy of ln 18 = {math.log(18):.2f} is a model that has "
        "learnt nothing (the CE logged over the last 25–50 steps). PBKD's student and `kd_inherit`'s start from the "
        "teacher's filters, scratch and KD from fresh weights: a baseline whose last CE is near ln 18 never left the "
        "task's initial plateau within the budget. PBKD − kd_inherit compares the blockwise stages (and their "
        "fine-tune) with KD over the whole student from the same start and for the same number of steps.",
        "",
    ]
    first = next(iter(reports.values()))
    lines += table(
        ["seed", "MACs/clip (M)", "params", "clips/s (b16)"],
        [[f"{seed}: teacher → student", *costs(r)] for seed, r in reports.items()],
    )
    for method in methods:
        diffs = [r["student"]["accuracy"] - r["baselines"][method]["accuracy"] for r in reports.values()]
        lines.append(
            f"- PBKD − {method}, per seed {', '.join(f'{d:+.2f}' for d in diffs)}; mean and 95 % t-interval "
            f"over {len(diffs)} seed{'s' if len(diffs) > 1 else ''}: {t_interval(diffs)}"
        )
    drops = [r["teacher"]["accuracy"] - r["student"]["accuracy"] for r in reports.values()]
    lines += [f"- teacher − PBKD student: {', '.join(f'{d:+.2f}' for d in drops)}", ""]
    video = first["video"]
    lines += [
        "Preserved in every student (report.json `video.blocks`): "
        + "; ".join(
            f"{b['name']}: receptive field {b['student_receptive_field'][0]}×{b['student_receptive_field'][1]} "
            f"(teacher {b['receptive_field'][0]}×{b['receptive_field'][1]}), {b['student_shifts']} shifting units "
            f"(teacher {b['shifts']}), frames seen {b['student_frames_seen']}"
            for b in video["blocks"]
        ),
        "",
    ]

    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compress_video.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
