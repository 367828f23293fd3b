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
