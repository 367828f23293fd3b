"""report.md of a class-incremental run: exact tables from a hand-made results dict, and the file of a tiny run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from helpers import tiny

from distillkit.errors import DistillkitError
from distillkit.report.incremental_report import incremental_report

RESULTS = {
    "method": "icarl",
    "classifier": "nme",
    "classes_per_step": [4, 2],
    "steps_done": 2,
    # the own classifier (NME) on top, the other (CNN) beside it under its name
    "accuracy_matrix": [[95.0], [70.0, 75.0]],
    "accuracy_per_step": [95.0, 71.66666666666667],
    "avg_incremental_accuracy": 83.33333333333334,
    "final_accuracy": 71.66666666666667,
    "forgetting": 25.0,
    "bwt": -25.0,
    "old_accuracy": [None, 70.0],
    "new_accuracy": [95.0, 75.0],
    "cnn": {
        "accuracy_matrix": [[90.0], [60.0, 80.0]],
        "accuracy_per_step": [90.0, 66.66666666666667],
        "avg_incremental_accuracy": 78.33333333333334,
        "final_accuracy": 66.66666666666667,
        "forgetting": 30.0,
        "bwt": -30.0,
        "old_accuracy": [None, 60.0],
        "new_accuracy": [90.0, 80.0],
    },
    "memory": {"frames": 48, "bytes": 37501, "videos": 12},
    "memory_per_step": [{"frames": 32, "bytes": 25000, "videos": 8}, {"frames": 48, "bytes": 37501, "videos": 12}],
    "seconds_per_step": [12.34, 5.67],
    "seed": 3,
    "config": {
        "data": {"name": "synthetic", "num_segments": 4, "root": None,
                 "synthetic": {"preset": "motion", "num_classes": 6, "train_per_class": 6, "test_per_class": 3,
                               "size": 16}},
        "model": {"arch": "resnet18", "width": 0.125},
        "scenario": {"preset": None, "base": 4, "increment": 2, "order_seed": 1993},
        "memory": {"budget_frames": 48, "per_class_frames": None, "selection": "herding"},
        "method": {"name": "icarl", "options": {"temperature": 2.0}},
    },
    "versions": {"torch": "2.5.0"},
    "device": {"type": "cpu", "name": "x86_64", "threads": 1},
}  # fmt: skip


def test_report_tables_of_a_hand_made_results_dict() -> None:
    lines = incremental_report(RESULTS, "2024-06-11 10:00").splitlines()
    assert lines[0] == "# Class-incremental run: icarl, 2024-06-11 10:00"
    expected = [
        # configuration
        "| data | synthetic (motion, 6 classes, 6 train / 3 test videos per class, 16 px), 4 segments per clip |",
        "| model | resnet18, width 0.125 |",
        "| scenario | 4 + 2 classes (class order seed 1993) |",
        "| memory budget | 48 frames, herding selection |",
        "| method | icarl (temperature=2.0) |",
        "| seed | 3 |",
        "| device | cpu (x86_64), torch 2.5.0 |",
        # accuracy per step
        "| step | classes seen | NME (%) | NME old (%) | NME new (%) | CNN (%) | CNN old (%) | CNN new (%) |",
        "| 0 | 4 | 95.00 | - | 95.00 | 90.00 | - | 90.00 |",
        "| 1 | 6 | 71.67 | 70.00 | 75.00 | 66.67 | 60.00 | 80.00 |",
        # accuracy matrices (the own classifier, NME, then CNN)
        "| after step | step 0 | step 1 |",
        "| 0 | 95.00 |  |",
        "| 1 | 70.00 | 75.00 |",
        "| 0 | 90.00 |  |",
        "| 1 | 60.00 | 80.00 |",
        # summary
        "| metric | NME | CNN |",
        "| average incremental accuracy (%) | 83.33 | 78.33 |",
        "| final accuracy (%) | 71.67 | 66.67 |",
        "| forgetting (points) | 25.00 | 30.00 |",
        "| BWT (points) | -25.00 | -30.00 |",
        # memory and time
        "| step | frames | bytes | videos | seconds |",
        "| 0 | 32 | 25000 | 8 | 12.3 |",
        "| 1 | 48 | 37501 | 12 | 5.7 |",
        # plots, relative to report.md
        "![Accuracy per step](accuracy_per_step.png)",
        "![Accuracy matrix](accuracy_matrix.png)",
    ]
    for line in expected:
        assert line in lines, line
    # the sections in this order
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == [
        "## Configuration", "## Accuracy per step", "## Accuracy matrix", "## Summary", "## Memory and time",
        "## Plots",
    ]  # fmt: skip


def test_report_without_nme_and_old_new_columns() -> None:
    results = copy.deepcopy(RESULTS)
    results.update(results.pop("cnn"), nme=None, classifier="cnn")
    del results["old_accuracy"], results["new_accuracy"]
    results["config"]["scenario"]["preset"] = "tcd_ucf101"
    text = incremental_report(results, "2024-06-11")
    assert "| step | classes seen | CNN (%) |\n|---|---|---|\n| 0 | 4 | 90.00 |\n| 1 | 6 | 66.67 |\n" in text
    assert "| metric | CNN |\n" in text and "NME" not in text
    assert "| scenario | preset `tcd_ucf101`: 4 + 2 classes |" in text


def test_report_names_a_missing_key() -> None:
    results = copy.deepcopy(RESULTS)
    del results["cnn"]["accuracy_per_step"]
    with pytest.raises(DistillkitError, match="results.json: missing key 'cnn.accuracy_per_step'"):
        incremental_report(results, "2024-06-11")


def test_a_file_of_the_older_layout_reads_the_same() -> None:
    """Before the own classifier went on top, an NME run held its CNN figures on top and the NME under `nme`."""
    older = copy.deepcopy(RESULTS)
    cnn = older.pop("cnn")
    older["nme"] = {key: older.pop(key) for key in cnn}
    older.update(cnn)
    assert incremental_report(older, "2024-06-11") == incremental_report(RESULTS, "2024-06-11")


def test_a_run_writes_its_report(tmp_path: Path) -> None:
    from distillkit.jobs.incremental import run_incremental

    cfg = tiny()
    cfg.scenario.num_steps = 1
    run_incremental(cfg, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# Class-incremental run: icarl, ")
    assert "| 1 | 4 |" in text  # the accuracy row of step 1 (4 classes seen)
    for plot in ("accuracy_per_step.png", "accuracy_matrix.png"):
        assert f"]({plot})" in text and (tmp_path / plot).is_file()


def test_report_names_a_list_of_the_wrong_length() -> None:
    results = copy.deepcopy(RESULTS)
    results["seconds_per_step"] = [1.0]
    with pytest.raises(
        DistillkitError, match="'seconds_per_step' must hold one entry per finished step \\(2\\)"
    ):
        incremental_report(results, "2024-06-11")
