"""What each entry of a CIVC benchmark table learns and keeps step by step, from the archived runs.

    python benchmarks/civc_steps.py --orders 0 1 2 3 4 5 6 7 8 9 --entries "joint (upper bound)" lucir "lucir + CBF"

For every incremental step (the base step aside), each entry's own classifier (`civc_bench`'s rule) on two sets of
test clips right after that step: the classes the step added ("new") and the classes of the steps before it
("old"); means over the steps of an order, then over the orders. It reads the runs `civc_bench.py` archived
(`benchmarks/results/civc_runs/`) and runs nothing; a run missing from the archive stops it, naming the run.
The table goes to `benchmarks/results/civc_steps_<preset>[_<machine>]_orders<first>-<last>.md`.
"""

from __future__ import annotations

import argparse
import statistics

import civc_bench as bench
import incremental_synthetic as common


def step_figures(results: dict) -> tuple[float, float]:
    """(new, old): means over the incremental steps of the accuracy on the step's own classes right after it and
    on the earlier steps' classes (`accuracy_matrix`'s diagonal and `old_accuracy`, by the run's own classifier)."""
    figures = common.own_classifier_results(results)
    matrix, old = figures["accuracy_matrix"], figures["old_accuracy"]
    steps = range(1, len(matrix))
    return statistics.fmean(matrix[t][t] for t in steps), statistics.fmean(old[t] for t in steps)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(bench.PRESETS), default="motion")
    parser.add_argument("--machine", metavar="NAME", help="a machine's set of runs (civc_bench's --machine)")
    parser.add_argument("--orders", nargs="+", type=int, required=True)
    parser.add_argument("--entries", nargs="+", metavar="LABEL", required=True)
    args = parser.parse_args(argv)
    table_args = ["--preset", args.preset, "--orders", *map(str, args.orders), "--entries", *args.entries]
    table = bench.Bench(
        bench.arguments().parse_args(table_args + (["--machine", args.machine] * bool(args.machine)))
    )
    for e in table.entries:
        for o in args.orders:
            if not table.archive_path(e.label, o).is_file():
                raise SystemExit(
                    f"{table.archive_path(e.label, o)}: not archived (run civc_bench.py for it first)"
                )
    name = f"civc_steps_{table.folder}_orders{min(args.orders)}-{max(args.orders)}"
    command = f"python benchmarks/civc_steps.py --preset {args.preset}"
    command += f" --machine {args.machine}" if args.machine else ""
    command += (
        " --orders "
        + " ".join(map(str, args.orders))
        + " --entries "
        + " ".join(f'"{x}"' for x in args.entries)
    )
    lines = [f"# {name}", "", f"`{command}`", "",
             f"{args.preset} preset, class orders {args.orders}, archived runs. Each entry by its own classifier, "
             "right after each incremental step: accuracy (%) on the classes that step added (new) and on the "
             "classes of the steps before it (old), mean over the steps, per order and over the orders.", "",
             "| Entry | New, mean | Old, mean | New per order | Old per order |", "|---|---|---|---|---|"]  # fmt: skip
    for e in table.entries:
        per_order = [step_figures(table.results(e.label, o)) for o in args.orders]
        new, old = ([f[i] for f in per_order] for i in (0, 1))
        lines.append(
            f"| {e.label} | {statistics.fmean(new):.2f} | {statistics.fmean(old):.2f} | "
            + " / ".join(f"{x:.1f}" for x in new)
            + " | "
            + " / ".join(f"{x:.1f}" for x in old)
            + " |"
        )
    text = "\n".join(lines) + "\n"
    (bench.RESULTS / f"{name}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
