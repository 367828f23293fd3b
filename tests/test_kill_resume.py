"""A real SIGKILL: `distillkit incremental` killed at random moments, then `--resume`d until it finishes, ends with
exactly the results of an uninterrupted run, its last memory intact and no temporary files left behind.

The uninterrupted run is a plain `python -m distillkit.cli incremental` subprocess, timed. The killed and resumed
runs are the same command forked from a server process that has already imported torch (`serve`): each one then
starts in a fraction of a second instead of several, which keeps the tests short. A run is SIGKILLed after a
seeded random delay counted from the end of its start-up, drawn within the time the steps still to run took in
the uninterrupted run (so the kills land in training, memory writing, evaluation, checkpoint or results
writing), or as soon as a given file appears (to hit the short moments around a checkpoint's writing).
"""

from __future__ import annotations

import json
import os
import random
import runpy
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import yaml
from helpers import TINY_INCREMENTAL

from distillkit.incremental.memory import ExemplarMemory

KILLS = 3
"""Random kills in total across `test_sigkill_at_random_moments...` (each at its own moment)."""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILLKIT_PROGRESS": "0"}
ROOT = Path(__file__).resolve().parents[1]
STEPS = 3  # the tiny scenario: 2 + 2 + 2 classes
VOLATILE = ("seconds_per_step",)  # wall-clock times differ between runs; everything else must not
LIMIT = 300.0  # seconds: a run still going then is killed (and the test fails)


def _command(config: Path, out: Path) -> list[str]:
    """`distillkit incremental CONFIG --out OUT`, with `--resume` when `out` exists."""
    return ["incremental", str(config), "--out", str(out)] + (["--resume"] if out.exists() else [])


def _started(out: Path, since: float) -> bool:
    """The run rewrites `log.jsonl` (one line per finished step) when it starts its steps, after the start-up
    (imports, data, checks, checkpoint): a `log.jsonl` newer than `since` marks that moment."""
    marker = out / "log.jsonl"
    return marker.exists() and marker.stat().st_mtime >= since


def _appeared(out: Path, when: str) -> bool:
    """Whether a file whose name starts as the last part of `when` is in the folder `out / when`'s parent."""
    folder, _, prefix = when.rpartition("/")
    try:
        return any(name.startswith(prefix) for name in os.listdir(out / folder))
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------------------ the fork server (subprocess)
def serve() -> None:
    """Answer requests ``{"argv", "out", "log", "delay", "when"}`` read as JSON lines on stdin: fork a process
    running `python -m distillkit.cli *argv` (output to `log`), SIGKILL it `delay` seconds after its start-up or
    as soon as `when` appeared in `out` (both null: after `LIMIT` s), and answer ``{"killed", "code"}``. Only
    this server forks, waits for and kills its children."""
    import distillkit.jobs.incremental  # noqa: F401  (torch, torchvision: imported once, before any fork)

    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        out, since = Path(request["out"]), time.time()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request["argv"], request["log"])
        while request["when"] is None and not _started(out, since) and not _ended(pid):
            time.sleep(0.005)
        answer = _wait_or_kill(pid, out, request["delay"], request["when"])
        print(json.dumps(answer), flush=True)
    os._exit(0)  # stdin closed: done (skips the slow interpreter shutdown)


def _child(argv: list[str], log: str) -> NoReturn:
    """Run the CLI module as `python -m` does, its output in `log`; exit with its code."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = ["distillkit", *argv]
    sys.modules.pop("distillkit.cli", None)  # imported by the tests' modules; `python -m` runs it afresh
    code = 1
    try:
        runpy.run_module("distillkit.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _ended(pid: int) -> bool:
    """Whether our child `pid` has ended (without reaping it)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait_or_kill(pid: int, out: Path, delay: float | None, when: str | None) -> dict:
    """Wait for our child `pid` until it ends, `delay` s pass (None: `LIMIT`) or `when` appears in `out`, then
    SIGKILL it."""
    deadline = time.perf_counter() + (LIMIT if delay is None else delay)
    while time.perf_counter() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"killed": False, "code": os.waitstatus_to_exitcode(status)}
        if when is not None and _appeared(out, when):
            break
        time.sleep(0.0005 if when else 0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return {"killed": True, "code": None}


class ForkServer:
    """The tests' handle on `serve`, running in a subprocess."""

    def __init__(self) -> None:
        tests = str(ROOT / "tests")  # on the path, as pytest puts it: this module imports `helpers`
        code = f"import sys; sys.path.insert(0, {tests!r}); from test_kill_resume import serve; serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def run(self, argv: list[str], out: Path, log: Path, delay: float | None = None, when: str | None = None):
        """Run `argv` into `out` (see `serve`); return ``{"killed": bool, "code": exit code or None}``."""
        request = {"argv": argv, "out": str(out), "log": str(log), "delay": delay, "when": when}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the fork server ended (exit code {self.proc.wait()})"
        return json.loads(answer)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------------------------- fixtures
@dataclass
class Stream:
    """The tiny config, its uninterrupted run and the fork server, shared by the tests."""

    config: Path
    reference: Path
    work: float
    """Seconds of the uninterrupted run after its start-up."""
    server: ForkServer

    def run(self, out: Path, delay: float | None = None, when: str | None = None) -> dict:
        """Run (or resume) into `out`, killed as `serve` says; a run that ends must succeed."""
        answer = self.server.run(_command(self.config, out), out, out.with_suffix(".log"), delay, when)
        log = out.with_suffix(".log").read_text()
        assert answer["killed"] or answer["code"] == 0, log
        assert not (answer["killed"] and delay is None and when is None), (
            f"still running after {LIMIT} s:\n{log}"
        )
        return answer


def _uninterrupted(config: Path, out: Path) -> float:
    """Run `python -m distillkit.cli incremental` to its end; return the seconds after its start-up."""
    log = out.with_suffix(".log")
    since = time.time()
    with open(log, "w") as stream:
        cmd = [sys.executable, "-m", "distillkit.cli", *_command(config, out)]
        proc = subprocess.Popen(cmd, env=ENV, stdout=stream, stderr=subprocess.STDOUT)
    while proc.poll() is None and not _started(out, since):
        time.sleep(0.01)
    start = time.perf_counter()
    assert proc.wait(timeout=LIMIT) == 0, log.read_text()
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    folder = tmp_path_factory.mktemp("kill_resume")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_INCREMENTAL))
    server = ForkServer()  # imports torch while the uninterrupted run goes on
    try:
        work = _uninterrupted(config, folder / "reference")
        yield Stream(config, folder / "reference", work, server)
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------------- checks
def _finished_steps(out: Path) -> int:
    return len(list((out / "checkpoints").glob("step_*.pt"))) if out.exists() else 0


def _results(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {k: v for k, v in results.items() if k not in VOLATILE}


def _log_rows(out: Path) -> list[tuple[int, list[float]]]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [(e["step"], e["accuracy_row"]) for e in map(json.loads, lines)]


def _check_against(run: Path, reference: Path) -> None:
    """`run` ended as the uninterrupted `reference`: same results and log, same last memory, nothing left over."""
    got, want = _results(run), _results(reference)
    assert got["accuracy_matrix"] == want["accuracy_matrix"]
    assert got["cnn"]["accuracy_matrix"] == want["cnn"]["accuracy_matrix"]  # iCaRL: NME on top, CNN beside
    assert got["memory_per_step"] == want["memory_per_step"]
    assert got == want  # every other field too (metrics, memory, config, versions)
    assert _log_rows(run) == _log_rows(reference)  # one log line per step, none lost or repeated
    last = f"step_{STEPS - 1:03d}"
    memory = ExemplarMemory.load(run / "memory" / last)
    assert memory.frames == want["memory"]["frames"] and memory.videos == want["memory"]["videos"]
    manifest = (run / "memory" / last / "manifest.json").read_text()
    assert manifest == (reference / "memory" / last / "manifest.json").read_text()
    assert sorted(p.name for p in (run / "memory").iterdir()) == [last]  # no folder of a killed step left
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == [f"step_{s:03d}.pt" for s in range(STEPS)]  # no temporary file left
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert "icarl" in (run / "report.md").read_text()


# ----------------------------------------------------------------------------------------------------- tests
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_results(
    stream: Stream, tmp_path: Path
) -> None:
    rng = random.Random(20240611)
    kills: list[
        tuple[float, int, int]
    ] = []  # (seconds after start-up, steps finished before the kill, after)
    rounds = 0
    while len(kills) < KILLS:  # a round: kill and resume until it finishes (a new one if it ends too soon)
        rounds += 1
        # load on the machine changes run times, so a run may finish before its kill: allow a few more rounds
        assert rounds <= 4 * KILLS, f"the runs kept finishing before their kill: {kills}"
        out = tmp_path / f"round_{rounds}"
        while len(kills) < KILLS and (before := _finished_steps(out)) < STEPS:
            # the steps still to run take about their share of the uninterrupted run's time (drawn within 70% of
            # it, so that a run faster than the reference is still caught)
            delay = round(rng.uniform(0.0, 0.7 * stream.work * (STEPS - before) / STEPS), 3)
            if not stream.run(out, delay)["killed"]:  # finished before its kill
                break
            kills.append((delay, before, _finished_steps(out)))
        stream.run(out)  # resume to the end (or, after a run that finished, once more: nothing to do)
        _check_against(out, stream.reference)
    assert len({delay for delay, _, _ in kills}) == len(kills), kills
    print(f"uninterrupted steps {stream.work:.1f} s; kills (s after start-up, steps before, after): {kills}")


def test_sigkill_around_a_checkpoint_then_resume_gives_the_uninterrupted_results(
    stream: Stream, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # while a checkpoint is written (torch.save into a temporary file, which the kill leaves behind); any step's,
    # so that a moment missed by the polling of one short write is caught at the next
    assert stream.run(out, when="checkpoints/.step_")["killed"]
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    # just after step 1's checkpoint is in place: before its log line and the removal of step 0's memory
    assert stream.run(out, when="checkpoints/step_001.pt")["killed"]
    assert _finished_steps(out) == 2
    stream.run(out)
    _check_against(out, stream.reference)
    print(f"left in checkpoints/ by the kill during a checkpoint's writing: {left}")
