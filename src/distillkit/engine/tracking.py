"""A run's scalars as JSON lines (`OUT/metrics.jsonl`) and, optionally, TensorBoard event files.

A job runs inside `tracking(tensorboard, out)`; every `fit` then logs its loss parts and learning rate under its
description, and jobs add their own scalars (accuracy per stage or step) through `tracker()`. Only rank 0 logs.
The JSON files of each job stay the record of its results; these logs show how it got there.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from distillkit.engine.distributed import is_main
from distillkit.errors import ConfigError


class Tracker:
    """Receives scalars; this base class drops them."""

    def scalars(self, group: str, values: Mapping[str, float | None], step: int) -> None:
        """Log `values` (None entries skipped) as `group/name` at `step`."""

    def close(self) -> None:
        """Flush and release whatever the tracker holds."""


def tag(group: str, name: str) -> str:
    """A TensorBoard tag: runs of characters other than letters, digits, `.` and `-` become `_`."""
    clean = [re.sub(r"[^A-Za-z0-9.\-]+", "_", part).strip("_") for part in (group, name)]
    return "/".join(clean)


class TensorBoardTracker(Tracker):
    """Writes TensorBoard event files to `log_dir` (torch.utils.tensorboard; needs the `tensorboard` package)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "tensorboard: true needs the tensorboard package (pip install 'distillkit[tensorboard]')"
            ) from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, group: str, values: Mapping[str, float | None], step: int) -> None:
        for name, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag(group, name), float(value), step)

    def close(self) -> None:
        self.writer.close()


class JsonLinesTracker(Tracker):
    """Appends one JSON object a call to `path` (`group`, `step`, `time`, then the values); the file is opened
    on the first call, so a run that fails before training leaves none. A resumed run appends to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def scalars(self, group: str, values: Mapping[str, float | None], step: int) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by `close`)
        known = {k: float(v) for k, v in values.items() if v is not None}
        self._file.write(
            json.dumps({"group": group, "step": step, "time": round(time.time(), 3), **known}) + "\n"
        )
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Trackers(Tracker):
    """Several trackers as one."""

    def __init__(self, *trackers: Tracker) -> None:
        self.trackers = trackers

    def scalars(self, group: str, values: Mapping[str, float | None], step: int) -> None:
        for t in self.trackers:
            t.scalars(group, values, step)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


_current: ContextVar[Tracker | None] = ContextVar("distillkit_tracker", default=None)
_DROP = Tracker()


def tracker() -> Tracker:
    """The tracker of the job running now (one that drops everything outside `tracking`)."""
    return _current.get() or _DROP


@contextmanager
def tracking(tensorboard: bool, out: str | Path) -> Iterator[Tracker]:
    """Run a job logging to `out/metrics.jsonl`, and to TensorBoard event files in `out/tensorboard` when
    `tensorboard` is on (rank 0 only)."""
    main = is_main() and os.environ.get("RANK", "0") == "0"  # also before the process group exists
    if not main:
        active: Tracker = Tracker()
    else:
        lines = JsonLinesTracker(Path(out) / "metrics.jsonl")
        active = Trackers(lines, TensorBoardTracker(Path(out) / "tensorboard")) if tensorboard else lines
    token = _current.set(active)
    try:
        yield active
    finally:
        _current.reset(token)
        active.close()
