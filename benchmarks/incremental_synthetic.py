"""Class-incremental methods side by side on the embedded synthetic videos, over several class orders.

Every (method, class order) pair is one `distillkit incremental` run (same config, backbone, epochs and frame
budget; only `method.name` and `scenario.order_seed` change), `--jobs` at a time, each on one CPU thread.
Methods with the same classifier head start from the same base model of their order (`train.base_model`): the
first method listed of each head (finetune: linear; lucir: cosine) trains it, so differences between methods come
from the incremental steps, not from the luck of the base step. Runs resume where they stopped, so the script can
be restarted. The table (mean ± std over orders) is printed and
written to `benchmarks/results/<name>.md`, with a check of the ordering the literature expects.

    python benchmarks/incremental_synthetic.py                       # motion preset, 6 methods × 3 orders
    python benchmarks/incremental_synthetic.py --name incremental_appearance \\
        --set data.synthetic.preset=appearance --set data.synthetic.num_classes=18
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from distillkit.config import load_config
from distillkit.incremental.compare import compare
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.methods import METHODS, Method, build_method
from distillkit.incremental.metrics import classifier_figures

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = [["joint"], ["icarl", "lucir", "podnet"], ["lwf"], ["finetune"]]
"""The ordering expected from the literature, best first, on average incremental accuracy."""


def built_method(method: str, overrides: Sequence[str]) -> Method:
    """`method` with the `method.options.<key>=<value>` overrides among `overrides`."""
    prefix = "method.options."
    options = {
        o[len(prefix) :].split("=")[0]: yaml.safe_load(o.split("=", 1)[1])
        for o in overrides
        if o.startswith(prefix)
    }
    return build_method(method, options)


def head_of(method: str, overrides: Sequence[str]) -> str:
    """The classifier head of `method` with the `method.options.<key>=<value>` overrides among `overrides`."""
    return built_method(method, overrides).head


def changed_settings(results: dict, config: Path, method: str, overrides: Sequence[str]) -> list[str]:
    """The method options, memory settings (`memory.<key>`), training lengths (`train.base.<key>`,
    `train.step.<key>`) and optimisers (`train.optim`, `train.step_optim`) a run's `results` were made with that
    differ from what `method` with `overrides` on `config` resolves to now (a changed default would otherwise pass
    unseen). Runs from before results.json recorded the options are taken as they are, and so is an option added
    after a run, which the run did not record, where the entry leaves it at its default (a new option's default
    keeps what the method did before)."""
    recorded = results.get("method_options")
    if recorded is None:
        return []
    built = built_method(method, overrides)
    wanted = built.options.model_dump(mode="json")
    defaults = type(built.options)().model_dump(mode="json")
    recorded = {**{k: v for k, v in wanted.items() if v == defaults.get(k)}, **recorded}
    changed = sorted(k for k in wanted.keys() | recorded.keys() if recorded.get(k) != wanted.get(k))
    ran = results.get("config", {})
    chosen = [
        o
        for o in overrides
        if o.startswith(("memory.", "train.base.", "train.step.", "train.optim.", "train.step_optim."))
    ]
    now = load_config(config, IncrementalConfig, chosen)
    for key, value in now.memory.model_dump(mode="json").items():
        if ran.get("memory", {}).get(key) != value:
            changed.append(f"memory.{key}")
    if "train" in ran:  # runs from before the config was recorded: their lengths are not known
        for part in ("base", "step"):
            for key, value in getattr(now.train, part).model_dump(mode="json").items():
                if ran["train"].get(part, {}).get(key) != value:
                    changed.append(f"train.{part}.{key}")
        optimisers = {"step_optim": None, **ran["train"]}  # a run from before `step_optim` existed had none
        for part in ("optim", "step_optim"):
            value = getattr(now.train, part)
            dumped = None if value is None else value.model_dump(mode="json")
            if part in optimisers and optimisers[part] != dumped:
                changed.append(f"train.{part}")
    return changed


def run_one(config: Path, out: Path, method: str, order: int, overrides: list[str]) -> tuple[str, float]:
    if (out / "finished").is_file():
        # a finished run is reused only if it ran with the settings the entry resolves to now
        changed = changed_settings(json.loads((out / "results.json").read_text()), config, method, overrides)
        if changed:
            raise SystemExit(
                f"{out} finished with other settings than its entry resolves to now (differs at: "
                f"{', '.join(changed)}); a default changed since: move the folder away to run it again"
            )
        return f"{method} order {order}: already done", 0.0
    cmd = [sys.executable, "-m", "distillkit.cli", "incremental", str(config), "--out", str(out), "--resume"]
    for o in [f"method.name={method}", f"scenario.order_seed={order}", "device=cpu", *overrides]:
        cmd += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DISTILLKIT_PROGRESS": "0"}
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / f"{out.name}.log"  # beside the run folder, which belongs to the run alone
    with open(log_path, "a") as log:
        code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {code}); see {log_path}")
    (out / "finished").touch()
    return f"{method} order {order}: {time.perf_counter() - start:.0f} s", time.perf_counter() - start


def own_classifier(run: Path) -> dict:
    """The metrics of a run's own classifier: NME for methods that classify by exemplar means (iCaRL), else CNN."""
    return own_classifier_results(json.loads((run / "results.json").read_text()))


def own_classifier_results(results: dict) -> dict:
    """`own_classifier` of a loaded results.json (runs from before `classifier` was recorded: by the method)."""
    kind = results.get("classifier") or ("nme" if METHODS[results["method"]].nme is True else "cnn")
    figures = classifier_figures({**results, "classifier": kind}, kind)
    if figures is None:
        raise SystemExit(f"{results.get('method')}: results without the figures of its classifier {kind!r}")
    return dict(figures)


def ordering_check(runs: dict[str, list[Path]]) -> list[str]:
    """Lines saying whether the expected ordering holds on average incremental accuracy and on forgetting, each
    method judged by its own classifier."""
    mean = statistics.fmean
    acc = {m: mean(own_classifier(r)["avg_incremental_accuracy"] for r in rs) for m, rs in runs.items()}
    fgt = {m: mean(own_classifier(r)["forgetting"] for r in rs) for m, rs in runs.items()}
    tiers = [[m for m in tier if m in acc] for tier in EXPECTED]
    tiers = [t for t in tiers if t]
    lines = []
    for metric, values, better in (("accuracy", acc, max), ("forgetting", fgt, min)):
        broken = []
        for upper, lower in zip(tiers, tiers[1:], strict=False):
            for a in upper:
                for b in lower:
                    if better(values[a], values[b]) != values[a] or values[a] == values[b]:
                        broken.append(f"{a} {values[a]:.2f} vs {b} {values[b]:.2f}")
        verdict = "holds" if not broken else "broken: " + "; ".join(broken)
        order = (
            "joint > icarl, lucir, podnet > lwf > finetune"
            if metric == "accuracy"
            else ("joint < icarl, lucir, podnet < lwf < finetune")
        )
        lines.append(f"- expected order on {metric} ({order}; iCaRL by its NME classifier): {verdict}")
    return lines


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "incremental_synthetic_motion.yaml")
    parser.add_argument(
        "--methods", nargs="+", default=["finetune", "lucir", "joint", "icarl", "podnet", "lwf"]
    )
    parser.add_argument("--orders", nargs="+", type=int, default=[0, 1, 2], help="class-order seeds")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one CPU thread each)")
    parser.add_argument("--name", default="incremental_motion", help="results name")
    parser.add_argument("--out", type=Path, help="run folders (default runs/bench/<name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "runs" / "bench" / args.name
    pairs = [(m, o) for o in args.orders for m in args.methods]
    # Methods with the same head start from the same base model: the first listed of each head trains it.
    owners = {}
    for m in args.methods:
        owners.setdefault(build_method(m, {}).head, m)
    start = time.perf_counter()
    reused = 0
    for phase in ("base owners", "the others"):
        todo = [(m, o) for m, o in pairs if (m in owners.values()) == (phase == "base owners")]
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = []
            for m, o in todo:
                extra = list(args.overrides)
                if m not in owners.values():
                    extra.append(f"train.base_model={out / owners[build_method(m, {}).head] / f'order_{o}'}")
                futures.append(pool.submit(run_one, args.config, out / m / f"order_{o}", m, o, extra))
            for future in futures:
                message = future.result()[0]
                reused += message.endswith("already done")
                print(message, flush=True)
    wall = time.perf_counter() - start
    rows, table = compare([out / m / f"order_{o}" for m, o in pairs])
    first = json.loads((out / pairs[0][0] / f"order_{pairs[0][1]}" / "results.json").read_text())
    seconds = {
        m: sum(
            sum(json.loads((out / m / f"order_{o}" / "results.json").read_text())["seconds_per_step"])
            for o in args.orders
        )
        / len(args.orders)
        for m in args.methods
    }
    cfg = first["config"]
    syn = cfg["data"]["synthetic"]
    lines = [
        f"# {args.name}",
        "",
        f"`python benchmarks/incremental_synthetic.py --name {args.name}"
        + "".join(f" --set {o}" for o in args.overrides)
        + "`",
        "",
        f"{syn['preset']} preset, {syn['num_classes']} classes × {syn['train_per_class']} training / "
        f"{syn['test_per_class']} test videos of {syn['frames']}×{syn['size']}×{syn['size']}; classes per step "
        f"{first['classes_per_step']}; TSM {cfg['model']['arch']} width {cfg['model']['width']}; base "
        f"{cfg['train']['base']}, steps {cfg['train']['step']}; memory {cfg['memory']['budget_frames']} frames "
        f"({cfg['memory']['selection']}); class orders {args.orders} (mean ± std over orders). "
        f"Accuracies in %; forgetting and BWT in points.",
        "",
        table,
        "",
        *ordering_check({m: [out / m / f"order_{o}" for o in args.orders] for m in args.methods}),
        "",
        "Mean seconds per run (1 thread, "
        + f"{args.jobs} runs at a time): "
        + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items())
        + f"; this invocation {wall / 60:.0f} min wall clock"
        + (f" ({reused} runs were already done and reused)." if reused else "."),
        "",
    ]
    text = "\n".join(lines)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
