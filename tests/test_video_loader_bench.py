"""The video data-loading benchmark runs end to end on a tiny synthetic set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "video_loader.py"


# run in a process of its own: the benchmark forks its DataLoader workers (it counts their CPU time as its children's),
# which the test process must not do (conftest)
RUN = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("video_loader_bench", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
result = module.main(sys.argv[2:])
print(json.dumps({"methods": module.METHODS, **{key: result[key] for key in ("rates", "cpu_ms", "rows", "cpu_rows")}}))
"""


def test_video_loader_benchmark_tiny(tmp_path: Path) -> None:
    out = tmp_path / "video_loader.md"
    argv = ["--data", str(tmp_path / "data"), "--videos", "4", "--frames", "16", "--size", "32"]
    argv += ["--crop", "24", "--repeats", "1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(SCRIPT), *argv], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])

    assert [row[0] for row in result["rows"]] == ["1", "2"]
    assert [row[0] for row in result["cpu_rows"]] == ["1", "2"]
    for workers in ("1", "2"):  # JSON's keys
        for method in result["methods"]:
            (rate,) = result["rates"][workers][method]
            (ms,) = result["cpu_ms"][workers][method]
            assert rate > 0 and ms > 0, (workers, method)
    for row in result["rows"]:
        assert all(float(cell) > 0 for cell in row[1:]), row

    text = out.read_text()
    assert "| 1 |" in text and "| 2 |" in text
    assert "4 H.264 mp4 videos of 16 frames at 32×32" in text
    assert "--videos 4" in text  # the command line is recorded
