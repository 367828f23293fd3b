"""Optional TensorBoard logging of a run's scalars.

A job runs inside `tracking(enabled, out)`; every `fit` then logs its loss parts and learning rate under its
description, and jobs add their own scalars (accuracy per stage or step) through `tracker()`. Disabled (the
default), or on a process other than rank 0, the tracker does nothing. The JSON files of each job stay the
record of a run; TensorBoard is a view of it.
"""

from __future__ import annotations

import os
import re
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


_current: ContextVar[Tracker | None] = ContextVar("distillkit_tracker", default=None)
_DROP = Tracker()


def tracker() -> Tracker:
    """The tracker of the job running now (one that drops everything outside `tracking`)."""
    return _current.get() or _DROP


@contextmanager
def tracking(enabled: bool, out: str | Path) -> Iterator[Tracker]:
    """Run a job with TensorBoard event files in `out/tensorboard` when `enabled` (rank 0 only)."""
    main = is_main() and os.environ.get("RANK", "0") == "0"  # also before the process group exists
    active = TensorBoardTracker(Path(out) / "tensorboard") if enabled and main else Tracker()
    token = _current.set(active)
    try:
        yield active
    finally:
        _current.reset(token)
        active.close()
