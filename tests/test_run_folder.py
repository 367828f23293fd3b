"""A run folder belongs to one run: `--out` is claimed with run.json before any work, and every refusal leaves the
folder as it was (byte for byte) with one line on stderr and exit status 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import TINY_INCREMENTAL, cli, refused

from distillkit.config import CompressConfig, load_config, load_train_config
from distillkit.engine import run_folder
from distillkit.engine.run_folder import MARKER, claim, config_hash
from distillkit.errors import ConfigError


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path → bytes); symlinks as their target."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            files[rel] = f"-> {os.readlink(path)}".encode()
        elif path.is_file():
            files[rel] = path.read_bytes()
    return files


@pytest.fixture
def configs(tmp_path: Path, train_yaml: Path, compress_yaml: Path) -> dict[str, Path]:
    paths = {"train": train_yaml, "compress": compress_yaml, "incremental": tmp_path / "incremental.yaml"}
    paths["incremental"].write_text(yaml.safe_dump(TINY_INCREMENTAL))
    return paths


@pytest.fixture
def trained(tmp_path: Path, configs: dict[str, Path], capsys: pytest.CaptureFixture) -> Path:
    """A finished train run."""
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", configs["train"], "--out", out)
    assert code == 0, err
    return out


def test_marker_written(trained: Path, configs: dict[str, Path]) -> None:
    marker = json.loads((trained / MARKER).read_text())
    cfg = load_train_config(configs["train"], [])
    assert marker["job"] == "train" and marker["config_hash"] == config_hash(cfg)
    assert marker["config"]["model"]["arch"] == "vgg11"
    assert {"model.pt", "report.json", "report.md"} <= set(os.listdir(trained))


def test_same_job_twice_refused_before_any_work(trained: Path, configs, capsys) -> None:
    before = snapshot(trained)
    assert refused(capsys, "train", configs["train"], "--out", trained) == (
        f"--out {trained}: already holds this train run (same config); pass --resume to continue it, "
        "--overwrite to start it again, or choose another --out"
    )
    assert refused(capsys, "train", configs["train"], "--out", trained, "--set", "seed=3") == (
        f"--out {trained}: holds a train run with a different config (differs at: seed); choose another --out, "
        "or pass --overwrite to replace it"
    )
    assert refused(capsys, "train", configs["train"], "--out", trained, "--set", "seed=3", "--resume") == (
        f"--resume: {trained} was run with a different config (differs at: seed); resume with the same config, "
        "or choose another --out"
    )
    assert refused(capsys, "train", configs["train"], "--out", trained, "--resume", "--overwrite") == (
        "--resume and --overwrite contradict each other: pass one of them"
    )
    assert snapshot(trained) == before


def test_other_jobs_refused_before_any_work(trained: Path, configs, capsys) -> None:
    before = snapshot(trained)
    for job in ("compress", "incremental"):
        for extra in ([], ["--resume"]):
            assert refused(capsys, job, configs[job], "--out", trained, *extra) == (
                f"--out {trained}: holds a train run ({MARKER}), not a {job} run; choose another --out, or pass "
                "--overwrite to delete it and start afresh"
            )
    assert snapshot(trained) == before  # no teacher.pt, results.json, checkpoints/ ...


def test_train_resume_finished_is_a_no_op(trained: Path, configs, capsys) -> None:
    before = snapshot(trained)
    code, out, _ = cli(capsys, "train", configs["train"], "--out", trained, "--resume")
    assert code == 0 and "finished (report.json): nothing to do" in out
    assert snapshot(trained) == before


def test_train_resume_unfinished_goes_on_from_its_training_state(trained: Path, configs, capsys) -> None:
    report = json.loads((trained / "report.json").read_text())
    (trained / "report.json").unlink()  # as a run killed after training, before its report, leaves it
    code, out, err = cli(capsys, "train", configs["train"], "--out", trained, "--resume")
    assert code == 0, err
    assert "resume: going on with the train run" in out and "after its last full epoch" in out
    assert json.loads((trained / "report.json").read_text())["accuracy"] == report["accuracy"]


def test_overwrite_replaces_a_run_of_any_job(tmp_path: Path, configs, capsys) -> None:
    out, outside = tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not ours")
    claim(out, "compress", load_config(configs["compress"], CompressConfig))  # a compress run's folder
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "compress.pt").write_bytes(b"x")
    (out / "report.md").write_text("compress report")
    os.symlink(outside, out / "link")  # a link out of the folder: unlinked, its target untouched
    code, _, err = cli(capsys, "train", configs["train"], "--out", out, "--overwrite", "--set", "seed=4")
    assert code == 0, err
    assert sorted(os.listdir(out)) == [
        "checkpoints",
        "metrics.jsonl",
        "model.pt",
        "report.json",
        "report.md",
        MARKER,
    ]
    assert os.listdir(out / "checkpoints") == ["train.pt"]  # the training state, not the compress run's
    assert json.loads((out / MARKER).read_text())["config"]["seed"] == 4
    assert json.loads((out / "report.json").read_text())["seed"] == 4
    assert (outside / "keep.txt").read_text() == "not ours"


def test_foreign_folder_refused_even_with_overwrite(tmp_path: Path, configs, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert refused(capsys, "train", configs["train"], "--out", out, *extra) == (
            f"--out {out}: folder is not empty and holds no {MARKER} (not a distillkit run folder); choose a new "
            "or empty folder (--overwrite only replaces distillkit runs)"
        )
    assert snapshot(out) == {"thesis.tex": b"precious"}


def test_out_must_be_a_writable_folder(tmp_path: Path, configs, capsys, monkeypatch) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert refused(capsys, "train", configs["train"], "--out", a_file) == (
        f"--out {a_file}: is a file, not a folder; give a folder to write into"
    )
    assert refused(capsys, "train", configs["train"], "--out", a_file / "sub") == (
        f"--out {a_file / 'sub'}: cannot create the folder ({a_file} is a file)"
    )
    assert refused(capsys, "train", configs["train"], "--out", "") == (
        "--out: empty path; give an output folder, e.g. --out runs/name"
    )
    assert a_file.read_text() == "x"
    # read-only folders: simulated, as root may write anywhere (the real case is tested below when not root)
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(run_folder.os, "access", lambda path, mode: Path(path) != ro)
    assert refused(capsys, "train", configs["train"], "--out", ro) == (
        f"--out {ro}: folder is not writable; give a writable folder"
    )
    assert refused(capsys, "train", configs["train"], "--out", ro / "sub") == (
        f"--out {ro / 'sub'}: cannot create the folder ({ro} is not writable)"
    )
    monkeypatch.undo()

    def no_write(*args, **kwargs):  # os.access says yes, but a real write fails (e.g. a read-only mount)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(run_folder.tempfile, "mkstemp", no_write)
    assert refused(capsys, "train", configs["train"], "--out", ro) == (
        f"--out {ro}: folder is not writable (Permission denied); give a writable folder"
    )
    monkeypatch.undo()
    assert os.listdir(ro) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (simulated above)")
def test_out_read_only_folder_for_real(tmp_path: Path, configs, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert "folder is not writable" in refused(capsys, "train", configs["train"], "--out", ro)
    finally:
        ro.chmod(0o755)


def test_marker_leftovers_and_legacy_runs(tmp_path: Path, configs) -> None:
    cfg = load_train_config(configs["train"], [])
    out = tmp_path / "killed"
    out.mkdir()
    (out / ".run.json.abc123.tmp").write_text("{")  # a marker half written when a run was killed
    assert claim(out, "train", cfg) == "new"
    other = load_train_config(configs["train"], ["seed=5"])
    assert claim(out, "compress", other) == "new"  # only a marker: that run wrote nothing, the folder is free
    assert json.loads((out / MARKER).read_text())["job"] == "compress"
    legacy = tmp_path / "legacy"  # a run from before markers, recognised by the job, resumed and then marked
    (legacy / "checkpoints").mkdir(parents=True)
    (legacy / "checkpoints" / "compress.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="holds no run.json"):
        claim(legacy, "train", cfg, resume=True)
    assert claim(legacy, "train", cfg, resume=True, legacy=lambda o: True) == "resume"
    assert json.loads((legacy / MARKER).read_text())["job"] == "train"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MARKER).write_text("[1]")
    with pytest.raises(ConfigError, match="run.json is not a distillkit run marker"):
        claim(tmp_path / "bad", "train", cfg, overwrite=True)


def test_a_folder_in_use_by_a_live_process_is_refused_and_a_dead_ones_is_taken_over(
    trained: Path, configs, capsys
) -> None:
    assert not (trained / run_folder.LOCK).exists()  # the finished run let go of its folder
    (trained / "report.json").unlink()  # unfinished: --resume would go on with it
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": live.pid, "host": socket.gethostname(), "since": "2026-12-02T10:00:00+0000"}
        (trained / run_folder.LOCK).write_text(json.dumps(lock))
        before = snapshot(trained)
        for flag in ("--resume", "--overwrite"):
            assert refused(capsys, "train", configs["train"], "--out", trained, flag) == (
                f"--out {trained}: in use by another run (process {live.pid} on {lock['host']}, since "
                f"{lock['since']}); wait for it to end or stop it (if it is gone, delete {trained / '.running'})"
            )
        assert snapshot(trained) == before
        other_host = {**lock, "host": "elsewhere"}  # cannot be checked from here: counts as live
        (trained / run_folder.LOCK).write_text(json.dumps(other_host))
        assert "in use by another run" in refused(
            capsys, "train", configs["train"], "--out", trained, "--resume"
        )
    finally:
        live.kill()
        live.wait()
    # the process is gone (as after a SIGKILL): its file is stale, and the run resumes
    (trained / run_folder.LOCK).write_text(json.dumps(lock))
    code, out, err = cli(capsys, "train", configs["train"], "--out", trained, "--resume")
    assert code == 0 and "resume: going on with the train run" in out, err
    assert (trained / "report.json").is_file() and not (trained / run_folder.LOCK).exists()


def test_the_claiming_process_holds_the_folder_until_release(tmp_path: Path, configs) -> None:
    cfg = load_train_config(configs["train"], [])
    out = tmp_path / "run"
    assert claim(out, "train", cfg) == "new"
    held = json.loads((out / run_folder.LOCK).read_text())
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
    assert claim(out, "train", cfg, resume=True) == "new"  # marker and lock only: nothing written yet
    (out / "model.pt").write_bytes(b"x")
    assert claim(out, "train", cfg, resume=True) == "resume"  # the same process may claim again what it holds
    run_folder.release(out)
    assert not (out / run_folder.LOCK).exists()
    (out / run_folder.LOCK).write_text("{")  # torn by a kill: not a holder
    assert run_folder.holder(out) is None and claim(out, "train", cfg, resume=True) == "resume"


def test_data_synth_refuses_a_non_empty_folder(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()  # an existing empty folder is fine
    argv = ["data", "synth", "--out", data, "--num-classes", "2", "--videos-per-class", "2", "--frames", "3"]
    argv += ["--size", "16"]
    code, _, err = cli(capsys, *argv)
    assert code == 0, err
    before = snapshot(data)
    assert refused(capsys, *argv) == (
        f"--out {data}: folder is not empty; data synth writes into a new or empty folder (choose another --out, "
        "or delete this one first)"
    )
    assert snapshot(data) == before
    assert refused(capsys, *argv[:3], "", *argv[4:]) == (
        "--out: empty path; give an output folder, e.g. --out runs/name"
    )
