"""What a compression run has finished, so that `distillkit compress --resume` can go on after a crash.

A run has phases: the teacher, each PBKD stage, the KD fine-tune, each baseline. At the end of each, the run
records what the phase produced (weights, report entries) and the random state it ended with in
`checkpoints/compress.pt` (written atomically). Resuming, finished phases are not run again: their results are
read back and the random state they ended with restored, so the phases still to run train exactly as they
would have in an uninterrupted run — in one process with `data.num_workers: 0` (worker processes and other
ranks keep random states of their own, which are not recorded; a resumed run is then equivalent, not
identical).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillkit.config import Section, check_resumable, dump_config
from distillkit.engine.checkpoint import load_checkpoint, save_checkpoint
from distillkit.engine.distributed import is_main
from distillkit.errors import ConfigError


def random_state(generator: torch.Generator | None) -> dict[str, Any]:
    """Python's, NumPy's and torch's random states (and `generator`'s), as a weights-only loadable dict."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_random_state(state: dict[str, Any], generator: torch.Generator | None) -> None:
    """Restore what `random_state` recorded."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


class CompressionProgress:
    """The finished phases of the run in `out`: `finished(phase)` gives a phase's recorded results (None if it
    has not finished), `resume_after(phase)` restores the random state it ended with, `record(phase, results)`
    marks it finished (rank 0 writes)."""

    def __init__(
        self, cfg: Section, out: Path, resume: bool, generator: torch.Generator | None = None
    ) -> None:
        self.path = Path(out) / "checkpoints" / "compress.pt"
        self.generator = generator
        self.state: dict[str, Any] = {"config": dump_config(cfg), "phases": {}}
        if not self.path.is_file():
            return
        if not resume:
            raise ConfigError(
                f"{out} already holds a compression run ({self.path.name} in {self.path.parent}); pass "
                "--resume to continue it, or choose another --out"
            )
        saved = load_checkpoint(self.path)
        check_resumable(saved["config"], cfg, Path(out))
        self.state = saved

    def finished(self, phase: str) -> dict[str, Any] | None:
        entry = self.state["phases"].get(phase)
        return None if entry is None else entry["results"]

    def resume_after(self, phase: str) -> None:
        set_random_state(self.state["phases"][phase]["random"], self.generator)

    def record(self, phase: str, results: dict[str, Any]) -> None:
        self.state["phases"][phase] = {"results": results, "random": random_state(self.generator)}
        if is_main():
            save_checkpoint(self.state, self.path)
