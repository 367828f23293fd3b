"""A stream run's state and folder: the checkpoint round trip (the same file the runner wrote before
`StreamState` existed, and such a file resumes), what a killed run leaves cleared, and results written whole."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from distillkit.config import dump_config
from distillkit.engine.checkpoint import save_checkpoint
from distillkit.errors import CheckpointError
from distillkit.incremental.methods import build_method
from distillkit.incremental.state import CHECKPOINT_KEYS, StreamFolder, StreamState
from distillkit.jobs.incremental import StreamRun, run_incremental
from distillkit.models.factory import build_video_model
from tests.test_incremental import tiny

Step = tuple[list[float], list[float] | None, float, dict[str, int], list[dict[str, float]]]
"""What a finished step records: CNN and NME rows, seconds, memory statistics, training history."""

STEPS: list[Step] = [
    ([75.0], [70.0], 1.5, {"frames": 48, "bytes": 9000, "videos": 12}, [{"step": 3, "ce": 1.25}]),
    ([50.0, 62.5], [55.0, 60.0], 2.25, {"frames": 48, "bytes": 9100, "videos": 12}, []),
    (
        [25.0, 37.5, 87.5],
        None,
        3.0,
        {"frames": 44, "bytes": 8800, "videos": 11},
        [{"step": 3, "ce": 0.5, "kd": 0.25}],
    ),
]


def previous_runner_checkpoint(path: Path, steps: list[Step], model: dict, config: dict) -> dict[str, Any]:
    """The last step's checkpoint as the runner wrote it before `StreamState`: its run-state dict, five lists
    appended to step by step, then the model, the config and the step added with `dict.update`, saved by
    `save_checkpoint`. Returns that dict."""
    state: dict[str, Any] = {"cnn": [], "nme": [], "seconds": [], "memory": [], "history": []}
    for step, (cnn, nme, seconds, memory, history) in enumerate(steps):
        state["cnn"].append(cnn)
        state["nme"].append(nme)
        state["seconds"].append(seconds)
        state["memory"].append(memory)
        state["history"].append(history)
        state.update(model=model, config=config, step=step)
    save_checkpoint(state, path)
    return state


def recorded(steps: list[Step], model: dict, config: dict) -> StreamState:
    state = StreamState()
    for step, (cnn, nme, seconds, memory, history) in enumerate(steps):
        state.record_step(step, cnn, nme, seconds, memory, history, model, config)
    return state


def members(path: Path) -> dict[str, bytes]:
    """The files inside a `torch.save` archive, without the archive's top folder (named after the temporary file
    it was written to)."""
    with zipfile.ZipFile(path) as archive:
        return {name.partition("/")[2]: archive.read(name) for name in archive.namelist()}


def test_a_checkpoint_is_the_file_the_previous_runner_wrote(tmp_path: Path) -> None:
    model = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}
    config = {"seed": 3, "method": {"name": "x"}}
    old = previous_runner_checkpoint(tmp_path / "old.pt", STEPS, model, config)
    state = recorded(STEPS, model, config)
    assert list(state.to_checkpoint()) == list(old) == list(CHECKPOINT_KEYS)
    state.save(tmp_path / "new.pt")
    old_files, new_files = members(tmp_path / "old.pt"), members(tmp_path / "new.pt")
    assert set(new_files) >= {"data.pkl", "data/0", "data/1"}
    assert new_files == old_files  # the same pickle and tensor storages, byte for byte

    loaded = StreamState.load(tmp_path / "old.pt")
    for key in ("cnn", "nme", "seconds", "memory", "history", "config", "step"):
        assert getattr(loaded, key) == old[key], key
    assert loaded.model.keys() == model.keys()
    assert all(torch.equal(loaded.model[k], v) for k, v in model.items())
    assert loaded.steps_done == 3
    assert loaded.log_entry(1, 4) == {
        "step": 1, "classes_seen": 4, "accuracy_row": [50.0, 62.5], "nme_row": [55.0, 60.0], "seconds": 2.25,
        "memory": STEPS[1][3], "loss": None,
    }  # fmt: skip
    assert loaded.log_entry(2, 6)["loss"] == {"step": 3, "ce": 0.5, "kd": 0.25}  # the last logging interval's


def test_a_run_resumes_from_a_checkpoint_the_previous_runner_wrote(tmp_path: Path) -> None:
    cfg = tiny(method={"name": "lwf"})  # no exemplar memory: the checkpoint is the whole state
    net = build_video_model(cfg.model, 2, cfg.data.num_segments)
    net.head = build_method("lwf", {}).build_head(net.feature_dim, 6)
    steps = [
        (cnn, None, seconds, {"frames": 0, "bytes": 0, "videos": 0}, h) for cnn, _, seconds, _, h in STEPS
    ]
    out = tmp_path / "run"
    previous_runner_checkpoint(out / "checkpoints" / "step_002.pt", steps, net.state_dict(), dump_config(cfg))
    results = run_incremental(cfg, out, resume=True)  # the last step is done: nothing left to train
    assert results["steps_done"] == 3 and results["accuracy_matrix"] == [s[0] for s in steps]
    assert results["final_accuracy"] == pytest.approx(50.0)  # the last row's mean (classes of one size)
    assert results["seconds_per_step"] == [s[2] for s in steps] and results["nme"] is None
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["accuracy_row"] for e in log] == [s[0] for s in steps]
    assert [e["classes_seen"] for e in log] == [2, 4, 6]
    assert [e["loss"] for e in log] == [{"step": 3, "ce": 1.25}, None, {"step": 3, "ce": 0.5, "kd": 0.25}]


def test_a_checkpoint_of_something_else_is_refused_naming_what_it_lacks(tmp_path: Path) -> None:
    save_checkpoint({"model": {"w": torch.zeros(1)}, "config": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not the checkpoint of a class-incremental step "
                       r"\(no cnn, nme, seconds, memory, history, step\)"):  # fmt: skip
        StreamState.load(tmp_path / "other.pt")
    save_checkpoint([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        StreamState.load(tmp_path / "list.pt")
    cfg = tiny()
    cfg.train.base_model = tmp_path / "other.pt"
    with pytest.raises(CheckpointError, match="not the checkpoint of a class-incremental step"):
        StreamRun(cfg, tmp_path / "run")


def test_steps_are_recorded_in_order_and_only_finished_ones_checkpointed() -> None:
    state = StreamState()
    with pytest.raises(ValueError, match="no finished step"):
        state.to_checkpoint()
    with pytest.raises(ValueError, match="step 1 recorded after 0 finished steps"):
        state.record_step(1, *STEPS[0], {}, {})
    state.record_step(0, *STEPS[0], {}, {"seed": 0})
    assert state.steps_done == 1 and state.step == 0 and state.to_checkpoint()["cnn"] == [[75.0]]


def test_the_folder_clears_what_a_kill_left_and_writes_whole_files(tmp_path: Path) -> None:
    folder = StreamFolder(tmp_path)
    assert folder.finished_steps() == [] and folder.last_step() is None
    for step in (0, 1):
        save_checkpoint({"step": step}, folder.checkpoint(step))
    (folder.checkpoints / ".step_002.pt.x1y2.tmp").write_bytes(b"half")  # a checkpoint killed while written
    for step in (
        0,
        1,
        2,
    ):  # the previous step's (killed before its removal) and the next one's (half written)
        folder.memory(step).mkdir(parents=True)
    assert folder.finished_steps() == [0, 1] and folder.last_step() == 1
    folder.clear_leftovers(2)
    assert sorted(p.name for p in folder.checkpoints.iterdir()) == ["step_000.pt", "step_001.pt"]
    assert sorted(p.name for p in (tmp_path / "memory").iterdir()) == ["step_001"]
    folder.remove_memory(1)
    assert not folder.memory(1).exists()

    folder.append_log({"step": 0})
    folder.append_log({"step": 1, "cut": "short"})
    folder.rewrite_log([{"step": 0}])
    (tmp_path / ".results.json.tmp").write_text("left by a kill")
    folder.write_text("results.json", '{"steps_done": 2}')
    assert (tmp_path / "log.jsonl").read_text() == '{"step": 0}\n'
    assert json.loads((tmp_path / "results.json").read_text()) == {"steps_done": 2}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
