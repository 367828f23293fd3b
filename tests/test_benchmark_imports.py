"""Every `from distillkit... import name` in benchmarks/ names a module and an attribute that exist.

Benchmark scripts import parts of distillkit inside functions (so that `--help` is quick); a moved module
breaks them only when a long run reaches that line. This test reads the imports without running them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def distillkit_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every `from distillkit... import name` in `path`, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distillkit":
            found.extend((node.lineno, node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, a.name, "") for a in node.names if a.name.split(".")[0] == "distillkit"
            )
    return found


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("import distillkit.api\n\ndef f():\n    from distillkit.jobs.train import run_train\n")
    assert distillkit_imports(script) == [
        (1, "distillkit.api", ""),
        (4, "distillkit.jobs.train", "run_train"),
    ]


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmark_imports_resolve(script: Path) -> None:
    missing = []
    for line, module, name in distillkit_imports(script):
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(f"{script.name}:{line}: no module {module}")
            continue
        if name and not hasattr(imported, name):
            try:  # `from package import submodule`
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{script.name}:{line}: {module} has no {name}")
    assert missing == []
