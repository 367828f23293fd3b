"""The skeleton every job shares: claim the run folder, start the process group, then run the job's own work
under its logging and precision settings. A job says only what is its own (`Job` subclasses, one file each)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import torch

from distillkit.config import JobConfig, PerformanceConfig
from distillkit.engine.distributed import is_distributed, is_main, per_process_batch, process_group
from distillkit.engine.loop import check_performance
from distillkit.engine.precision import job_dtype
from distillkit.engine.run_folder import claim, release
from distillkit.engine.tracking import tracking

C = TypeVar("C", bound=JobConfig)


class Job(ABC, Generic[C]):
    """One job (`distillkit <name>`): `run` owns the preamble, `execute` the work."""

    name: ClassVar[str]
    finished: ClassVar[str | None] = None
    """The file only a finished run holds, for jobs whose `--resume` of a finished run returns its report without
    touching the folder (None: the job's own resume handles a finished run)."""

    def check(self, cfg: C) -> None:
        """Checks of `cfg` beyond its schema, before any work (the default: none)."""

    def legacy(self, out: Path) -> bool:
        """Whether `out` holds a run of this job written before run folders were marked (the default: never)."""
        return False

    @abstractmethod
    def execute(self, cfg: C, out: Path, device: torch.device, resume: bool) -> dict:
        """The job's work in the claimed folder `out`; returns its report (as written to `out`)."""

    def run(self, cfg: C, out: Path, *, resume: bool = False, overwrite: bool = False) -> dict:
        """Check `cfg`, claim `out` (engine/run_folder.py), and execute under the config's device, TensorBoard
        and precision settings; returns the report."""
        self.check(cfg)
        with process_group(cfg.device) as device:
            state = claim(
                out,
                self.name,
                cfg,
                resume=resume,
                overwrite=overwrite,
                legacy=self.legacy,
                finished=self.finished,
            )
            if state == "finished" and self.finished is not None:
                if is_main():
                    print(f"{out} holds this {self.name} run, finished ({self.finished}): nothing to do")
                return json.loads((out / self.finished).read_text())
            try:
                with tracking(cfg.tensorboard, out), job_dtype(cfg.perf):
                    return self.execute(cfg, out, device, resume)
            finally:
                if is_main():
                    release(out)


def prepare(perf: PerformanceConfig, batch_size: int, out: Path, device: torch.device) -> None:
    """What a job does before any work: check that its `perf` settings can run on `device` and, under torchrun,
    that its global `data.batch_size` divides evenly over the processes; then create `out` (rank 0)."""
    check_performance(perf, device)
    if is_distributed():
        per_process_batch(batch_size, "data.batch_size")
    if is_main():
        out.mkdir(parents=True, exist_ok=True)
