"""The Python API: each job returns what it wrote, typed; models load back and reproduce the run's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import distillkit
from distillkit import api
from distillkit.cli import main
from distillkit.config import CompressConfig
from distillkit.data.images import build_image_datasets, make_loaders
from distillkit.data.videos import build_video_datasets, video_loader
from distillkit.engine.checkpoint import read_state_dict
from distillkit.engine.loop import evaluate, predict
from distillkit.engine.metrics import topk_accuracy
from distillkit.errors import ConfigError, DistillkitError
from distillkit.incremental.config import IncrementalConfig
from distillkit.jobs.incremental import StreamRun

CPU = torch.device("cpu")
IMAGES = {"name": "synthetic", "image_size": 32, "batch_size": 16,
          "synthetic": {"num_classes": 3, "train_per_class": 16, "test_per_class": 8, "channels": 1}}  # fmt: skip
COMPRESS = {
    "seed": 1,
    "device": "cpu",
    "data": IMAGES,
    "teacher": {"arch": "vgg11", "width": 0.125, "train": {"steps": 4}},
    "pbkd": {"stage": {"steps": 1}, "finetune": {"enabled": True, "budget": {"steps": 1}}},
    "baselines": {"methods": ["kd"]},
    "profile": {"latency_batches": [1], "latency_repeats": 1},
    "export_onnx": False,
}
TRAIN = {"device": "cpu", "data": IMAGES, "model": {"arch": "vgg11", "width": 0.125, "train": {"steps": 3}}}
VIDEO = {
    "task": "video",
    "device": "cpu",
    "model": {"arch": "resnet18", "width": 0.125, "shift_div": 4},
    "train": {"steps": 2},
    "data": {"num_segments": 4, "batch_size": 4, "eval_batch_size": 8,
             "synthetic": {"num_classes": 3, "train_per_class": 4, "test_per_class": 2, "size": 16}},
}  # fmt: skip
INCREMENTAL = {
    "device": "cpu",
    "data": {"num_segments": 4, "batch_size": 8, "eval_batch_size": 16,
             "synthetic": {"num_classes": 6, "train_per_class": 6, "test_per_class": 3, "frames": 4, "size": 16}},
    "model": {"width": 0.125, "shift_div": 4},
    "scenario": {"base": 2, "increment": 2},
    "memory": {"budget_frames": 48},
    "train": {"base": {"steps": 2}, "step": {"steps": 2}, "optim": {"name": "adamw", "lr": 0.002}},
    "method": {"name": "icarl"},
}  # fmt: skip


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line `distillkit …` prints on a refusal (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distillkit: error: ") and "\n" not in err
    return err.removeprefix("distillkit: error: ")


def test_compress_returns_the_report_and_the_student_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = api.compress(COMPRESS, out, overrides=["pbkd.local_weight=0.5"])
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["pbkd"]["local_weight"] == 0.5
    assert isinstance(result, api.CompressResult) and result == api.compress_result(report, out)
    assert result.student.accuracy == report["student"]["accuracy"]
    assert (
        result.teacher.macs == report["teacher"]["macs"] and result.student.macs == report["student"]["macs"]
    )
    assert result.macs_ratio == report["speedup"]["macs"] > 1
    assert [s.accuracy for s in result.stages] == [s["accuracy"] for s in report["stages"]]
    assert [s.name for s in result.stages][-1] == "finetune" and result.stages[-1].block is None
    assert result.baselines["kd"].accuracy == report["baselines"]["kd"]["accuracy"]
    assert result.student_path == out / "student.pt" and result.teacher_path == out / "teacher.pt"
    assert result.onnx_path is None and result.report_path == out / "report.json"

    student = distillkit.load_student(out)
    assert not student.training
    cfg = CompressConfig.model_validate(COMPRESS | {"pbkd": {**COMPRESS["pbkd"], "local_weight": 0.5}})
    data = build_image_datasets(cfg.data, cfg.seed)
    _, test_loader = make_loaders(data, cfg.data, cfg.seed)
    assert evaluate(student, test_loader, CPU) == result.student.accuracy  # exactly: the job's own eval path
    assert student(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    by_file = api.load_student(out / "student.pt")
    assert all(
        torch.equal(a, b)
        for a, b in zip(student.state_dict().values(), by_file.state_dict().values(), strict=True)
    )


def test_a_run_recorded_before_student_plain_loads_with_the_restore_design(tmp_path: Path) -> None:
    """Runs recorded before `student.plain` existed have no such key and were built with the 1×1 restore; the
    default is `internal` now, and their students still load."""
    out = tmp_path / "run"
    api.compress(COMPRESS, out, overrides=["student.plain=restore", "baselines.methods=[]"])
    path = out / "report.json"
    report = json.loads(path.read_text())
    del report["config"]["student"]["plain"]
    path.write_text(json.dumps(report))
    student = api.load_student(out)  # the state dict checked against the rebuilt student, key by key
    convs_1x1 = [m for m in student.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(convs_1x1) == 5  # one restoring conv per VGG-11 block
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            student.state_dict().values(), read_state_dict(out / "student.pt").values(), strict=True
        )
    )


def test_train_images_returns_the_report_and_the_model_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(TRAIN))
    out = tmp_path / "run"
    result = api.train(path, out)
    report = json.loads((out / "report.json").read_text())
    assert isinstance(result, api.TrainResult) and result == api.train_result(report, out)
    assert result.accuracy == report["accuracy"] and result.macs == report["macs"] > 0 and result.top5 is None
    assert result.model_path == out / "model.pt"
    model = api.load_model(out)
    cfg = api._train_config(TRAIN, [])
    data = build_image_datasets(cfg.data, cfg.seed)
    _, test_loader = make_loaders(data, cfg.data, cfg.seed)
    assert not model.training and evaluate(model, test_loader, CPU) == result.accuracy
    # resuming a finished run returns its result without training
    assert api.train(path, out, resume=True) == result


def test_train_video_reports_top5_and_the_model_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = api.train(VIDEO, out, overrides=["seed=3"])
    report = json.loads((out / "report.json").read_text())
    assert result == api.train_result(report, out) and report["seed"] == 3
    assert result.top5 == report["top5"] == 100.0 and result.macs is None
    cfg = api._train_config(VIDEO, ["seed=3"])
    model = api.load_model(out)
    data = build_video_datasets(cfg.data, cfg.seed)
    logits, targets = predict(model, video_loader(data.test, cfg.data, train=False, seed=cfg.seed), CPU)
    assert topk_accuracy(logits, targets, 1) == result.accuracy


def test_incremental_returns_the_results_and_the_model_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = IncrementalConfig.model_validate(INCREMENTAL)
    result = api.incremental(cfg, out)
    results = json.loads((out / "results.json").read_text())
    assert isinstance(result, api.IncrementalResult) and result == api.incremental_result(results, out)
    assert result.own.classifier == "nme" and result.other is not None and result.other.classifier == "cnn"
    # results.json: the own classifier (NME) on top, the CNN beside it under `cnn`
    assert results["classifier"] == "nme" and "nme" not in results
    assert result.cnn.accuracy_matrix == results["cnn"]["accuracy_matrix"]
    assert result.cnn.avg_incremental_accuracy == results["cnn"]["avg_incremental_accuracy"]
    assert result.nme is not None and result.nme.accuracy_matrix == results["accuracy_matrix"]
    assert result.own.forgetting == results["forgetting"]
    assert (
        result.own.avg_incremental_accuracy != result.cnn.avg_incremental_accuracy
    )  # the two are told apart
    assert result.classes_per_step == [2, 2, 2] and result.memory_frames == results["memory"]["frames"]
    assert [p.name for p in result.checkpoints] == ["step_000.pt", "step_001.pt", "step_002.pt"]

    stream = StreamRun(cfg, out)  # builds the data and scenario only; writes nothing
    model = api.load_incremental_model(out)
    assert not model.training
    cnn_row, _ = stream.evaluator.evaluate(2, model, None)
    assert cnn_row == results["cnn"]["accuracy_matrix"][-1]
    first = api.load_incremental_model(out, step=0)
    assert stream.evaluator.evaluate(0, first, None)[0] == results["cnn"]["accuracy_matrix"][0]
    with pytest.raises(DistillkitError, match=r"no checkpoint of step 7; finished steps: \[0, 1, 2\]"):
        api.load_incremental_model(out, step=7)


def test_refusals_are_the_cli_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "train-run"
    api.train(TRAIN, run)
    config = tmp_path / "compress.yaml"
    config.write_text(yaml.safe_dump(COMPRESS))
    with pytest.raises(ConfigError) as refused:
        api.compress(config, run)
    assert str(refused.value) == cli_error(capsys, "compress", str(config), "--out", str(run))
    assert "holds a train run (run.json), not a compress run" in str(refused.value)
    inc = tmp_path / "inc.yaml"
    inc.write_text(yaml.safe_dump(INCREMENTAL))
    with pytest.raises(ConfigError) as refused:
        api.incremental(inc, run)
    assert str(refused.value) == cli_error(capsys, "incremental", str(inc), "--out", str(run))
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text(yaml.safe_dump(TRAIN))
    with pytest.raises(ConfigError) as refused:  # same config, neither --resume nor --overwrite
        api.train(train_cfg, run)
    assert str(refused.value) == cli_error(capsys, "train", str(train_cfg), "--out", str(run))
    with pytest.raises(ConfigError, match="unknown key 'pbkd.lokal_weight'"):
        api.compress(COMPRESS, tmp_path / "new", overrides=["pbkd.lokal_weight=2"])
    assert not (tmp_path / "new").exists()


def test_loaders_refuse_other_folders_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "train-run"
    api.train(TRAIN, run)
    for load, job in ((api.load_student, "compress"), (api.load_incremental_model, "incremental")):
        with pytest.raises(DistillkitError) as refused:
            load(run)
        message = str(refused.value)
        assert (
            "\n" not in message
            and f"holds a train run, not a{'n' if job[0] == 'i' else ''} {job} run" in message
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillkitError, match="is not a distillkit run folder, not a train run"):
        api.load_model(tmp_path / "empty")
    with pytest.raises(DistillkitError, match="not a folder"):
        api.load_student(tmp_path / "missing")
