"""CIVC on the embedded synthetic videos: against the baselines, at a quarter of iCaRL's budget, its ablation,
accuracy against the frame budget, and the appearance preset. Mean ± std over class orders.

    python benchmarks/civc_synthetic.py comparison   # civc (and civc at 1/4 budget) vs the baselines
    python benchmarks/civc_synthetic.py ablation     # each idea switched off in turn
    python benchmarks/civc_synthetic.py budget       # civc and iCaRL at 4 frame budgets, with a plot
    python benchmarks/civc_synthetic.py appearance   # baselines and civc on the appearance preset
    python benchmarks/civc_synthetic.py comparison --base-epochs 30   # the same with a 3× longer base step

Every run is a `distillkit incremental` run of `configs/incremental_synthetic_motion.yaml` with the same
backbone, epochs and frame budget as the baselines of `benchmarks/incremental_synthetic.py` (which this script
runs first, reusing finished runs); only the method, its options and the budget change. Runs with a cosine head
start from LUCIR's base model of their order, runs with a linear head from Finetune's, so that methods differ
only from the first incremental step on. Each method is judged by its own classifier (iCaRL: NME; civc: its
cosine head unless `method.options.classifier=nme`). Runs resume, so the script can be restarted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import incremental_synthetic as baselines

from distillkit.incremental.compare import compare

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BASELINES = ["finetune", "lucir", "joint", "icarl", "podnet", "lwf"]
OWNER = {"cosine": "lucir", "linear": "finetune"}
"""The baseline whose base model a variant with this head starts from."""
BUDGET = 1440
"""The frame budget of `configs/incremental_synthetic_motion.yaml` (every method's, unless said otherwise)."""


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    overrides: tuple[str, ...] = field(default=())

    def head(self) -> str:
        """The classifier head of this entry's method with its option overrides."""
        return baselines.head_of(self.method, self.overrides)

    def budget(self) -> int:
        for o in self.overrides:
            if o.startswith("memory.budget_frames="):
                return int(o.split("=")[1])
        return BUDGET


FIRST_DESIGN = (
    "method.options.key_frames=4",
    "method.options.granularity=fixed",
    "method.options.logit_weight=1",
    "method.options.spatial_weight=1",
    "method.options.temporal_weight=1",
    "method.options.cbf_epochs=0",
    "method.options.adaptive_weights=true",
)
"""civc's defaults when these tables were measured (every part on, fixed key-frames, no class-balanced
fine-tuning, the distillation weights scaled by sqrt(old / new classes)); every civc run here starts from them, so
the tables reproduce (the defaults have changed since: benchmarks/civc_bench.py)."""
CIVC = Variant("civc", "civc")
ABLATION = [
    CIVC,
    Variant("civc, whole features (no decomposition)", "civc", ("method.options.decompose=false",)),
    Variant("civc, fixed positions (no trajectories)", "civc", ("method.options.trajectories=none",)),
    Variant("civc, videos only (whole clips)", "civc", ("method.options.key_frames=null",)),
    Variant("civc, frames only (random videos)", "civc", ("memory.selection=random",)),
    Variant(
        "civc, evenly spaced key-frames (no greedy fine selection)",
        "civc",
        ("method.options.key_frame_selection=uniform",),
    ),
]
NO_FEATURE_DISTILLATION = Variant(
    "civc, no feature distillation",
    "civc",
    ("method.options.spatial_weight=0", "method.options.temporal_weight=0"),
)
"""Not one of the three ideas: `ablation --extra` adds it, to see what stage-feature distillation does at all."""
BUDGETS = [180, 360, 720, 1440]


def own(results: dict) -> dict:
    """The metrics of a run's own classifier (NME for iCaRL and civc with `classifier: nme`, else the CNN)."""
    return baselines.own_classifier_results(results)


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


class Bench:
    def __init__(self, args: argparse.Namespace, baseline_name: str, overrides: list[str]) -> None:
        self.args, self.overrides = args, overrides
        self.baseline_dir = ROOT / "runs" / "bench" / baseline_name
        self.out = ROOT / "runs" / "bench" / f"civc_{baseline_name}"
        self.baseline_name = baseline_name

    def baselines(self, variants: list[Variant]) -> None:
        """Run the baselines these variants need (those among them, and the base models' owners) for these
        orders, unless all those runs are finished (then the baseline results file, maybe written for other
        methods or orders, is left alone)."""
        owners = {OWNER[v.head()] for v in variants if v.label not in BASELINES}
        methods = [m for m in BASELINES if m in owners or any(v.label == m for v in variants)]
        runs = [self.baseline_dir / m / f"order_{o}" for m in methods for o in self.args.orders]
        if all((run / "finished").is_file() for run in runs):
            return
        argv = ["--name", self.baseline_name, "--jobs", str(self.args.jobs), "--methods", *methods]
        argv += ["--orders", *map(str, self.args.orders)]
        for o in self.overrides:
            argv += ["--set", o]
        baselines.main(argv)

    def run_dir(self, v: Variant, order: int) -> Path:
        if v.label in BASELINES:
            return self.baseline_dir / v.label / f"order_{order}"
        return self.out / slug(v.label) / f"order_{order}"

    def run(self, variants: list[Variant]) -> None:
        self.baselines(variants)
        todo = [(v, o) for v in variants for o in self.args.orders if v.label not in BASELINES]
        with ThreadPoolExecutor(self.args.jobs) as pool:
            futures = []
            for v, o in todo:
                base = self.baseline_dir / OWNER[v.head()] / f"order_{o}"
                design = FIRST_DESIGN if v.method == "civc" else ()
                extra = [*self.overrides, *design, *v.overrides, f"train.base_model={base}"]
                futures.append(
                    pool.submit(baselines.run_one, baselines.ROOT / self.args.config, self.run_dir(v, o),
                                v.method, o, extra)
                )  # fmt: skip
            for future in futures:
                print(future.result()[0], flush=True)

    def results(self, v: Variant) -> list[dict]:
        return [json.loads((self.run_dir(v, o) / "results.json").read_text()) for o in self.args.orders]

    def table(self, variants: list[Variant]) -> tuple[str, dict[str, dict[str, float]]]:
        dirs = [self.run_dir(v, o) for v in variants for o in self.args.orders]
        labels = [v.label for v in variants for _ in self.args.orders]
        _, table = compare(dirs, labels)
        stats = {}
        for v in variants:
            mine = [own(r) for r in self.results(v)]
            stats[v.label] = {
                k: statistics.fmean(m[k] for m in mine) for k in ("avg_incremental_accuracy", "forgetting")
            }
            accs = [m["avg_incremental_accuracy"] for m in mine]
            stats[v.label]["std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
            stats[v.label]["seconds"] = statistics.fmean(sum(r["seconds_per_step"]) for r in self.results(v))
        own_rows = [
            f"| {label} | {s['avg_incremental_accuracy']:.2f}"
            + (f" ± {s['std']:.2f}" if len(self.args.orders) > 1 else "")
            + f" | {s['forgetting']:.2f} | "
            f"{s['seconds']:.0f} |"
            for label, s in stats.items()
        ]
        own_table = "\n".join(
            [
                "| Method | Own classifier: avg inc. acc (%) | Forgetting | Seconds per run |",
                "|---|---|---|---|",
            ]
            + own_rows
        )
        return f"{table}\n\nEach method by its own classifier:\n\n{own_table}", stats


def write(name: str, lines: list[str]) -> str:
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return text


def comparison(bench: Bench, name: str, command: str, quarter_budget: bool = True) -> str:
    """civc against the baselines (`--methods`); with `quarter_budget`, also civc at a quarter of the budget
    against iCaRL (motion only: the issue's target is stated there)."""
    quarter = Variant(f"civc at {BUDGET // 4} frames", "civc", (f"memory.budget_frames={BUDGET // 4}",))
    methods = bench.args.methods
    variants = [Variant(m, m) for m in methods] + [CIVC] + ([quarter] if quarter_budget else [])
    bench.run(variants)
    table, stats = bench.table(variants)
    memory_based = [m for m in methods if m != "joint"]
    best = max(memory_based, key=lambda m: stats[m]["avg_incremental_accuracy"])
    civc, b = stats["civc"], stats[best]
    margin = civc["avg_incremental_accuracy"] - b["avg_incremental_accuracy"]
    lines = [
        f"# {name}", "", f"`{command}`", "", table, "",
        f"- best baseline (Joint, the upper bound, aside): {best} {b['avg_incremental_accuracy']:.2f}; civc "
        f"{civc['avg_incremental_accuracy']:.2f} ({margin:+.2f} points; ≥ +3: "
        f"{'yes' if margin >= 3 else 'no'}; no worse: {'yes' if margin >= 0 else 'no'}); forgetting civc "
        f"{civc['forgetting']:.2f} vs {best} {b['forgetting']:.2f} "
        f"({'lower' if civc['forgetting'] < b['forgetting'] else 'not lower'})",
    ]  # fmt: skip
    if quarter_budget and "icarl" in stats:
        icarl, q = stats["icarl"], stats[quarter.label]
        lines.append(
            f"- civc at {BUDGET // 4} frames {q['avg_incremental_accuracy']:.2f} vs iCaRL (NME) at {BUDGET} frames "
            f"{icarl['avg_incremental_accuracy']:.2f} (target ≥: "
            f"{'met' if q['avg_incremental_accuracy'] >= icarl['avg_incremental_accuracy'] else 'missed'})"
        )
    return write(name, lines)


def ablation(bench: Bench, name: str, command: str) -> str:
    variants = ABLATION + ([NO_FEATURE_DISTILLATION] if bench.args.extra else [])
    if bench.args.only:
        variants = [CIVC] + [v for v in variants[1:] if any(o in v.label for o in bench.args.only)]
    bench.run(variants)
    table, stats = bench.table(variants)
    full = stats["civc"]["avg_incremental_accuracy"]
    lines = [f"# {name}", "", f"`{command}`", "", table, ""]
    for v in variants[1:]:
        cost = full - stats[v.label]["avg_incremental_accuracy"]
        verdict = "earns its place" if cost > 0 else "does NOT earn its place on this data"
        lines.append(f"- {v.label}: removing it costs {cost:+.2f} points → the idea {verdict}")
    return write(name, lines)


def budget(bench: Bench, name: str, command: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def at(method: str, frames: int) -> Variant:
        if frames == BUDGET:
            return CIVC if method == "civc" else Variant(method, method)
        return Variant(f"{method} at {frames} frames", method, (f"memory.budget_frames={frames}",))

    variants = [at(m, f) for m in ("civc", "icarl") for f in BUDGETS]
    bench.run(variants)
    table, stats = bench.table(variants)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method, label in (("civc", "civc (cosine head)"), ("icarl", "iCaRL (NME)")):
        means = [stats[at(method, f).label]["avg_incremental_accuracy"] for f in BUDGETS]
        stds = [stats[at(method, f).label]["std"] for f in BUDGETS]
        ax.errorbar(BUDGETS, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    ax.set_xlabel("memory budget (stored frames)")
    ax.set_ylabel("average incremental accuracy (%)")
    orders = ", ".join(map(str, bench.args.orders))
    ax.set_title(f"Synthetic motion videos, class orders {orders}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    plt.close(fig)
    return write(name, [f"# {name}", "", f"`{command}`", "", table, "", f"![plot]({name}.png)"])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["comparison", "ablation", "budget", "appearance"])
    parser.add_argument("--config", default="configs/incremental_synthetic_motion.yaml")
    parser.add_argument("--orders", nargs="+", type=int, default=[0, 1, 2], help="class-order seeds")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one CPU thread each)")
    parser.add_argument(
        "--extra", action="store_true", help="ablation: also civc without feature distillation"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="TEXT", help="ablation: only the variants whose label contains TEXT"
    )
    parser.add_argument(
        "--methods", nargs="+", choices=BASELINES, default=BASELINES,
        help="comparison, appearance: the baselines to run and show (default: all six)",
    )  # fmt: skip
    parser.add_argument(
        "--base-epochs", type=int,
        help="train the base step this many epochs instead of the config's (a separate set of runs, results "
        "named *_base<N>): to test whether civc loses on the motion videos because the base step learns "
        "motion poorly",
    )  # fmt: skip
    parser.add_argument(
        "--no-quarter-budget",
        action="store_true",
        help="comparison: leave out civc at a quarter of the budget",
    )
    args = parser.parse_args(argv)
    if args.base_epochs is not None and args.part == "appearance":
        parser.error(
            "--base-epochs applies to the motion parts (comparison, ablation, budget), not appearance"
        )
    command = f"python benchmarks/civc_synthetic.py {args.part}" + (" --extra" if args.extra else "")
    if args.only:
        command += " --only " + " ".join(f'"{o}"' for o in args.only)
    if args.methods != BASELINES:
        command += " --methods " + " ".join(args.methods)
    if args.base_epochs is not None:
        command += f" --base-epochs {args.base_epochs}"
    if args.no_quarter_budget:
        command += " --no-quarter-budget"
    if args.orders != [0, 1, 2]:
        command += " --orders " + " ".join(map(str, args.orders))
    start = time.perf_counter()
    if args.part == "appearance":
        overrides = ["data.synthetic.preset=appearance"]
        bench = Bench(args, "incremental_appearance", overrides)
        text = comparison(bench, "civc_appearance", command, quarter_budget=False)
    else:
        name, overrides, suffix = "incremental_motion", [], ""
        if args.base_epochs is not None:
            suffix = f"_base{args.base_epochs}"
            name, overrides = name + suffix, [f"train.base.epochs={args.base_epochs}"]
        bench = Bench(args, name, overrides)
        name = f"civc_{args.part}{suffix}"
        if args.part == "comparison":
            text = comparison(bench, name, command, quarter_budget=not args.no_quarter_budget)
        else:
            text = {"ablation": ablation, "budget": budget}[args.part](bench, name, command)
    print(f"{command}: {(time.perf_counter() - start) / 60:.0f} min")
    return text


if __name__ == "__main__":
    main()
