"""Class-incremental metrics from the accuracy matrix (docs/design.md, "Metrics").

``a[i][j]`` is the accuracy (%) on the test samples of step j's classes after training step i (j <= i; entries
j > i are None) and ``n_j`` the number of those test samples. Then, with ``last`` the final step:

- acc_i = sum_{j<=i} a[i][j] n_j / sum_{j<=i} n_j (accuracy on all classes seen after step i);
- final accuracy = acc_last; average incremental accuracy = mean_i acc_i (base step included);
- forgetting = mean_{j<last} (max_{j<=i<last} a[i][j] - a[last][j]);
- BWT = mean_{j<last} (a[last][j] - a[j][j]);
- old accuracy at step i = the n-weighted accuracy over j < i (None at step 0); new accuracy = a[i][i].

With a single step nothing can be forgotten: forgetting and BWT are 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from distillkit.errors import DistillkitError

Matrix = list[list[float | None]]


def accuracy_row(
    pred: torch.Tensor, target: torch.Tensor, step_of_target: torch.Tensor, step: int
) -> list[float]:
    """Row ``a[step][0..step]``: accuracy (%) of ``pred`` on the samples of each step's classes.

    ``pred``, ``target`` and ``step_of_target`` are aligned 1-D tensors (labels in any consistent space);
    samples of classes that arrive after ``step`` are ignored.
    """
    pred, target, step_of_target = (torch.as_tensor(t).reshape(-1) for t in (pred, target, step_of_target))
    if not len(pred) == len(target) == len(step_of_target):
        raise DistillkitError(
            f"pred, target and step_of_target must have the same length, got "
            f"{len(pred)}, {len(target)} and {len(step_of_target)}"
        )
    correct = pred.cpu() == target.cpu()
    steps = step_of_target.cpu()
    row = []
    for j in range(step + 1):
        mask = steps == j
        n = int(mask.sum())
        if n == 0:
            raise DistillkitError(
                f"no test samples of step {j}'s classes: its accuracy after step {step} is undefined"
            )
        row.append(100.0 * float(correct[mask].sum()) / n)
    return row


def accuracy_matrix(
    predictions: Sequence[torch.Tensor], targets: torch.Tensor, step_of_target: torch.Tensor
) -> Matrix:
    """Square accuracy matrix (None above the diagonal) from the predictions made after each step.

    ``predictions[i]`` covers either the whole test set (aligned with ``targets``) or only the samples of classes
    seen after step i (``step_of_target <= i``), in the same order as in ``targets``.
    """
    targets = torch.as_tensor(targets).reshape(-1)
    step_of_target = torch.as_tensor(step_of_target).reshape(-1)
    total = len(predictions)
    matrix: Matrix = []
    for i, pred in enumerate(predictions):
        pred = torch.as_tensor(pred).reshape(-1)
        seen = step_of_target <= i
        if len(pred) == len(targets):
            row = accuracy_row(pred, targets, step_of_target, i)
        elif len(pred) == int(seen.sum()):
            row = accuracy_row(pred, targets[seen], step_of_target[seen], i)
        else:
            raise DistillkitError(
                f"predictions after step {i} have {len(pred)} entries; expected {len(targets)} (whole test set) "
                f"or {int(seen.sum())} (samples of the classes seen so far)"
            )
        matrix.append(row + [None] * (total - i - 1))
    return matrix


def samples_per_step(step_of_target: torch.Tensor, num_steps: int) -> list[int]:
    """``n_j``: number of test samples of each step's classes."""
    counts = torch.bincount(torch.as_tensor(step_of_target).reshape(-1).long().cpu(), minlength=num_steps)
    return [int(c) for c in counts[:num_steps]]


def _check(matrix: Sequence[Sequence[float | None]], n_per_step: Sequence[int]) -> list[list[float]]:
    """Validate the matrix and return its lower triangle as floats."""
    steps = len(matrix)
    if steps == 0:
        raise DistillkitError("the accuracy matrix is empty: it needs one row per step")
    if len(n_per_step) != steps:
        raise DistillkitError(
            f"n_per_step has {len(n_per_step)} entries but the accuracy matrix has {steps} rows (one per step)"
        )
    for j, n in enumerate(n_per_step):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DistillkitError(f"n_per_step[{j}] must be a positive number of test samples, got {n!r}")
    rows = []
    for i, row in enumerate(matrix):
        if len(row) not in (i + 1, steps):
            raise DistillkitError(
                f"row {i} of the accuracy matrix has {len(row)} entries; expected {i + 1} (lower-triangular) "
                f"or {steps} (square, None above the diagonal)"
            )
        if any(v is not None for v in row[i + 1 :]):
            raise DistillkitError(
                f"row {i} of the accuracy matrix has values above the diagonal (steps not seen yet)"
            )
        values = []
        for j, v in enumerate(row[: i + 1]):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0 <= v <= 100:
                raise DistillkitError(
                    f"accuracy_matrix[{i}][{j}] must be a percentage in [0, 100], got {v!r}"
                )
            values.append(float(v))
        rows.append(values)
    return rows


def _weighted(values: Sequence[float], weights: Sequence[int]) -> float:
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def summarize(matrix: Sequence[Sequence[float | None]], n_per_step: Sequence[int]) -> dict:
    """All scalar and per-step metrics of an accuracy matrix (rows of length i+1, or square with None)."""
    a = _check(matrix, n_per_step)
    n = list(n_per_step)
    last = len(a) - 1
    acc = [_weighted(a[i], n[: i + 1]) for i in range(len(a))]
    old = [None] + [_weighted(a[i][:i], n[:i]) for i in range(1, len(a))]
    if last == 0:
        forgetting = bwt = 0.0
    else:
        forgetting = sum(max(a[i][j] for i in range(j, last)) - a[last][j] for j in range(last)) / last
        bwt = sum(a[last][j] - a[j][j] for j in range(last)) / last
    return {
        "accuracy_per_step": acc,
        "avg_incremental_accuracy": sum(acc) / len(acc),
        "final_accuracy": acc[-1],
        "forgetting": forgetting,
        "bwt": bwt,
        "old_accuracy": old,
        "new_accuracy": [a[i][i] for i in range(len(a))],
    }


CLASSIFIERS = ("cnn", "nme")
"""The two classifiers a run is measured with: the network's head and the nearest mean of exemplars."""


def other_classifier(name: str) -> str:
    """The classifier that is not `name`."""
    return "cnn" if name == "nme" else "nme"


def classifier_figures(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The figures (`accuracy_matrix`, `summarize`'s metrics) of classifier `name` in a results.json.

    The top level holds the method's own classifier (`classifier`), the other sits beside it under its own name
    (`cnn` or `nme`; None or absent when not measured). Files written before that layout held the CNN on top and
    the NME under `nme` whatever the method's classifier; they are read as such.
    """
    own = results.get("classifier") or "cnn"
    if own == "nme" and "cnn" not in results:  # the older layout: CNN on top
        return results if name == "cnn" else results.get("nme")
    return results if name == own else results.get(name)
