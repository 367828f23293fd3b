"""The CIVC benchmark's paired statistics and verdicts (benchmarks/civc_bench.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from helpers import benchmark_module

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "incremental_civc_bench.yaml"


class Unset:
    """The command line's options a test's arguments leave at their defaults."""

    machine = None


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("civc_bench") as module:
        yield module


def test_paired_interval_by_hand(bench) -> None:
    s = bench.paired([1.0, 2.0, 3.0])  # mean 2, std 1, t(0.975, 2) = 4.303
    assert s["mean"] == 2.0 and s["std"] == 1.0
    assert s["ci95"] == pytest.approx([2 - 4.303 / 3**0.5, 2 + 4.303 / 3**0.5])
    assert bench.paired([0.5, 1.5, 0.5, 1.5, 1.0])["ci95"][0] > 0  # five orders: t(0.975, 4) = 2.776
    assert bench.verdict([0.1, 2.0]) == "better"
    assert bench.verdict([-2.0, -0.1]) == "worse"
    assert bench.verdict([-0.1, 2.0]) == "not separated"


def test_summary_merges_by_preset_method_baseline_held_out_and_orders(bench, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    one = {"preset": "demo", "method": "civc", "baseline": "lucir", "orders": [0, 1], "differences": [1, 2],
           "mean": 1.5, "ci95": [-4.9, 7.9], "held_out": True}  # fmt: skip
    bench.Bench.merge_summary([one])
    bench.Bench.merge_summary([{**one, "mean": 9.0}])  # the same comparison again: replaced
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    assert [(c["held_out"], c["mean"]) for c in summary] == [(True, 9.0)]
    # the same comparison on other orders is another entry, not a replacement
    bench.Bench.merge_summary([{**one, "orders": [5, 6], "mean": 3.0}])
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    assert [(c["orders"], c["mean"]) for c in summary] == [([0, 1], 9.0), ([5, 6], 3.0)]


def test_held_out_means_the_orders_chose_nothing(bench, tmp_path, monkeypatch) -> None:
    """`held_out` is true only for orders that took part in no choice of civc's defaults, and every merge writes
    it anew for the entries already in the summary."""
    assert bench.chose_nothing("motion", "xeon", [10, 11, 12, 13, 14])
    assert bench.chose_nothing("demo", None, list(range(10))) and bench.chose_nothing("demo", "xeon", [0, 1])
    assert not bench.chose_nothing("motion", "xeon", [0, 1, 2, 3, 4, 10, 11])  # 0-4 gated a default there
    assert not bench.chose_nothing("appearance", "xeon", [0, 1, 2, 3, 4])
    assert not bench.chose_nothing("motion", None, [10, 11, 12, 13, 14])  # the archive's fifteen gated one
    assert bench.chose_nothing("appearance", "xeon", [10, 11, 12, 13, 14])
    assert not bench.chose_nothing("demo", None, [100, 101])  # development orders
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    stale = {"preset": "motion", "method": "civc", "baseline": "lucir", "orders": [0, 1], "differences": [1, 2],
             "mean": 1.5, "ci95": [-4.9, 7.9], "held_out": True}  # fmt: skip
    (tmp_path / "civc_summary.json").write_text(json.dumps([stale]))
    bench.Bench.merge_summary([{**stale, "machine": "xeon", "orders": [10, 11], "held_out": True}])
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    assert [(c.get("machine"), c["orders"], c["held_out"]) for c in summary] == [
        (None, [0, 1], False),
        ("xeon", [10, 11], True),
    ]


@pytest.mark.parametrize(
    ("orders", "dev", "suffix"),
    [(None, False, ""), (None, True, ""), ([0, 1, 2, 3, 4], False, ""), ([5, 6, 7, 8, 9], False, "_orders5-9"),
     ([0, 2], False, "_orders0_2"), ([7], False, "_orders7"), ([100, 101], True, "")],
)  # fmt: skip
def test_tables_on_other_orders_than_the_default_get_a_file_of_their_own(bench, orders, dev, suffix) -> None:
    args = {"orders": orders, "dev": dev, "preset": "motion", "entries": None, "all": False, "budget": False,
            "base_epochs": None}  # fmt: skip
    assert bench.Bench(type("Args", (Unset,), args)()).orders_suffix() == suffix


def test_orders_that_chose_nothing_are_said_to_have_chosen_nothing(bench) -> None:
    args = {
        "dev": False,
        "preset": "motion",
        "entries": None,
        "all": False,
        "budget": False,
        "base_epochs": None,
    }

    def note(orders: list[int] | None, reported: bool = True) -> str:
        return bench.Bench(type("Args", (Unset,), {**args, "orders": orders})()).order_note(reported)

    assert note([15, 16, 17]) == "held out: they chose nothing"
    assert note(None) == note([5, 6, 7, 8, 9]) == note([10, 11]) == bench.CHOSE_NOTE  # the archive's fifteen
    assert note([100, 101], reported=False) == "development orders"


def test_every_entry_builds_and_shares_a_base_model_by_head(bench) -> None:
    b = bench.Bench(
        type(
            "Args",
            (Unset,),
            {
                "orders": None,
                "dev": False,
                "preset": "motion",
                "entries": None,
                "all": True,
                "budget": False,
                "base_epochs": None,
            },
        )()
    )
    assert b.orders == bench.HELD_OUT and set(b.orders).isdisjoint(bench.DEV)
    assert bench.are_reported([0, 1, 2, 3, 4, 10, 99])
    assert not bench.are_reported([5, 102])  # 102 is a development order
    owners = {e.label: b.owner(e) for e in b.entries}
    assert owners["lucir"] is None and owners["icarl"] is None
    assert owners["civc"] == owners["civc (full-size frames) + TC"] == owners["podnet"] == "lucir"
    assert owners["icarl + TC"] == "icarl" and owners["tcd"] is None
    assert owners["tcd, half budget"] == owners["tcd, twice the budget"] == "tcd"
    linear = {e.label for e in b.entries if e.head() == "linear"}
    assert {"icarl", "icarl + TC", "joint (upper bound)"} <= linear and "lucir" not in linear
    # every head's base step is the config's, and no entry changes it
    from distillkit.config import load_config
    from distillkit.incremental.config import IncrementalConfig

    assert load_config(CONFIG, IncrementalConfig, []).train.base.epochs == bench.BASE_EPOCHS == 60
    assert not b.probe and not any(o.startswith("train.base.") for e in b.entries for o in b.overrides(e))


def test_the_report_names_a_base_model_below_the_bar(bench, tmp_path) -> None:
    args = {"orders": [0, 1], "dev": False, "preset": "motion", "all": False, "jobs": 1, "base_epochs": None, "budget": False,
            "entries": ["lucir", "icarl", "civc"]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    b.root = tmp_path
    bases = {"lucir": [97.5, 99.0], "icarl": [96.0, 65.7]}
    for label, values in bases.items():
        for order, base in zip(b.orders, values, strict=True):
            run = b.run_dir(label, order)
            run.mkdir(parents=True)
            # iCaRL's own classifier (NME) on top, the CNN beside it: the base line reads the CNN
            figures = {"accuracy_per_step": [base, 50.0]}
            results = {"classifier": "cnn", **figures} if label == "lucir" else {
                "classifier": "nme", "accuracy_per_step": [0.0, 0.0], "cnn": figures}  # fmt: skip
            (run / "results.json").write_text(json.dumps(results))
    (line,) = b.base_lines()  # civc starts from lucir's base model: not listed
    assert "lucir 97.5 / 99.0; icarl 96.0 / 65.7" in line and line.endswith(
        "below 90 %: icarl order 1 (65.7)."
    )
    (b.run_dir("icarl", 1) / "results.json").write_text(
        json.dumps({"classifier": "nme", "accuracy_per_step": [0.0], "cnn": {"accuracy_per_step": [97.0]}})
    )
    assert b.base_lines()[0].endswith("all at least 90 %.")


def test_report_pairs_civc_with_the_baselines_and_civc_options_with_the_civc_they_vary(
    bench, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")  # not the repository's archived runs
    full, keys = "civc, full-size frames", "civc (full-size frames) + key-frames"
    args = {"orders": [0, 1, 2], "dev": False, "preset": "motion", "all": False, "jobs": 2, "base_epochs": None, "budget": False,
            "entries": ["lucir", "civc", "civc + new clips small", full, keys]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    b.root = tmp_path / "runs"  # no run folders: the report reads only the figures below
    accs = {"lucir": [80.0, 82.0, 84.0], "civc": [70.0, 71.0, 75.0], "civc + new clips small": [69.0, 71.0, 75.0],
            full: [60.0, 61.0, 62.0], keys: [61.0, 63.0, 65.0]}  # fmt: skip
    monkeypatch.setattr(
        b,
        "own",
        lambda label: [
            {"avg_incremental_accuracy": a, "forgetting": 1.0, "old_accuracy": [None, a - 5],
             "new_accuracy": [a, a + 10 * i]}
            for i, a in enumerate(accs[label])
        ],
    )  # fmt: skip

    # every run records 4:4:4 frames but the key-frame variant's, which predate the setting (4:2:0)
    # and a 60-epoch base step, but civc with full-size frames on order 0 (30)
    def results(label: str, order: int) -> dict:
        base = {"base": {"epochs": 30.0 if (label, order) == (full, 0) else 60.0}}  # as results.json has them
        config = {"config": {"memory": {"jpeg_subsampling": "4:4:4"}, "train": base}}
        return {"seconds_per_step": [900.0, 90.0 * order], **(config if label != keys else {})}

    monkeypatch.setattr(b, "results", results)
    text = b.report(0, 0.0)
    # last step: old classes a - 5, new a + 10 * order, each averaged over the orders
    assert "| lucir | 82.00 ± 2.00 | 80.0 / 82.0 / 84.0 | 1.00 | 77.0 / 92.0 |" in text
    # 5 entries × 3 orders, each 900 s + 90 s × order: 15 × 900 + 5 × 270 = 14 850 s
    assert text.rstrip().endswith("the 15 runs' steps took 4.1 h of one CPU thread in all when they ran.")
    assert "| civc | lucir | -10.0 / -11.0 / -9.0 | -10.00 ± 1.00 |" in text
    assert f"| {keys} | {full} | +1.0 / +2.0 / +3.0 | +2.00 ± 1.00 |" in text
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    pairs = {(c["method"], c["baseline"]): c["differences"] for c in summary}
    # civc (and civc with full-size frames) against every baseline; an option against the civc it varies
    assert pairs == {
        ("civc", "lucir"): [-10.0, -11.0, -9.0],
        (full, "lucir"): [-20.0, -21.0, -22.0],
        ("civc + new clips small", "civc"): [-1.0, 0.0, 0.0],
        (full, "civc"): [-10.0, -10.0, -13.0],
        (keys, full): [1.0, 2.0, 3.0],
    }
    assert not any(c["held_out"] for c in summary)  # motion orders 0-2 took part in choosing civc's defaults
    sampling = {(c["method"], c["baseline"]): c["jpeg_subsampling"] for c in summary}
    assert sampling[("civc", "lucir")] == "4:4:4" and sampling[(keys, full)] == "mixed"
    assert b.subsampling(keys) == "4:2:0"
    epochs = {(c["method"], c["baseline"]): c["base_epochs"] for c in summary}
    assert epochs[("civc", "lucir")] == {"civc": 60, "lucir": 60}
    assert all(type(v) is int for v in epochs[("civc", "lucir")].values())
    assert epochs[(keys, full)] == {keys: "unknown", full: "mixed"}


def budget_bench(bench, tmp_path, monkeypatch, preset: str, **machine: str):
    """A `--budget` bench on orders 0-2 writing its table and plot under `tmp_path`."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")
    args = {"orders": [0, 1, 2], "dev": False, "preset": preset, "all": False, "jobs": 2, "budget": True,
            "entries": None, "base_epochs": None, **machine}  # fmt: skip
    return bench.Bench(type("Args", (Unset,), args)())


def test_budget_report_tables_each_method_per_budget_and_pairs_civc_with_each_baseline(
    bench, tmp_path, monkeypatch
) -> None:
    b = budget_bench(bench, tmp_path, monkeypatch, "appearance")
    now = bench.AT_LR2
    assert [e.label for e in b.entries] == [
        f"{now}, half budget", now, f"{now}, twice the budget",
        "civc, half budget", "civc", "civc, twice the budget", "icarl, half budget", "icarl",
        "icarl, twice the budget", "tcd, half budget", "tcd", "tcd, twice the budget",
    ]  # fmt: skip
    budgets = {e.label: [o for o in e.overrides if o.startswith("memory.")] for e in b.entries}
    assert budgets["icarl, twice the budget"] == ["memory.budget_frames=2880"] and budgets["tcd"] == []
    # civc 70 + budget/720 per order; icarl 1 point below on orders 0 and 1 and 4 below on order 2; tcd level
    base = {"civc": 70.0, "civc, earlier defaults": 69.5, "icarl": 69.0, "tcd": 70.0}
    accs = {label: [base[m] + b_ / 720 - (3.0 * (m == "icarl") * (o == 2)) for o in range(3)]
            for m, by_budget in bench.BUDGET_ENTRIES.items() for b_, label in by_budget.items()}  # fmt: skip
    monkeypatch.setattr(
        b, "own", lambda label: [{"avg_incremental_accuracy": a, "forgetting": 0.0} for a in accs[label]]
    )
    monkeypatch.setattr(b, "results", lambda label, order: {"seconds_per_step": [60.0, 60.0]})
    text = b.budget_report(0, 0.0)
    assert text.rstrip().endswith("the 36 runs' steps took 1.2 h of one CPU thread in all when they ran.")
    assert (
        "| icarl | 69.00 ± 1.73 [64.7, 73.3] | 70.00 ± 1.73 [65.7, 74.3] | 72.00 ± 1.73 [67.7, 76.3] |"
        in text
    )
    assert (
        "| civc | 1440 | icarl | +1.0 / +1.0 / +4.0 | +2.00 ± 1.73 | [-2.30, +6.30] | not separated |" in text
    )
    assert "| civc | 2880 | tcd | +0.0 / +0.0 / +0.0 |" in text
    assert "| civc | 720 | civc, earlier defaults | +0.5 / +0.5 / +0.5 | +0.50 ± 0.00 |" in text
    assert "| civc, earlier defaults | 720 | tcd | -0.5 / -0.5 / -0.5 |" in text
    assert (tmp_path / "civc_budget_appearance.png").stat().st_size > 0
    assert (tmp_path / "civc_budget_appearance.md").read_text() == text
    assert not (tmp_path / "civc_summary.json").exists()  # the plot chooses nothing and claims nothing


def test_budget_report_on_another_machine_plots_civc_at_its_defaults_against_icarl_and_tcd(
    bench, tmp_path, monkeypatch
) -> None:
    b = budget_bench(bench, tmp_path, monkeypatch, "motion", machine="xeon")
    now = bench.DEFAULTS
    assert [e.label for e in b.entries] == [
        f"{now}, half budget", now, f"{now}, twice the budget", "icarl, half budget", "icarl",
        "icarl, twice the budget", "tcd, half budget", "tcd", "tcd, twice the budget",
    ]  # fmt: skip
    overrides = {e.label: e.overrides for e in b.entries}
    assert overrides[f"{now}, twice the budget"] == (*overrides[now], "memory.budget_frames=2880")
    # civc 80 on every order and budget; icarl 75, 76, 77 by order; tcd 80 - budget/720
    accs = {label: [80.0 - (m == "icarl") * (5 - o) - (m == "tcd") * b_ / 720 for o in range(3)]
            for m, by_budget in bench.MACHINE_BUDGET_ENTRIES.items() for b_, label in by_budget.items()}  # fmt: skip
    monkeypatch.setattr(
        b, "own", lambda label: [{"avg_incremental_accuracy": a, "forgetting": 0.0} for a in accs[label]]
    )
    monkeypatch.setattr(b, "results", lambda label, order: {"seconds_per_step": [60.0, 60.0]})
    text = b.budget_report(0, 0.0)
    rows = [line for line in text.splitlines() if line.startswith("| civc at its defaults | ")]
    assert rows[0] == "| civc at its defaults | " + " | ".join(["80.00 ± 0.00 [80.0, 80.0]"] * 3) + " |"
    assert [row.split(" | ")[1:3] for row in rows[1:]] == [
        ["720", "icarl"], ["1440", "icarl"], ["2880", "icarl"], ["720", "tcd"], ["1440", "tcd"], ["2880", "tcd"],
    ]  # fmt: skip
    assert (
        "| civc at its defaults | 1440 | icarl | +5.0 / +4.0 / +3.0 | +4.00 ± 1.00 | [+1.52, +6.48] | better |"
        in text
    )
    assert "| civc at its defaults | 2880 | tcd | +4.0 / +4.0 / +4.0 | +4.00 ± 0.00 |" in text
    assert (tmp_path / "civc_budget_motion_xeon.png").stat().st_size > 0  # beside the archive's plot


def test_finished_runs_are_archived_and_not_run_again_unless_their_base_model_is_needed(
    bench, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")
    common = sys.modules["incremental_synthetic"]
    calls: list[tuple[str, int]] = []

    def run_one(config, out, method, order, overrides):
        calls.append((out.parent.name, order))
        out.mkdir(parents=True)
        options = common.built_method(method, overrides).options.model_dump(mode="json")
        results = {
            "method_options": options,
            "order": order,
            "config": {"memory": memory_settings(overrides)},
        }
        (out / "results.json").write_text(json.dumps(results))
        (out / "finished").touch()
        return f"{method} order {order}: 1 s", 1.0

    monkeypatch.setattr(common, "run_one", run_one)
    args = {"orders": [0, 1], "dev": False, "preset": "mixed", "all": False, "jobs": 1, "base_epochs": None, "budget": False,
            "entries": ["civc"]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    b.root = tmp_path / "runs"
    assert b.run()[0] == 0 and calls == [("lucir", 0), ("lucir", 1), ("civc", 0), ("civc", 1)]
    assert json.loads((tmp_path / "archive/mixed/civc/order_1.json").read_text())["order"] == 1
    shutil.rmtree(tmp_path / "runs")  # a new machine: the run folders are gone, the archive is in git
    calls.clear()
    assert b.run()[0] == 2 and calls == []  # civc's two runs; lucir's, outside the table, are not counted
    assert b.results("civc", 1)["order"] == 1
    (
        tmp_path / "archive/mixed/civc/order_1.json"
    ).unlink()  # civc order 1 to run again: lucir's base model too
    assert b.run()[0] == 1 and calls == [("lucir", 1), ("civc", 1)]
    stale = tmp_path / "archive/mixed/civc/order_0.json"
    stale.write_text(json.dumps({"method_options": {}}))
    with pytest.raises(SystemExit, match="other settings"):
        b.run()


def memory_settings(overrides: list[str]) -> dict:
    """The memory section the benchmark's config resolves to with `overrides`."""
    from distillkit.config import load_config
    from distillkit.incremental.config import IncrementalConfig

    chosen = [o for o in overrides if o.startswith("memory.")]
    return load_config(CONFIG, IncrementalConfig, chosen).memory.model_dump(mode="json")


def test_a_finished_run_is_reused_only_with_the_settings_it_ran_with(bench, tmp_path) -> None:
    common = sys.modules["incremental_synthetic"]
    out = tmp_path / "civc" / "order_0"
    out.mkdir(parents=True)
    (out / "finished").touch()
    overrides = ["method.options.key_frames=4", "memory.budget_frames=720"]
    options = common.built_method("civc", overrides).options.model_dump(mode="json")
    assert options["key_frames"] == 4 and options["cbf_epochs"] == 2.0  # the entry's override and a default
    memory = memory_settings(overrides)
    assert memory["budget_frames"] == 720 and memory["jpeg_subsampling"] == "4:4:4"
    (out / "results.json").write_text(json.dumps({"method_options": options, "config": {"memory": memory}}))
    assert common.run_one(CONFIG, out, "civc", 0, overrides)[0].endswith("already done")
    (out / "results.json").write_text(
        json.dumps({"method_options": {**options, "cbf_epochs": 0.0}, "config": {"memory": memory}})
    )
    with pytest.raises(SystemExit, match=r"differs at: cbf_epochs\).*move the folder away"):
        common.run_one(CONFIG, out, "civc", 0, overrides)
    older = {**memory, "jpeg_subsampling": "4:2:0"}  # made before a memory default changed
    (out / "results.json").write_text(json.dumps({"method_options": options, "config": {"memory": older}}))
    with pytest.raises(SystemExit, match=r"differs at: memory.jpeg_subsampling\)"):
        common.run_one(CONFIG, out, "civc", 0, overrides)
    train = {"base": {"epochs": 60.0, "steps": None}, "step": {"epochs": 4.0, "steps": None}}  # the config's
    (out / "results.json").write_text(
        json.dumps({"method_options": options, "config": {"memory": memory, "train": train}})
    )
    assert common.run_one(CONFIG, out, "civc", 0, overrides)[0].endswith("already done")
    with pytest.raises(SystemExit, match=r"differs at: train.base.epochs\)"):  # a shorter base step asked now
        common.run_one(CONFIG, out, "civc", 0, [*overrides, "train.base.epochs=30"])
    faster = [
        *overrides,
        "train.step_optim.name=adamw",
        "train.step_optim.lr=0.004",
    ]  # none recorded: none used
    with pytest.raises(SystemExit, match=r"differs at: train.step_optim\)"):
        common.run_one(CONFIG, out, "civc", 0, faster)
    (out / "results.json").write_text(json.dumps({"method_options": options, "config": {"memory": memory, "train": {
        **train, "optim": {"name": "adamw", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0001,
                           "schedule": "cosine", "warmup_steps": 0}}}}))  # fmt: skip
    assert common.run_one(CONFIG, out, "civc", 0, overrides)[0].endswith("already done")
    with pytest.raises(SystemExit, match=r"differs at: train.optim\)"):
        common.run_one(CONFIG, out, "civc", 0, [*overrides, "train.optim.lr=0.01"])
    (out / "results.json").write_text(json.dumps({}))  # a run from before the options were recorded
    assert common.run_one(CONFIG, out, "civc", 0, overrides)[0].endswith("already done")


def test_a_base_step_probe_runs_in_its_own_folders_and_the_configs_length_is_the_table(
    bench, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")
    common = sys.modules["incremental_synthetic"]
    calls: list[tuple[str, str, list[str]]] = []

    def run_one(config, out, method, order, overrides):
        calls.append((out.parent.parent.name, out.parent.name, overrides))
        out.mkdir(parents=True)
        options = common.built_method(method, overrides).options.model_dump(mode="json")
        results = {"method_options": options, "config": {"memory": memory_settings(overrides)},
                   "classifier": "cnn", "avg_incremental_accuracy": 80.0 + order + 2 * (method == "civc"),
                   "forgetting": 1.0, "old_accuracy": [None, 70.0], "new_accuracy": [90.0, 80.0],
                   "accuracy_per_step": [95.0, 80.0], "seconds_per_step": [60.0, 60.0]}  # fmt: skip
        (out / "results.json").write_text(json.dumps(results))
        (out / "finished").touch()
        return f"{method} order {order}: 1 s", 1.0

    monkeypatch.setattr(common, "run_one", run_one)
    icarl = tmp_path / "archive" / "motion" / "icarl" / "order_3.json"  # the table's run: not the probe's
    icarl.parent.mkdir(parents=True)
    icarl.write_text("{}")
    args = {"orders": [3, 4], "dev": False, "preset": "motion", "all": False, "jobs": 1, "budget": False,
            "entries": ["lucir", "icarl", "civc"], "base_epochs": 30}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    b.root = tmp_path / "runs"
    reused, _ = b.run()
    assert reused == 0 and [(f, e) for f, e, _ in calls] == [
        ("motion_base30", "lucir"), ("motion_base30", "lucir"), ("motion_base30", "icarl"),
        ("motion_base30", "icarl"), ("motion_base30", "civc"), ("motion_base30", "civc")]  # fmt: skip
    assert all("train.base.epochs=30" in o for _, _, o in calls)
    civc = [o for _, label, o in calls if label == "civc"][0]
    assert f"train.base_model={tmp_path / 'runs' / 'motion_base30' / 'lucir' / 'order_3'}" in civc
    assert (tmp_path / "archive" / "motion_base30" / "civc" / "order_4.json").is_file()
    text = b.report(reused, 0.0)
    assert "every head's base step 30 epochs" in text and "| civc | icarl | +2.0 / +2.0 |" in text
    assert (tmp_path / "civc_bench_motion_base30_orders3-4.md").read_text() == text  # not the default orders
    assert not (tmp_path / "civc_summary.json").exists()  # a probe is not the benchmark's verdict
    # the config's own length is no probe: the table's folders, overrides and summary
    table = bench.Bench(type("Args", (Unset,), {**args, "base_epochs": bench.BASE_EPOCHS})())
    assert not table.probe and table.folder == "motion" and table.archive_path("icarl", 3) == icarl
    assert table.overrides(next(e for e in table.entries if e.label == "lucir")) == []


def test_every_archived_run_is_an_entry_with_the_settings_it_resolves_to_now(bench) -> None:
    """A changed default (or a relabelled entry) must come with the archive moved or relabelled: otherwise the
    tables would mix runs of two settings under one label, or `civc_bench.py` would stop at the guard."""
    slugs = {bench.slug(e.label): e for e in bench.ENTRIES}
    checked = 0
    for folder in sorted(p for p in bench.ARCHIVE.iterdir() if p.is_dir()):
        preset = next(x for x in bench.PRESETS if folder.name == x or folder.name.startswith(f"{x}_"))
        machine = folder.name.removeprefix(preset).removeprefix("_") or None  # another machine's runs
        args = {"orders": None, "dev": False, "preset": preset, "all": False, "jobs": 1, "base_epochs": None,
                "budget": False, "entries": ["lucir"], "machine": machine}  # fmt: skip
        b = bench.Bench(type("Args", (Unset,), args)())
        assert b.folder == folder.name
        for run in sorted(folder.glob("*/order_*.json")):
            entry = slugs.get(run.parent.name)
            assert entry is not None, f"{run}: no entry has this folder's label"
            order = int(run.stem.removeprefix("order_"))
            assert b.archive_path(entry.label, order) == run
            assert b.archived(entry, order)  # SystemExit, naming the settings, where they differ
            checked += 1
    assert checked > 0


def test_a_run_from_another_base_model_than_its_owners_stops_the_table(bench, tmp_path, monkeypatch) -> None:
    args = {"orders": [0, 1], "dev": False, "preset": "motion", "all": False, "jobs": 1, "base_epochs": None,
            "budget": False, "entries": ["lucir", "civc", "lucir + CBF", "icarl + TC"]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    base = {("lucir", 0): 99.0, ("lucir", 1): 100.0, ("civc", 0): 99.0, ("civc", 1): 99.33,
            ("lucir + CBF", 0): 99.0, ("lucir + CBF", 1): 100.0, ("icarl", 0): 98.0, ("icarl", 1): 97.0}  # fmt: skip

    def results(label: str, order: int) -> dict:
        if label == "icarl + TC":  # no figures recorded: not checked
            return {"seconds_per_step": [1.0]}
        if label == "icarl":  # the NME on top, the CNN beside it
            return {
                "classifier": "nme",
                "accuracy_per_step": [0.0],
                "cnn": {"accuracy_per_step": [base[label, order]]},
            }
        return {"classifier": "cnn", "accuracy_per_step": [base[label, order], 50.0]}

    monkeypatch.setattr(b, "results", results)
    assert b.base_mismatches() == ["civc order 1 (base step 99.33 %, lucir's 100.00 %)"]
    with pytest.raises(SystemExit, match=r"another base model.*civc order 1"):
        b.check_bases()
    base["civc", 1] = 100.0
    assert b.base_mismatches() == []


def test_a_run_from_before_an_option_existed_is_reused_only_at_its_default() -> None:
    """An archived LUCIR run recorded its options before `fix_old_weights` existed: it counts as run at that
    option's default (what LUCIR did then), and not as a run with the option switched on."""
    from distillkit.incremental.methods import build_method

    with benchmark_module("incremental_synthetic") as common:
        path = (
            CONFIG.parents[1] / "benchmarks" / "results" / "civc_runs" / "motion" / "lucir" / "order_0.json"
        )
        results = json.loads(path.read_text())
        assert "fix_old_weights" not in results["method_options"]
        assert build_method("lucir", {}).options.fix_old_weights is False
        assert common.changed_settings(results, CONFIG, "lucir", []) == []
        on = ["method.options.fix_old_weights=true"]
        assert common.changed_settings(results, CONFIG, "lucir", on) == ["fix_old_weights"]
        results["method_options"]["margin"] = 0.25  # a recorded option that differs still counts
        assert common.changed_settings(results, CONFIG, "lucir", []) == ["margin"]


def test_a_baseline_that_varies_another_is_paired_with_it_and_civc_with_both(
    bench, tmp_path, monkeypatch
) -> None:
    """A baseline with an option varied (`ablates` names another baseline) is compared with that baseline; civc
    is compared with both; a plain baseline is never taken for a variant of civc."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")
    cbf, faster = "lucir + CBF", "lucir + CBF, step lr 0.004"
    args = {"orders": [0, 1, 2], "dev": False, "preset": "motion", "all": False, "jobs": 2, "base_epochs": None,
            "budget": False, "entries": [cbf, faster, "civc"]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    accs = {cbf: [90.0, 91.0, 92.0], faster: [91.0, 93.0, 92.0], "civc": [92.0, 92.0, 95.0]}
    monkeypatch.setattr(
        b,
        "own",
        lambda label: [
            {
                "avg_incremental_accuracy": a,
                "forgetting": 1.0,
                "old_accuracy": [None, a],
                "new_accuracy": [a, a],
            }
            for a in accs[label]
        ],
    )
    monkeypatch.setattr(b, "results", lambda label, order: {"seconds_per_step": [1.0]})
    text = b.report(0, 0.0)
    assert f"| {faster} | {cbf} | +1.0 / +2.0 / +0.0 | +1.00 ± 1.00 |" in text
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    assert {(c["method"], c["baseline"]): c["differences"] for c in summary} == {
        ("civc", cbf): [2.0, 1.0, 3.0],
        ("civc", faster): [1.0, -1.0, 3.0],
        (faster, cbf): [1.0, 2.0, 0.0],
    }


def test_the_demo_preset_is_the_demos_stream(bench) -> None:
    from distillkit.cli import preset
    from distillkit.config import load_config
    from distillkit.incremental.config import IncrementalConfig

    demo = load_config(preset("demo_incremental.yaml"), IncrementalConfig, ["method.name=civc"])
    bench_demo = load_config(CONFIG, IncrementalConfig, [*bench.PRESETS["demo"], "method.name=civc"])
    assert bench_demo.model_dump() == demo.model_dump()


def test_every_current_table_is_regenerated_by_the_arguments_it_was_written_with(bench) -> None:
    written = {}
    for path in sorted(bench.RESULTS.glob("civc_b*.md")):
        line = path.read_text(encoding="utf-8").splitlines()[2]
        if line.startswith("`python benchmarks/civc_bench.py"):
            written[path.stem] = line
    assert set(bench.EVERY_TABLE) == set(written)  # the history tables (no command line) are not regenerated
    for name, argv in bench.EVERY_TABLE.items():
        command = bench.Bench(bench.arguments().parse_args(list(argv))).command()
        assert written[name] == f"`{command}`", name
    with pytest.raises(SystemExit):  # every table has its own arguments: no others beside it
        bench.main(["--every-table", "--preset", "mixed"])


def test_a_machines_runs_have_their_own_folders_tables_and_summary_entries(
    bench, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    args = bench.arguments().parse_args(["--machine", "xeon", "--orders", "100", "101", "--entries", "lucir"])
    b = bench.Bench(args)
    assert b.folder == "motion_xeon" and b.run_dir("lucir", 100).parts[-3:] == (
        "motion_xeon",
        "lucir",
        "order_100",
    )
    assert b.archive_path("lucir", 100) == bench.ARCHIVE / "motion_xeon" / "lucir" / "order_100.json"
    assert b.command() == 'python benchmarks/civc_bench.py --machine xeon --orders 100 101 --entries "lucir"'
    assert bench.Bench(bench.arguments().parse_args(["--orders", "100"])).folder == "motion"
    one = {"preset": "motion", "method": "civc", "baseline": "lucir", "orders": [0, 1], "differences": [1, 2],
           "mean": 1.5, "ci95": [-4.9, 7.9], "held_out": True}  # fmt: skip
    bench.Bench.merge_summary([one])
    bench.Bench.merge_summary([{**one, "machine": "xeon", "mean": 9.0}])  # another machine's: kept beside it
    summary = json.loads((tmp_path / "civc_summary.json").read_text())
    assert [(c.get("machine"), c["mean"]) for c in summary] == [(None, 1.5), ("xeon", 9.0)]


def test_a_base_model_that_ends_elsewhere_than_its_archived_run_stops_before_its_dependents(
    bench, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(bench, "ARCHIVE", tmp_path / "archive")
    common = bench.common
    calls: list[str] = []

    def run_one(config, out, method, order, overrides):
        calls.append(out.parent.name)
        out.mkdir(parents=True)
        options = common.built_method(method, overrides).options.model_dump(mode="json")
        results = {"method_options": options, "config": {"memory": memory_settings(overrides)},
                   "accuracy_matrix": [[99.0], [97.0, 90.0]]}  # fmt: skip
        (out / "results.json").write_text(json.dumps(results))
        (out / "finished").touch()
        return f"{method} order {order}: 1 s", 1.0

    monkeypatch.setattr(common, "run_one", run_one)
    args = {"orders": [0], "dev": False, "preset": "motion", "all": False, "jobs": 1, "base_epochs": None,
            "budget": False, "entries": ["civc"]}  # fmt: skip
    b = bench.Bench(type("Args", (Unset,), args)())
    b.root = tmp_path / "runs"
    archived = b.archive_path("lucir", 0)
    archived.parent.mkdir(parents=True)
    options = common.built_method("lucir", []).options.model_dump(mode="json")
    text = json.dumps({"method_options": options, "config": {"memory": memory_settings([])},
                       "accuracy_matrix": [[99.33], [97.0, 91.0]]})  # fmt: skip
    archived.write_text(text)
    with pytest.raises(SystemExit, match="lucir order 0: trained again here.*--machine NAME"):
        b.run()
    assert calls == ["lucir"] and archived.read_text() == text  # no civc run; the archive as it was
    # trained again to the digit: the civc run goes ahead from it
    shutil.rmtree(tmp_path / "runs")
    archived.write_text(text.replace("99.33", "99.0").replace("91.0", "90.0"))
    calls.clear()
    assert b.run()[0] == 0 and calls == ["lucir", "civc"]


def test_coverage_marks_the_baselines_each_table_holds(bench, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    tables = {
        "every": ("--machine", "xeon", "--orders", "10", "11", "--entries", *bench.COVERED),
        "two": ("--orders", "0", "1", "--entries", "lucir", "tcd, step lr 0.004"),
        "dev": ("--orders", "100", "101", "--entries", "icarl"),
        "plot": ("--budget",),  # a budget plot is not a comparison table: left out
    }
    monkeypatch.setattr(bench, "EVERY_TABLE", tables)
    text = bench.main(["--coverage"])
    assert text == (tmp_path / "civc_coverage.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    rows = [line.split(" | ") for line in table[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("| every", "Intel Xeon (AVX-512)", "chose nothing"),
        ("| two", "AMD EPYC (the archive)", "chose"),
        ("| dev", "AMD EPYC (the archive)", "development"),
    ]
    marks = {r[0][2:]: [m.strip(" |") for m in r[4:]] for r in rows}
    assert marks == {
        "every": ["x"] * 7,
        "two": ["x", "·", "·", "·", "x", "·", "·"],
        "dev": ["·", "·", "x", "·", "·", "·", "·"],
    }
    assert "2 of 3 tables lack at least one of them: two, dev." in text
    with pytest.raises(SystemExit):  # it reads each table's own arguments: no others beside it
        bench.main(["--coverage", "--preset", "mixed"])
