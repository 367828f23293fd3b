"""The video data-loading benchmark runs end to end on a tiny synthetic set."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "video_loader.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("video_loader_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # DataLoader workers may need to pickle its classes by reference
    spec.loader.exec_module(module)
    return module


def test_video_loader_benchmark_tiny(tmp_path: Path) -> None:
    bench = _load_benchmark()
    out = tmp_path / "video_loader.md"
    argv = ["--data", str(tmp_path / "data"), "--videos", "4", "--frames", "16", "--size", "32"]
    argv += ["--crop", "24", "--repeats", "1", "--out", str(out)]
    result = bench.main(argv)

    assert [row[0] for row in result["rows"]] == ["1", "2"]
    assert [row[0] for row in result["cpu_rows"]] == ["1", "2"]
    for workers in (1, 2):
        for method in bench.METHODS:
            (rate,) = result["rates"][workers][method]
            (ms,) = result["cpu_ms"][workers][method]
            assert rate > 0 and ms > 0, (workers, method)
    for row in result["rows"]:
        assert all(float(cell) > 0 for cell in row[1:]), row

    text = out.read_text()
    assert "| 1 |" in text and "| 2 |" in text
    assert "4 H.264 mp4 videos of 16 frames at 32×32" in text
    assert "--videos 4" in text  # the command line is recorded
