"""The class-incremental stream runner: results contract, memory budget, resume, errors before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY_INCREMENTAL, interrupt_at, tiny

from distillkit.cli import run
from distillkit.engine.device import step_seed
from distillkit.errors import ConfigError
from distillkit.incremental.evaluation import Evaluator
from distillkit.incremental.memory import ExemplarMemory
from distillkit.incremental.results import StreamResults
from distillkit.incremental.state import StreamState
from distillkit.incremental.step_data import StepData
from distillkit.jobs.incremental import StreamRun, run_incremental


def test_icarl_results_contract_and_budget(tmp_path: Path) -> None:
    results = run_incremental(tiny(), tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["accuracy_matrix"] == results["accuracy_matrix"]
    # iCaRL's own classifier (NME) on top, the CNN beside it under `cnn`
    for key in ("method", "classifier", "classes_per_step", "accuracy_matrix", "avg_incremental_accuracy",
                "final_accuracy", "forgetting", "bwt", "cnn", "memory", "seconds_per_step", "config", "seed"):  # fmt: skip
        assert key in on_disk, key
    assert on_disk["classes_per_step"] == [2, 2, 2]
    matrix = on_disk["accuracy_matrix"]
    assert [len(row) for row in matrix] == [1, 2, 3]
    assert all(0 <= a <= 100 for row in matrix for a in row)
    assert on_disk["classifier"] == "nme" and "nme" not in on_disk
    assert [len(row) for row in on_disk["cnn"]["accuracy_matrix"]] == [1, 2, 3]
    # the budget holds after every step; the memory is split evenly over the classes seen (clips of 4 frames)
    assert [m["frames"] for m in on_disk["memory_per_step"]] == [48, 48, 48]
    assert [m["videos"] for m in on_disk["memory_per_step"]] == [12, 12, 12]
    memory = ExemplarMemory.load(tmp_path / "memory" / "step_002")
    assert memory.frames_per_class() == {c: 8 for c in range(6)}
    assert memory.bytes_on_disk() == on_disk["memory"]["bytes"]
    assert not (tmp_path / "memory" / "step_001").exists()  # only the last finished step's folder stays
    assert (tmp_path / "accuracy_per_step.png").is_file() and (tmp_path / "accuracy_matrix.png").is_file()


def test_lwf_and_finetune_store_nothing(tmp_path: Path) -> None:
    for method in ("lwf", "finetune"):
        results = run_incremental(tiny(method={"name": method}), tmp_path / method)
        assert results["memory"] == {"frames": 0, "bytes": 0, "videos": 0}
        assert results["nme"] is None
        assert not (tmp_path / method / "memory").exists()


@pytest.mark.parametrize("owner, where", [(StepData, "train_set"), (Evaluator, "evaluate")])
def test_resume_gives_the_uninterrupted_results(tmp_path: Path, monkeypatch, owner: type, where: str) -> None:
    reference = run_incremental(tiny(), tmp_path / "full")
    with monkeypatch.context() as patch:
        interrupt_at(patch, owner, where, 2)  # "evaluate": killed after step 2 changed its memory
        with pytest.raises(KeyboardInterrupt):
            run_incremental(tiny(), tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["steps_done"] == 2
    resumed = run_incremental(tiny(), tmp_path / "cut", resume=True)
    for key in ("accuracy_matrix", "cnn", "forgetting", "avg_incremental_accuracy"):  # iCaRL: NME on top
        assert resumed[key] == reference[key], key
    assert [m["frames"] for m in resumed["memory_per_step"]] == [48, 48, 48]
    assert resumed["memory"]["videos"] == reference["memory"]["videos"]


def test_step_seeds_keep_their_numbers() -> None:
    # a step's global seed, batch order and memory augmentation use stream 0, class-balanced fine-tuning's
    # batch order stream 1; other numbers would change the results of every run
    assert [step_seed(7, step) for step in range(3)] == [7000, 7001, 7002]
    assert step_seed(7, 2, stream=1) == 7003 and step_seed(0, 0) == 0


def test_errors_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="budget"):
        StreamRun(tiny(memory={"budget_frames": 20}), tmp_path)  # 6 classes need 24 frames of 4-frame clips
    with pytest.raises(ConfigError, match="asks for 8 classes.*only 6"):
        StreamRun(tiny(scenario={"base": 2, "increment": 2, "num_steps": 3}), tmp_path)
    with pytest.raises(ConfigError, match="exemplar means.*budget_frames"):
        StreamRun(tiny(memory={"budget_frames": 0}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'temprature'"):
        StreamRun(tiny(method={"name": "lwf", "options": {"temprature": 2}}), tmp_path)
    with pytest.raises(ConfigError, match="unknown method 'icarl2'.*registered"):
        StreamRun(tiny(method={"name": "icarl2"}), tmp_path)


def test_resume_refuses_another_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(StreamResults, "write", lambda self, state, figures: {})
    cfg = tiny(method={"name": "finetune"})
    cfg.scenario.num_steps = 0
    StreamRun(cfg, tmp_path).run()
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        StreamRun(cfg, tmp_path).run()
    other = tiny(method={"name": "finetune"})
    other.scenario.num_steps = 0
    other.train.base.steps = 4
    with pytest.raises(ConfigError, match=r"different config \(differs at: train\.base\.steps\)"):
        StreamRun(other, tmp_path, resume=True).run()


def test_cli_incremental_and_compare(tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY_INCREMENTAL))
    for seed in (0, 1):
        argv = ["incremental", str(config), "--out", str(tmp_path / f"s{seed}"), "--set", f"seed={seed}"]
        assert run([*argv, "--set", "scenario.num_steps=1", "--set", "method.name=finetune"]) == 0
    assert run(["compare", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "finetune" in table and " ± " in table


def test_nme_means_come_from_the_stored_exemplars(tmp_path: Path) -> None:
    import torch
    import torch.nn.functional as F

    from distillkit.incremental.data import ClassSubset
    from distillkit.incremental.memory import MemoryDataset
    from distillkit.models.factory import build_video_model

    stream = StreamRun(tiny(), tmp_path / "run")
    model = build_video_model(stream.cfg.model, 6, 4).eval()
    subset = ClassSubset(stream.data.train_eval, stream.scenario.seen(0), stream.scenario)
    memory = ExemplarMemory(tmp_path / "mem", 48, 4)
    for c in (0, 1):
        picked = [i for i, label in enumerate(subset.labels) if label == c][:2]
        memory.add_class(c, [(subset.video_id(i), subset.raw_clip(i), [0, 1, 2, 3]) for i in picked])
    means = stream.evaluator.class_means(model, memory)
    data = MemoryDataset(memory, stream.data.test.transform)
    with torch.no_grad():
        feats = torch.stack(
            [F.normalize(model.forward_features(data[i][0][None])["pooled"][0], dim=0) for i in range(4)]
        )
    expected = F.normalize(torch.stack([feats[:2].mean(0), feats[2:].mean(0)]), dim=1)
    assert torch.allclose(means, expected, atol=1e-5)


def test_base_model_is_shared_between_methods_of_one_head(tmp_path: Path) -> None:
    first = tiny(method={"name": "finetune"})
    first.scenario.num_steps = 1
    reference = run_incremental(first, tmp_path / "finetune")
    reuse = tiny()
    reuse.scenario.num_steps = 1
    reuse.train.base_model = tmp_path / "finetune"
    results = run_incremental(reuse, tmp_path / "icarl")
    assert results["cnn"]["accuracy_matrix"][0] == reference["accuracy_matrix"][0]  # the same base model
    assert results["memory_per_step"][0]["frames"] == 48  # its own memory
    cosine = tiny(method={"name": "lucir"})
    cosine.scenario.num_steps = 1
    cosine.train.base_model = tmp_path / "finetune"
    with pytest.raises(ConfigError, match="has a linear head.*needs a cosine head"):
        StreamRun(cosine, tmp_path / "lucir")
    other = tiny()
    other.scenario.num_steps = 1
    other.train.base_model = tmp_path / "finetune"
    other.train.base.steps = 5
    with pytest.raises(ConfigError, match=r"different train\.base"):
        StreamRun(other, tmp_path / "other")


def test_non_finite_loss_stops_naming_step_and_parts_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch
) -> None:
    import torch

    from distillkit.engine.loop import NonFiniteLoss
    from distillkit.incremental.methods.lwf import LwF

    original = LwF.loss

    def exploding(self, out, old, y, ctx):
        loss, parts = original(self, out, old, y, ctx)
        if ctx.step == 1:
            return loss * torch.tensor(float("nan")), {**parts, "kd": torch.tensor(float("nan"))}
        return loss, parts

    with monkeypatch.context() as patch:
        patch.setattr(LwF, "loss", exploding)
        with pytest.raises(
            NonFiniteLoss, match=r"step 1 \(icarl\): loss is nan at step 0 \(batch 0 of epoch 0\).*kd=nan"
        ):
            run_incremental(tiny(), tmp_path)
    assert (tmp_path / "checkpoints" / "step_000.pt").is_file()
    assert not (tmp_path / "checkpoints" / "step_001.pt").exists()
    resumed = run_incremental(tiny(), tmp_path, resume=True)  # the last good state goes on
    assert resumed["steps_done"] == 3


def test_base_model_recorded_before_a_config_key_existed_is_accepted(tmp_path: Path) -> None:
    """A run whose recorded config lacks a key added since (it takes its default) still gives its base model; a
    recorded key this version does not know is named."""
    first = tiny(method={"name": "finetune"})
    first.scenario.num_steps = 1
    reference = run_incremental(first, tmp_path / "finetune")
    checkpoint = tmp_path / "finetune" / "checkpoints" / "step_000.pt"
    state = StreamState.load(checkpoint)
    del state.config["data"]["probe_test_videos"]  # as a run made before the key existed recorded it
    state.save(checkpoint)
    reuse = tiny()
    reuse.scenario.num_steps = 1
    reuse.train.base_model = tmp_path / "finetune"
    results = run_incremental(reuse, tmp_path / "icarl")
    assert results["cnn"]["accuracy_matrix"][0] == reference["accuracy_matrix"][0]
    state.config["data"]["retired_key"] = 1
    state.save(checkpoint)
    with pytest.raises(ConfigError, match=r"retired_key.*does not validate with this version"):
        StreamRun(reuse, tmp_path / "again")
