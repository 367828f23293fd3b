"""Plots written next to the reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_accuracy_vs_macs(report: dict, path: Path) -> None:
    """Teacher, each PBKD stage and the baselines: top-1 accuracy against MACs per image."""
    fig, ax = plt.subplots(figsize=(6, 4))
    stages = report["stages"]
    xs = [report["teacher"]["macs"] / 1e6] + [s["macs"] / 1e6 for s in stages]
    ys = [report["teacher"]["accuracy"]] + [s["accuracy"] for s in stages]
    ax.plot(xs, ys, "o-", color="tab:blue", label="PBKD stages")
    ax.annotate("teacher", (xs[0], ys[0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for s, x, y in zip(stages, xs[1:], ys[1:], strict=True):
        ax.annotate(s["name"], (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    student_macs = report["student"]["macs"] / 1e6
    for i, (name, b) in enumerate(report.get("baselines", {}).items()):
        ax.scatter([student_macs], [b["accuracy"]], marker="x", color=f"C{i + 1}", label=name)
    ax.set_xlabel("MACs per image (millions)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs MACs across PBKD stages")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), counts printed when small."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    k = len(class_names)
    side = min(12.0, 2.0 + 0.35 * k)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    if k <= 24:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=6, color=colour)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
