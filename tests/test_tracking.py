"""Optional TensorBoard logging: what a run writes when it is on, nothing when it is off, a clear error without
the package, and a run that resumes whether or not it is on."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
import yaml
from helpers import TINY_INCREMENTAL

from distillkit.cli import run
from distillkit.engine.tracking import tag, tracking
from distillkit.errors import ConfigError


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]}


def test_incremental_run_logs_losses_and_accuracies_to_tensorboard(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY_INCREMENTAL, "tensorboard": True}))
    out = tmp_path / "run"
    assert run(["incremental", str(config), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    scalars = _scalars(out / "tensorboard")
    cnn = scalars["accuracy_on_classes_seen/cnn"]
    assert [s for s, _ in cnn] == [0, 1, 2]
    assert [v for _, v in cnn] == pytest.approx(results["cnn"]["accuracy_per_step"])  # iCaRL: NME on top
    nme = [v for _, v in scalars["accuracy_on_classes_seen/nme"]]
    assert nme == pytest.approx(results["accuracy_per_step"])
    assert [v for _, v in scalars["memory/frames"]] == [m["frames"] for m in results["memory_per_step"]]
    # every training run's loss parts and learning rate, under the run's description (3 steps each)
    for step_tag in ("step_0_icarl", "step_1_icarl", "step_2_icarl"):
        assert [s for s, _ in scalars[f"{step_tag}/ce"]] == [3]
        assert f"{step_tag}/lr" in scalars
    assert "step_1_icarl/kd" in scalars and "step_0_icarl/kd" not in scalars
    assert results["config"]["tensorboard"] is True
    # the same scalars as JSON lines, written whether or not TensorBoard is on
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    cnn_lines = [e for e in lines if e["group"] == "accuracy on classes seen"]
    assert [e["step"] for e in cnn_lines] == [0, 1, 2]
    assert [e["cnn"] for e in cnn_lines] == pytest.approx(results["cnn"]["accuracy_per_step"])
    step_1 = [e for e in lines if e["group"] == "step 1 (icarl)"]
    assert [e["step"] for e in step_1] == [3] and {"ce", "kd", "lr"} <= set(step_1[0])

    # resuming the finished run with logging off is the same run (no "different config" refusal)
    config.write_text(yaml.safe_dump(TINY_INCREMENTAL))
    assert run(["incremental", str(config), "--out", str(out), "--resume"]) == 0


def test_train_run_logs_its_loss_and_test_accuracy(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        "device: cpu\ntensorboard: true\n"
        "data: {name: synthetic, image_size: 32, batch_size: 8, synthetic: {num_classes: 3, train_per_class: 8, "
        "test_per_class: 4}}\n"
        "model: {arch: vgg11, width: 0.125, train: {steps: 4}, optim: {lr: 0.05}}\n"
    )
    out = tmp_path / "run"
    assert run(["train", str(config), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    scalars = _scalars(out / "tensorboard")
    assert scalars["test/accuracy"] == [(report["train_samples"], pytest.approx(report["accuracy"]))]
    assert [s for s, _ in scalars["train_vgg11/ce"]] == [4] and "train_vgg11/lr" in scalars
    md = (out / "report.md").read_text()
    assert (
        f"| top-1 (%) | {report['accuracy']:.2f} |" in md
        and f"| MACs (M) | {report['macs'] / 1e6:.2f} |" in md
    )


def test_no_tensorboard_folder_when_off(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump({**TINY_INCREMENTAL, "scenario": {"base": 2, "increment": 2, "num_steps": 1}})
    )
    assert run(["incremental", str(config), "--out", str(tmp_path / "run")]) == 0
    assert not (tmp_path / "run" / "tensorboard").exists()
    groups = {
        json.loads(line)["group"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    }
    assert groups == {"step 0 (icarl)", "step 1 (icarl)", "accuracy on classes seen", "memory"}
    assert "tensorboard" not in json.loads((tmp_path / "run" / "results.json").read_text())["config"]


def test_missing_tensorboard_package_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)
    with pytest.raises(ConfigError, match=r"tensorboard: true needs the tensorboard package"):
        with tracking(True, tmp_path):
            pass
    with tracking(False, tmp_path):  # off: nothing is imported, nothing written
        pass
    assert not (tmp_path / "tensorboard").exists()


def test_tags_are_plain() -> None:
    assert tag("step 1 (icarl)", "ce") == "step_1_icarl/ce"
    assert tag("baseline kd", "lr") == "baseline_kd/lr"
    assert tag("accuracy on classes seen", "nme") == "accuracy_on_classes_seen/nme"
