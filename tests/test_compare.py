"""Comparison of class-incremental runs: mean ± std per method over results.json files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import make_run

from distillkit.errors import DistillkitError
from distillkit.incremental.compare import compare, write_comparison


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path, "a1", "civc", 80, 70, 10, -10, 100, nme=81, seed=0),
        make_run(tmp_path, "b1", "finetune", 60, 50, 20, -20, 0, seed=0),
        make_run(tmp_path, "a2", "civc", 82, 71, 12, -12, 100, nme=83, seed=1),
        make_run(tmp_path, "b2", "finetune", 64, 52, 20, -22, 0, seed=1),
        make_run(tmp_path, "a3", "civc", 84, 75, 14, -14, 130, nme=85, seed=2),
    ]


def test_rows_hold_mean_and_sample_std(runs: list[Path]) -> None:
    rows, table = compare(runs)
    assert [r["method"] for r in rows] == ["civc", "finetune"]  # first-appearance order
    civc, ft = rows
    assert civc["runs"] == 3 and civc["seeds"] == [0, 1, 2]
    assert civc["avg_incremental_accuracy"] == pytest.approx({"mean": 82.0, "std": 2.0})
    assert civc["final_accuracy"] == pytest.approx({"mean": 72.0, "std": math.sqrt(7)})  # ddof=1
    assert civc["forgetting"] == pytest.approx({"mean": 12.0, "std": 2.0})
    assert civc["bwt"] == pytest.approx({"mean": -12.0, "std": 2.0})
    assert civc["classifier"] == "cnn" and civc["other_classifier"] == "nme"
    assert civc["other_avg_incremental_accuracy"] == pytest.approx({"mean": 83.0, "std": 2.0})
    assert civc["memory_frames"] == pytest.approx(110.0)
    assert ft["runs"] == 2
    assert ft["avg_incremental_accuracy"] == pytest.approx({"mean": 62.0, "std": math.sqrt(8)})
    assert ft["final_accuracy"] == pytest.approx({"mean": 51.0, "std": math.sqrt(2)})
    assert ft["forgetting"] == pytest.approx({"mean": 20.0, "std": 0.0})
    assert ft["other_avg_incremental_accuracy"] is None and ft["other_runs"] == 0
    for text in ("82.00 ± 2.00", "72.00 ± 2.65", "-12.00 ± 2.00", "NME 83.00 ± 2.00", "| 110 |", "62.00 ± 2.83",
                 "51.00 ± 1.41", "20.00 ± 0.00"):  # fmt: skip
        assert text in table
    assert table.index("civc") < table.index("finetune")
    assert "NME" in table


def test_single_run_shows_only_the_mean(tmp_path: Path) -> None:
    rows, table = compare([make_run(tmp_path, "x", "lwf", 55.5, 40.25, 30, -30, 0)])
    assert rows[0]["avg_incremental_accuracy"] == {"mean": 55.5, "std": None}
    assert "| lwf | CNN | 1 | 55.50 | 40.25 | 30.00 | -30.00 | 0 |" in table
    assert "NME" not in table and "±" not in table


def test_write_comparison_prints_and_writes(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells to the terminal width
    out = tmp_path / "sub" / "compare.md"
    markdown = write_comparison(runs, out)
    assert out.read_text() == markdown
    printed = capsys.readouterr().out
    assert "civc" in printed and "finetune" in printed and "82.00 ± 2.00" in printed
    assert write_comparison(runs[:1]) == compare(runs[:1])[1]


def test_errors_name_the_file(tmp_path: Path) -> None:
    d = make_run(tmp_path, "bad", "civc", 80, 70, 10, -10, 100)
    data = json.loads((d / "results.json").read_text())
    del data["forgetting"]
    (d / "results.json").write_text(json.dumps(data))
    with pytest.raises(DistillkitError, match=r"bad/results\.json.*'forgetting'"):
        compare([d])
    del data["memory"]["frames"]
    data["forgetting"] = 1.0
    (d / "results.json").write_text(json.dumps(data))
    with pytest.raises(DistillkitError, match=r"bad/results\.json.*'memory\.frames'"):
        compare([d])
    (d / "results.json").write_text("{not json")
    with pytest.raises(DistillkitError, match=r"bad/results\.json: invalid JSON"):
        compare([d])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillkitError, match=r"empty/results\.json: no results\.json"):
        compare([tmp_path / "empty"])
    data["memory"]["frames"] = "many"
    (d / "results.json").write_text(json.dumps(data))
    with pytest.raises(DistillkitError, match="must be a number"):
        compare([d])
    with pytest.raises(DistillkitError, match="at least one"):
        compare([])


def test_labels_split_one_method_into_variants(runs: list[Path]) -> None:
    rows, table = compare(runs, labels=["civc", "ft", "civc-whole", "ft", "civc"])
    assert [(r["method"], r["runs"]) for r in rows] == [("civc", 2), ("ft", 2), ("civc-whole", 1)]
    assert rows[0]["avg_incremental_accuracy"] == pytest.approx({"mean": 82.0, "std": 2 * math.sqrt(2)})
    assert "| civc-whole | CNN | 1 | 82.00 |" in table
    with pytest.raises(ValueError, match="2 labels for 5 runs"):
        compare(runs, labels=["a", "b"])


def test_the_headline_is_the_methods_own_classifier(tmp_path: Path) -> None:
    """An NME method (iCaRL) is summarised by its NME figures, its CNN figures beside them, named; in the layout
    of today (NME on top, `cnn` beside) and in the older one (CNN on top, NME under `nme`) alike."""
    now = make_run(tmp_path, "now", "icarl", 57.0, 50.0, 9.0, -9.0, 320, classifier="nme", other=46.3)
    old = make_run(tmp_path, "old", "icarl", 46.3, 31.7, 70.8, -70.8, 320, nme=57.0)
    data = json.loads((old / "results.json").read_text())
    data["classifier"] = "nme"
    data["nme"].update(forgetting=9.0, bwt=-9.0, final_accuracy=50.0)
    (old / "results.json").write_text(json.dumps(data))
    for run in (now, old):
        rows, table = compare([run])
        row = rows[0]
        assert row["classifier"] == "nme" and row["other_classifier"] == "cnn"
        assert row["avg_incremental_accuracy"]["mean"] == 57.0 and row["final_accuracy"]["mean"] == 50.0
        assert row["forgetting"]["mean"] == 9.0 and row["other_avg_incremental_accuracy"]["mean"] == 46.3
        assert "| icarl | NME | 1 | 57.00 | 50.00 | 9.00 | -9.00 | CNN 46.30 | 320 |" in table
