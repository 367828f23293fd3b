"""Class-incremental plots (matplotlib, headless): accuracy per step and the accuracy matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from distillkit.errors import DistillkitError  # noqa: E402


def plot_accuracy_per_step(
    series: dict[str, Sequence[float]],
    classes_seen: Sequence[int],
    path: Path | str,
    title: str = "Accuracy on all classes seen",
) -> None:
    """One line per series (e.g. "CNN", "NME" or method names): acc_i against the number of classes seen."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in series.items():
        if len(values) > len(classes_seen):
            raise DistillkitError(
                f"series {name!r} has {len(values)} points but only {len(classes_seen)} steps are given"
            )
        ax.plot(list(classes_seen[: len(values)]), list(values), marker="o", label=name)
    ax.set_xlabel("number of classes seen")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.set_xticks(list(classes_seen))
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_matrix(
    matrix: Sequence[Sequence[float | None]], path: Path | str, title: str = "Accuracy matrix"
) -> None:
    """Heat map of a[i][j] (rows: after step i, columns: step j's classes), values in the cells, upper blank."""
    steps = len(matrix)
    grid = np.full((steps, steps), np.nan)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row[:steps]):
            if v is not None and j <= i:
                grid[i, j] = float(v)
    size = max(3.5, 0.6 * steps + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100)
    fontsize = 8 if steps <= 8 else 6
    for i in range(steps):
        for j in range(i + 1):
            if not np.isnan(grid[i, j]):
                color = "black" if grid[i, j] > 60 else "white"
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=fontsize, color=color)
    ax.set_xticks(range(steps))
    ax.set_yticks(range(steps))
    ax.set_xlabel("classes of step j")
    ax.set_ylabel("after step i")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
