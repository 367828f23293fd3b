"""What a class-incremental run reports after each step: its line in `log.jsonl` and on the terminal, and
`results.json`, `report.md` and the plots (docs/design.md, "Output contract"). The method's own classifier comes
first everywhere; the other sits beside it, named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from distillkit.config import dump_config
from distillkit.engine.distributed import is_main
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.evaluation import Evaluator
from distillkit.incremental.methods import Method
from distillkit.incremental.metrics import other_classifier, summarize
from distillkit.incremental.scenario import Scenario
from distillkit.incremental.state import StreamFolder, StreamState
from distillkit.report.incremental_plots import plot_accuracy_matrix, plot_accuracy_per_step
from distillkit.report.incremental_report import incremental_report
from distillkit.report.meta import run_metadata


class StreamResults:
    """The reports of the run of `cfg` with `method` over `scenario` in `folder` (only rank 0 writes)."""

    def __init__(
        self,
        cfg: IncrementalConfig,
        method: Method,
        scenario: Scenario,
        evaluator: Evaluator,
        folder: StreamFolder,
        device: torch.device,
    ) -> None:
        self.cfg, self.method, self.scenario = cfg, method, scenario
        self.evaluator, self.folder, self.device = evaluator, folder, device
        self.classifier = "nme" if method.nme else "cnn"
        """The method's own classifier: `nme` for a method that classifies by exemplar means, else `cnn`."""

    def log_entry(self, step: int, state: StreamState) -> dict:
        """Step `step`'s line of `log.jsonl`."""
        return state.log_entry(step, self.scenario.num_seen(step))

    def log(self, step: int, state: StreamState, figures: dict[str, dict | None]) -> None:
        """Append step `step` to `log.jsonl` and print its line (`figures`: `self.figures(state)`): the own
        classifier's accuracy on the classes seen first (with its row per step's classes), the other's beside it,
        named."""
        entry = self.log_entry(step, state)
        self.folder.append_log(entry)
        own, other = self.classifier, other_classifier(self.classifier)
        line = f"step {step}: {entry['classes_seen']} classes, {own.upper()} "
        line += f"{figures[own]['accuracy_per_step'][-1]:.2f}%"
        if (beside := figures[other]) is not None:
            line += f" ({other.upper()} {beside['accuracy_per_step'][-1]:.2f}%)"
        row = figures[own]["accuracy_matrix"][step]
        print(line + f", per step's classes [{', '.join(f'{a:.1f}' for a in row)}]")

    def figures(self, state: StreamState) -> dict[str, dict | None]:
        """Per classifier (`cnn`, `nme`) its accuracy matrix and metrics (`metrics.summarize`) over the steps done
        so far; `nme` is None when the NME classifier is not evaluated."""
        n_per_step = self.evaluator.test_samples_per_step(state.steps_done)
        figures: dict[str, dict | None] = {
            "cnn": {"accuracy_matrix": state.cnn, **summarize(state.cnn, n_per_step)}
        }
        evaluated = state.nme and state.nme[0] is not None
        figures["nme"] = (
            {"accuracy_matrix": state.nme, **summarize(state.nme, n_per_step)} if evaluated else None
        )
        return figures

    def write(self, state: StreamState, figures: dict[str, dict | None]) -> dict:
        """`results.json` (returned), `report.md` and the plots (written by rank 0 only), from `figures`
        (`self.figures(state)`)."""
        done = state.steps_done
        own, other = self.classifier, other_classifier(self.classifier)
        own_figures = figures[own]
        if own_figures is None:  # cannot happen: a method classifying by NME is refused without a memory
            raise RuntimeError(f"{self.method.name}: its {own} classifier was not evaluated")
        results = {
            "method": self.method.name,
            "classifier": own,
            "classes_per_step": self.scenario.classes_per_step[:done],
            "class_order": self.scenario.class_order,
            "steps_done": done,
            **own_figures,  # the headline: the method's own classifier
            other: figures[other],
            "memory": state.memory[-1],
            "memory_per_step": state.memory,
            "seconds_per_step": state.seconds,
            "seed": self.cfg.seed,
            "config": dump_config(self.cfg),
            "method_options": self.method.options.model_dump(mode="json"),
            **run_metadata(self.device),
        }
        if not is_main():
            return results
        out: Path = self.folder.out
        self.folder.write_text("results.json", json.dumps(results, indent=2))
        self.folder.write_text("report.md", incremental_report(results, time.strftime("%Y-%m-%d %H:%M")))
        seen = [self.scenario.num_seen(i) for i in range(self.scenario.num_steps)]
        series = {
            name.upper(): f["accuracy_per_step"] for name in (own, other) if (f := figures[name]) is not None
        }
        plot_accuracy_per_step(series, seen, out / "accuracy_per_step.png", f"{self.method.name}")
        plot_accuracy_matrix(
            own_figures["accuracy_matrix"],
            out / "accuracy_matrix.png",
            f"{self.method.name} ({own.upper()}): a[i][j]",
        )
        return results
