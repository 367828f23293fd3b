"""The state of a stream run, and the folder that keeps it across kills.

`StreamState` is what the finished steps recorded (accuracy rows, seconds, memory statistics, training history),
with the model's weights and the run's config after the last of them: exactly what a step's checkpoint holds,
under the keys it has always had, so that checkpoints of earlier versions resume. `StreamFolder` is where a run
keeps it in its `--out` folder: a checkpoint and a memory folder per finished step, `log.jsonl` and the results.
Checkpoints and results are written to a temporary file renamed into place, so that a kill never leaves half a
file; `log.jsonl` is appended to, and rewritten whole from the last checkpoint when a run resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distillkit.engine.checkpoint import load_checkpoint, save_checkpoint
from distillkit.errors import CheckpointError

AccuracyRow = list[float]
"""Accuracy (%) on the test samples of each step's classes, steps 0 to the one just finished
(`metrics.accuracy_row`)."""

CHECKPOINT_KEYS = ("cnn", "nme", "seconds", "memory", "history", "model", "config", "step")
"""The keys of a step's checkpoint, in the order they are written."""


@dataclass
class StreamState:
    """What a stream run has done: one entry per finished step in each list, and the model's weights and the
    run's config after the last of them."""

    cnn: list[AccuracyRow] = field(default_factory=list)
    """The accuracy row of each finished step (the model's own classifier)."""
    nme: list[AccuracyRow | None] = field(default_factory=list)
    """The nearest-mean-of-exemplars accuracy row of each finished step (None where it is not evaluated)."""
    seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds of each finished step (training, memory update and evaluation)."""
    memory: list[dict[str, int]] = field(default_factory=list)
    """The exemplar memory after each finished step: frames, bytes and videos held (and, with adaptive
    granularity, the videos kept as whole clips)."""
    history: list[list[dict[str, float]]] = field(default_factory=list)
    """The training log of each finished step (`FitResult.history`: the mean loss parts of each logging interval;
    empty for a step that did not train)."""
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    """The model's weights after the last finished step."""
    config: dict[str, Any] = field(default_factory=dict)
    """The run's config (as `dump_config` writes it), which a resumed run must match."""
    step: int = -1
    """The last finished step (-1: none)."""

    @property
    def steps_done(self) -> int:
        return len(self.cnn)

    def record_step(
        self,
        step: int,
        cnn: AccuracyRow,
        nme: AccuracyRow | None,
        seconds: float,
        memory: dict[str, int],
        history: list[dict[str, float]],
        model: dict[str, torch.Tensor],
        config: dict[str, Any],
    ) -> None:
        """Add what step `step` (the next one) recorded, and the model's weights and the config after it."""
        if step != self.steps_done:
            raise ValueError(f"step {step} recorded after {self.steps_done} finished steps")
        self.cnn.append(cnn)
        self.nme.append(nme)
        self.seconds.append(seconds)
        self.memory.append(memory)
        self.history.append(history)
        self.model, self.config, self.step = model, config, step

    def log_entry(self, step: int, classes_seen: int) -> dict[str, Any]:
        """Step `step`'s line of `log.jsonl` (`loss`: the last logging interval's mean loss parts)."""
        return {
            "step": step,
            "classes_seen": classes_seen,
            "accuracy_row": self.cnn[step],
            "nme_row": self.nme[step],
            "seconds": self.seconds[step],
            "memory": self.memory[step],
            "loss": self.history[step][-1] if self.history[step] else None,
        }

    def to_checkpoint(self) -> dict[str, Any]:
        """The contents of the last finished step's checkpoint: a plain dict under `CHECKPOINT_KEYS`."""
        if self.step < 0:
            raise ValueError("no finished step to checkpoint")
        return {key: getattr(self, key) for key in CHECKPOINT_KEYS}

    @classmethod
    def from_checkpoint(cls, contents: object, source: str | Path) -> StreamState:
        """The state a checkpoint's `contents` hold (read from `source`, which errors name)."""
        if not isinstance(contents, Mapping):
            raise CheckpointError(
                f"{source}: holds a {type(contents).__name__}, not the checkpoint of a class-incremental step"
            )
        missing = [key for key in CHECKPOINT_KEYS if key not in contents]
        if missing:
            raise CheckpointError(
                f"{source}: not the checkpoint of a class-incremental step (no {', '.join(missing)})"
            )
        return cls(**{key: contents[key] for key in CHECKPOINT_KEYS})

    def save(self, path: Path) -> None:
        """Write the checkpoint to `path` atomically (`engine.checkpoint.save_checkpoint`)."""
        save_checkpoint(self.to_checkpoint(), path)

    @classmethod
    def load(cls, path: Path) -> StreamState:
        """The state the checkpoint at `path` holds, read weights-only."""
        return cls.from_checkpoint(load_checkpoint(path), path)


class StreamFolder:
    """The files of a stream run in `out`: `checkpoints/step_XXX.pt` and `memory/step_XXX/` of the finished
    steps, `log.jsonl` (one line per finished step) and the results."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.checkpoints = out / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:03d}.pt"

    def memory(self, step: int) -> Path:
        """The exemplar memory folder after step `step`."""
        return self.out / "memory" / f"step_{step:03d}"

    def remove_memory(self, step: int) -> None:
        """Remove step `step`'s memory folder (once the next step's checkpoint no longer needs it)."""
        shutil.rmtree(self.memory(step), ignore_errors=True)

    def finished_steps(self) -> list[int]:
        """The steps with a checkpoint, in order."""
        return sorted(int(p.stem.split("_")[1]) for p in self.checkpoints.glob("step_*.pt"))

    def last_step(self) -> int | None:
        """The last step with a checkpoint (None: no finished step)."""
        steps = self.finished_steps()
        return steps[-1] if steps else None

    def clear_leftovers(self, first: int) -> None:
        """Remove what a killed run leaves before step `first` runs: half-written checkpoints (a SIGKILL skips
        their clean-up) and the memory folders of every step but the last finished one (the next step's, half
        written, or the previous one's when the kill came between the checkpoint and its removal)."""
        for tmp in self.checkpoints.glob(".step_*.tmp"):
            tmp.unlink(missing_ok=True)
        keep = self.memory(first - 1) if first > 0 else None
        for folder in (self.out / "memory").glob("step_*"):
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def append_log(self, entry: dict[str, Any]) -> None:
        """Add a finished step's line to `log.jsonl`."""
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    def rewrite_log(self, entries: list[dict[str, Any]]) -> None:
        """`log.jsonl` with exactly these lines (a kill may have cut the last line, or come between a step's
        checkpoint and its line)."""
        self.write_text("log.jsonl", "".join(json.dumps(entry) + "\n" for entry in entries))

    def write_text(self, name: str, text: str) -> None:
        """Write `text` to `out/name` through a hidden file beside it, then rename it: a kill never leaves half a
        file (a fixed temporary name, so a leftover one is replaced by the next write)."""
        path = self.out / name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
