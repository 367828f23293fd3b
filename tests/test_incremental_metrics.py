"""Class-incremental metrics, checked against numbers computed by hand."""

from __future__ import annotations

import pytest
import torch

from distillkit.errors import DistillkitError
from distillkit.incremental.metrics import accuracy_matrix, accuracy_row, samples_per_step, summarize
from distillkit.report.incremental_plots import plot_accuracy_matrix, plot_accuracy_per_step

# a[1][0] = 90 > a[0][0] = 80: forgetting of step 0 is measured from the best earlier row, not the diagonal.
MATRIX = [[80.0], [90.0, 70.0], [60.0, 50.0, 95.0]]
N = [100, 50, 50]


def test_summarize_by_hand() -> None:
    m = summarize(MATRIX, N)
    # acc_1 = (90*100 + 70*50) / 150; acc_2 = (60*100 + 50*50 + 95*50) / 200 (unweighted mean would be 68.33)
    assert m["accuracy_per_step"] == pytest.approx([80.0, 12500 / 150, 66.25])
    assert m["avg_incremental_accuracy"] == pytest.approx((80 + 12500 / 150 + 66.25) / 3)
    assert m["avg_incremental_accuracy"] == pytest.approx(2755 / 36)
    assert m["final_accuracy"] == pytest.approx(66.25)
    # forgetting: step 0: max(80, 90) - 60 = 30; step 1: 70 - 50 = 20  (diagonal-based would give 20)
    assert m["forgetting"] == pytest.approx(25.0)
    # bwt: (60 - 80 + 50 - 70) / 2
    assert m["bwt"] == pytest.approx(-20.0)
    assert m["old_accuracy"][0] is None
    assert m["old_accuracy"][1:] == pytest.approx([90.0, (60 * 100 + 50 * 50) / 150])
    assert m["new_accuracy"] == [80.0, 70.0, 95.0]


def test_square_matrix_with_none_gives_the_same() -> None:
    square = [[80.0, None, None], [90.0, 70.0, None], [60.0, 50.0, 95.0]]
    assert summarize(square, N) == summarize(MATRIX, N)


def test_single_step_has_no_forgetting() -> None:
    m = summarize([[42.0]], [7])
    assert m["forgetting"] == 0.0 and m["bwt"] == 0.0
    assert m["avg_incremental_accuracy"] == m["final_accuracy"] == 42.0
    assert m["old_accuracy"] == [None] and m["new_accuracy"] == [42.0]


@pytest.mark.parametrize(
    ("matrix", "n", "match"),
    [
        ([], [], "empty"),
        (MATRIX, [100, 50], "n_per_step has 2"),
        ([[80.0], [90.0]], [1, 1], "row 1"),
        ([[80.0, 10.0], [90.0, 70.0]], [1, 1], "above the diagonal"),
        ([[80.0], [90.0, 170.0]], [1, 1], r"\[1\]\[1\]"),
        ([[80.0], [None, 70.0]], [1, 1], r"\[1\]\[0\]"),
        ([[80.0]], [0], "positive"),
    ],
)
def test_invalid_matrix(matrix: list, n: list, match: str) -> None:
    with pytest.raises(DistillkitError, match=match):
        summarize(matrix, n)


def test_accuracy_row_and_matrix() -> None:
    target = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    step = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    after0 = torch.tensor([0, 0, 1, 0])  # seen samples only: 3/4 right
    after1 = torch.tensor([1, 1, 1, 1, 2, 2, 3, 0, 9, 9])  # whole test set: step 0 2/4, step 1 3/4
    after2 = torch.tensor([1, 1, 1, 1, 2, 2, 3, 3, 4, 0])  # step 0 2/4, step 1 4/4, step 2 1/2
    assert accuracy_row(after1, target, step, 1) == [50.0, 75.0]
    matrix = accuracy_matrix([after0, after1, after2], target, step)
    assert matrix == [[75.0, None, None], [50.0, 75.0, None], [50.0, 100.0, 50.0]]
    assert samples_per_step(step, 3) == [4, 4, 2]
    m = summarize(matrix, samples_per_step(step, 3))
    assert m["final_accuracy"] == pytest.approx(70.0)  # 7 of 10 right
    with pytest.raises(DistillkitError, match="expected 10"):
        accuracy_matrix([torch.tensor([0, 0, 1])], target, step)
    with pytest.raises(DistillkitError, match="no test samples of step 1"):
        accuracy_row(after0, target[:4], step[:4], 1)


def test_plots_write_png(tmp_path) -> None:
    per_step = tmp_path / "acc.png"
    plot_accuracy_per_step({"CNN": [80.0, 83.3, 66.25], "NME": [81.0, 84.0]}, [4, 7, 10], per_step)
    heat = tmp_path / "matrix.png"
    plot_accuracy_matrix(MATRIX, heat, "test")
    for path in (per_step, heat):
        data = path.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DistillkitError, match="CNN"):
        plot_accuracy_per_step({"CNN": [1.0, 2.0, 3.0]}, [4, 7], tmp_path / "bad.png")
