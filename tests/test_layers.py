"""The import graph has no upward arrow: libraries never import a job, and no job imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from distillkit.jobs import JOBS, CompressJob, IncrementalJob, TrainJob

SRC = Path(__file__).resolve().parents[1] / "src" / "distillkit"
TOP = {"distillkit.api", "distillkit.cli", "distillkit.jobs"}
"""The jobs (each with its work) and the API and command line above them."""


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("distillkit")}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LIBRARIES = [p for p in sorted(SRC.rglob("*.py")) if not module_name(p).startswith(tuple(TOP))]


@pytest.mark.parametrize("path", LIBRARIES, ids=lambda p: module_name(p))
def test_a_library_imports_no_job(path: Path) -> None:
    upward = {n for n in imports(path) if n.startswith(tuple(TOP))}
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


def test_no_job_imports_another() -> None:
    for path in sorted(p for p in (SRC / "jobs").glob("*.py") if p.name != "__init__.py"):
        own = module_name(path)
        others = {f"distillkit.jobs.{j}" for j in JOBS if f"distillkit.jobs.{j}" != own}
        assert not imports(path) & others, own


def test_jobs_by_name() -> None:
    assert JOBS == {"train": TrainJob, "compress": CompressJob, "incremental": IncrementalJob}
    assert [job.name for job in (TrainJob, CompressJob, IncrementalJob)] == [
        "train",
        "compress",
        "incremental",
    ]
