"""Progress: rich bars on a terminal; off a terminal (CI logs, pipes, batch jobs) plain lines at a steady rhythm,
every `DISTILLKIT_PROGRESS_SECONDS` seconds (default 30) and when a loop ends. `DISTILLKIT_PROGRESS=0` silences
both."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from distillkit.errors import ConfigError


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_postfix(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, info=text)


class LineProgress:
    """Plain progress lines for a loop of `total` steps: ``desc: 120/675 (18%), <info>, 3.1 steps/s, 2m59s
    left``, at most one every `every` seconds, and a last one when a loop that reported ends."""

    def __init__(self, desc: str, total: int, every: float, stream=None, clock=time.monotonic) -> None:
        self.desc, self.total, self.every, self.clock = desc, total, every, clock
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.info = 0, ""
        self.start = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.clock() - self.last >= self.every:
            self.write()

    def set_postfix(self, text: str) -> None:
        self.info = text

    def write(self) -> None:
        now = self.clock()
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        parts = [f"{self.desc}: {self.done}/{self.total} ({100 * self.done / max(1, self.total):.0f}%)"]
        if self.info:
            parts.append(self.info)
        parts.append(f"{rate:.1f} steps/s")
        if self.done < self.total and rate > 0:
            left = int((self.total - self.done) / rate)
            parts.append(f"{left // 60}m{left % 60:02d}s left")
        elif self.done >= self.total:
            parts.append(f"done in {now - self.start:.0f}s")
        print(", ".join(parts), file=self.stream, flush=True)


def progress_enabled() -> bool:
    """On a terminal, unless DISTILLKIT_PROGRESS=0; under torchrun on rank 0 only."""
    return _allowed() and sys.stderr.isatty()


def _allowed() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("DISTILLKIT_PROGRESS", "1") != "0"


def _line_seconds() -> float:
    value = os.environ.get("DISTILLKIT_PROGRESS_SECONDS", "30")
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"DISTILLKIT_PROGRESS_SECONDS={value!r}: give a number of seconds >= 0")
    return seconds


@contextmanager
def progress_bar(desc: str, total: int) -> Iterator[_Bar | LineProgress]:
    """A bar for a loop of `total` steps on a terminal, plain lines off one (`LineProgress`), nothing when
    DISTILLKIT_PROGRESS=0 or on a rank other than 0."""
    if not _allowed():
        yield _Bar(None, None)
        return
    if not sys.stderr.isatty():
        lines = LineProgress(desc, total, _line_seconds())
        yield lines
        if lines.last != lines.start:  # a loop long enough to have reported says when it ends
            lines.write()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(desc, total=total, info="")
        yield _Bar(progress, task)
