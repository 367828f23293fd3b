"""`distillkit train --resume` goes on after the last full epoch, and ends where the uninterrupted run ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distillkit import api
from distillkit.engine import loop
from distillkit.engine.checkpoint import load_checkpoint
from distillkit.errors import CheckpointError
from distillkit.jobs.train import TRAINING_STATE

CONFIG = {
    "device": "cpu",
    "data": {"name": "synthetic", "image_size": 32, "batch_size": 8, "augment": True,
             "synthetic": {"num_classes": 3, "train_per_class": 8, "test_per_class": 4}},
    "model": {"arch": "vgg11", "width": 0.125, "train": {"epochs": 3}, "optim": {"lr": 0.05}},
}  # fmt: skip
"""24 training images in batches of 8: 3 steps an epoch, 9 in all, with random augmentation (the resumed run
must restore the random states to draw the same crops and flips)."""


class Killed(Exception):
    """Stands for the process dying right after a training state was written."""


def test_a_run_killed_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path: Path, monkeypatch) -> None:
    whole = api.train(CONFIG, tmp_path / "whole")
    saved = loop.save_fit_state

    def die_after_first_epoch(*args, **kwargs) -> None:
        saved(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(loop, "save_fit_state", die_after_first_epoch)
    with pytest.raises(Killed):
        api.train(CONFIG, tmp_path / "killed")
    state = load_checkpoint(tmp_path / "killed" / TRAINING_STATE)
    assert (state["step"], state["epoch"], state["steps"]) == (3, 1, 9)
    assert not (tmp_path / "killed" / "model.pt").exists()
    monkeypatch.setattr(loop, "save_fit_state", saved)
    resumed = api.train(CONFIG, tmp_path / "killed", resume=True)
    assert resumed.accuracy == whole.accuracy
    a, b = (load_checkpoint(tmp_path / run / "model.pt") for run in ("whole", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    assert load_checkpoint(tmp_path / "killed" / TRAINING_STATE)["step"] == 9
    report = json.loads((tmp_path / "killed" / "report.json").read_text())
    assert (
        report["train_samples"]
        == json.loads((tmp_path / "whole" / "report.json").read_text())["train_samples"]
    )


def test_a_training_state_of_another_length_is_refused(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from distillkit.config import OptimConfig
    from distillkit.engine.fit_state import Resumable

    model = torch.nn.Linear(4, 2)
    data = DataLoader(TensorDataset(torch.randn(8, 4), torch.tensor([0, 1] * 4)), batch_size=4)
    state = Resumable(tmp_path / "state.pt", model)
    loop.fit(loop.ClassifierObjective(model), data, 4, OptimConfig(), torch.device("cpu"), resumable=state)
    assert load_checkpoint(state.path)["steps"] == 4
    with pytest.raises(CheckpointError, match=r"another run \(4 steps, this one has 6\)"):
        loop.fit(
            loop.ClassifierObjective(model), data, 6, OptimConfig(), torch.device("cpu"), resumable=state
        )
