"""Progress bars: rich on a terminal, silent otherwise (CI logs, pipes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_postfix(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, info=text)


def progress_enabled() -> bool:
    """On a terminal, unless DISTILLKIT_PROGRESS=0; under torchrun on rank 0 only."""
    if os.environ.get("RANK", "0") != "0":
        return False
    return sys.stderr.isatty() and os.environ.get("DISTILLKIT_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(desc: str, total: int) -> Iterator[_Bar]:
    """A bar for a loop of `total` steps; a no-op when stderr is not a terminal."""
    if not progress_enabled():
        yield _Bar(None, None)
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
