"""`distillkit compress --resume`: a run that crashed in any phase goes on from its last finished phase and ends
exactly as an uninterrupted run (same student weights, same report but for wall-clock times)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers import TINY_COMPRESS, run_cli

import distillkit.compress.pbkd as pbkd
import distillkit.jobs.compress as job
from distillkit.config import CompressConfig, load_config
from distillkit.errors import ConfigError
from distillkit.jobs.compress import CompressionRun

VOLATILE = ("latency", "seconds", "created", "time")
"""Report keys holding wall-clock measurements (containing one of these), which differ from run to run."""


class Crash(Exception):
    """Stands for a kill in the middle of a phase."""


def _config(tmp_path: Path) -> Path:
    tree = yaml.safe_load(TINY_COMPRESS)
    tree["baselines"]["methods"] = ["kd", "fitnets"]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _crash_on_call(monkeypatch: pytest.MonkeyPatch, module, call: int) -> None:
    """`module.fit` trains as usual (weights and random state move on) and then raises on its `call`-th call."""
    real, calls = module.fit, []

    def fit(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(kwargs.get("desc"))
        if len(calls) == call:
            raise Crash(kwargs.get("desc"))
        return result

    monkeypatch.setattr(module, "fit", fit)


def _stable(tree: object) -> object:
    """The report without its wall-clock measurements."""
    if isinstance(tree, dict):
        return {k: _stable(v) for k, v in tree.items() if not any(w in k for w in VOLATILE)}
    if isinstance(tree, list):
        return [_stable(v) for v in tree]
    return tree


def test_a_crashed_run_resumes_to_the_uninterrupted_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(_config(tmp_path), CompressConfig)
    reference = CompressionRun(cfg, tmp_path / "reference", quiet=True).run()

    out = tmp_path / "crashed"
    with monkeypatch.context() as patch:  # killed at the end of stage 3's training, before it was recorded
        _crash_on_call(patch, pbkd, 3)
        with pytest.raises(Crash, match="stage 3: block 2"):
            CompressionRun(cfg, out, quiet=True).run()
    with pytest.raises(ConfigError, match="pass --resume"):
        CompressionRun(cfg, out, quiet=True)
    with monkeypatch.context() as patch:  # resumed, then killed again in the second baseline
        _crash_on_call(patch, job, 3)  # fit calls in the job: fine-tune, kd, fitnets
        with pytest.raises(Crash, match="baseline fitnets"):
            CompressionRun(cfg, out, quiet=True, resume=True).run()
    saved = torch.load(out / "checkpoints" / "compress.pt", weights_only=True)
    assert list(saved["phases"]) == [
        "teacher",
        *(f"stage {i}" for i in range(1, 6)),
        "finetune",
        "baseline kd",
    ]
    resumed = CompressionRun(cfg, out, quiet=True, resume=True).run()

    assert resumed["onnx"].pop("path") != reference["onnx"].pop("path")  # the only other difference
    assert _stable(resumed) == _stable(reference)
    # the teacher's training cost is the one measured when it trained (not 0, as for a loaded teacher)
    trained = saved["phases"]["teacher"]["results"]["seconds"]
    assert resumed["training"]["teacher_seconds"] == round(trained, 2) > 0
    mine, theirs = (torch.load(d / "student.pt", weights_only=True) for d in (out, tmp_path / "reference"))
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_resume_refuses_another_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config, out = _config(tmp_path), tmp_path / "run"
    fast = ["--set", "baselines.methods=[]", "--set", "pbkd.finetune.enabled=false"]
    assert run_cli("compress", str(config), "--out", str(out), *fast) == 0
    capsys.readouterr()
    again = run_cli("compress", str(config), "--out", str(out), *fast)
    other = run_cli(
        "compress", str(config), "--out", str(out), *fast, "--resume", "--set", "pbkd.local_weight=3"
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert again == other == 2
    assert errors[0].startswith("distillkit: error:") and "pass --resume" in errors[0]
    assert "differs at: pbkd.local_weight" in errors[1]
    # the same config resumes a finished run: nothing trains again, the same report comes back
    before = torch.load(out / "student.pt", weights_only=True)
    assert run_cli("compress", str(config), "--out", str(out), *fast, "--resume") == 0
    assert "resumed: stages 1–5 had finished" in capsys.readouterr().out
    after = torch.load(out / "student.pt", weights_only=True)
    assert all(torch.equal(before[k], after[k]) for k in before)
