"""Progress off a terminal: plain lines at a steady rhythm, with phase, step, loss, throughput and time left."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from distillkit.engine import progress
from distillkit.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_interval_with_rate_and_time_left() -> None:
    clock, out = Clock(), io.StringIO()
    lines = progress.LineProgress("step 1 (civc)", 100, every=30, stream=out, clock=clock)
    for _ in range(40):  # 40 steps in 20 s: no line yet
        clock.now += 0.5
        lines.advance()
    assert out.getvalue() == ""
    lines.set_postfix("ce 0.512")
    for _ in range(20):  # the 60th step, at 30 s, writes
        clock.now += 0.5
        lines.advance()
    assert out.getvalue() == "step 1 (civc): 60/100 (60%), ce 0.512, 2.0 steps/s, 0m20s left\n"
    for _ in range(40):
        clock.now += 0.5
        lines.advance()
    lines.write()
    assert (
        out.getvalue().splitlines()[-1] == "step 1 (civc): 100/100 (100%), ce 0.512, 2.0 steps/s, done in 50s"
    )


def test_off_a_terminal_a_long_loop_reports_and_a_short_one_stays_quiet(monkeypatch, capsys) -> None:
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "1")
    monkeypatch.setenv("DISTILLKIT_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with progress.progress_bar("teacher", 3) as bar:
        for _ in range(3):
            bar.advance()
    err = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in err] == ["teacher: 1/3 (33%)", "teacher: 2/3 (67%)",
                                                    "teacher: 3/3 (100%)", "teacher: 3/3 (100%)"]  # fmt: skip
    monkeypatch.setenv("DISTILLKIT_PROGRESS_SECONDS", "3600")
    with progress.progress_bar("eval", 3) as bar:
        bar.advance(3)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "0")
    monkeypatch.setenv("DISTILLKIT_PROGRESS_SECONDS", "0")
    with progress.progress_bar("quiet", 3) as bar:
        bar.advance(3)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_a_bad_interval_is_one_clear_error(monkeypatch, value: str) -> None:
    monkeypatch.setenv("DISTILLKIT_PROGRESS", "1")
    monkeypatch.setenv("DISTILLKIT_PROGRESS_SECONDS", value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with pytest.raises(ConfigError, match="DISTILLKIT_PROGRESS_SECONDS"), progress.progress_bar("x", 1):
        pass


def test_a_job_piped_to_a_log_prints_progress_lines(tmp_path) -> None:
    code = (
        "import torch; from distillkit.engine.loop import fit, ClassifierObjective; from distillkit.config import "
        "OptimConfig; from torch.utils.data import DataLoader, TensorDataset; "
        "m = torch.nn.Linear(4, 2); d = DataLoader(TensorDataset(torch.randn(8, 4), torch.tensor([0, 1] * 4)), 4); "
        "fit(ClassifierObjective(m), d, 5, OptimConfig(lr=0.1), torch.device('cpu'), 'teacher', log_every=1)"
    )
    env = {"DISTILLKIT_PROGRESS": "1", "DISTILLKIT_PROGRESS_SECONDS": "0", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("teacher: 1/5 (20%), ce ") and "steps/s" in lines[0]
    assert lines[-1].startswith("teacher: 5/5 (100%), ce ") and "done in" in lines[-1]
