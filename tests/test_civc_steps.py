"""What each entry learns and keeps step by step, read from the archived runs (benchmarks/civc_steps.py)."""

from __future__ import annotations

import pytest
from helpers import benchmark_module


@pytest.fixture(scope="module")
def steps():
    with benchmark_module("civc_steps") as module:
        yield module


def test_new_and_old_classes_by_hand(steps) -> None:
    results = {"method": "lucir", "classifier": "cnn", "accuracy_matrix": [[90.0], [80.0, 70.0], [60.0, 50.0, 40.0]],
               "old_accuracy": [None, 80.0, 55.0]}  # fmt: skip
    assert steps.step_figures(results) == (55.0, 67.5)  # (70 + 40) / 2, (80 + 55) / 2
    nme = {"method": "icarl", "classifier": "nme", "accuracy_matrix": [[90.0], [10.0, 30.0]],
           "old_accuracy": [None, 10.0], "cnn": {"accuracy_matrix": [[1.0], [2.0, 3.0]], "old_accuracy": [None, 2.0]}}  # fmt: skip
    assert steps.step_figures(nme) == (30.0, 10.0)  # the run's own classifier (iCaRL: nearest mean)


def test_the_table_in_the_repository_is_what_the_archive_gives(steps, tmp_path, monkeypatch) -> None:
    stored = steps.bench.RESULTS / "civc_steps_motion_orders0-9.md"
    monkeypatch.setattr(steps.bench, "RESULTS", tmp_path)
    entries = ["joint (upper bound)", "civc, frames at 0.6, new clips small", "lucir", "lucir + CBF"]
    text = steps.main(["--orders", *map(str, range(10)), "--entries", *entries])
    assert text == stored.read_text(encoding="utf-8")


def test_a_run_missing_from_the_archive_is_named(steps, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(steps.bench, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="order_99.json: not archived"):
        steps.main(["--orders", "0", "99", "--entries", "lucir"])
    assert not list(tmp_path.iterdir())  # nothing written
