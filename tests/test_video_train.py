"""`distillkit train` with `task: video`, `distillkit data synth|convert`, top-k and confusion metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from distillkit.cli import run
from distillkit.config import TrainConfig, VideoTrainConfig, load_train_config
from distillkit.data.videos import ClipArrayDataset, build_video_datasets
from distillkit.engine.loop import cycle, predict
from distillkit.engine.metrics import confusion_matrix, topk_accuracy
from distillkit.errors import ConfigError, DataError


def test_topk_and_confusion_by_hand() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    targets = torch.tensor([0, 2, 1, 1])
    assert topk_accuracy(logits, targets, 1) == 25.0  # only the first
    assert topk_accuracy(logits, targets, 2) == 75.0  # the last one has class 1 ranked third
    assert topk_accuracy(logits, targets, 5) == 100.0  # k clipped to 3 classes
    assert confusion_matrix(logits, targets, 3) == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]


def test_train_config_dispatches_on_task(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("task: video\nmodel: {width: 0.25}\n")
    assert isinstance(load_train_config(path), VideoTrainConfig)
    path.write_text("model: {width: 0.25}\n")
    assert isinstance(load_train_config(path), TrainConfig)
    with pytest.raises(ConfigError, match="unknown key 'data.segments'.*num_segments"):
        load_train_config(path, ["task=video", "data.segments=4"])
    with pytest.raises(ConfigError, match="'task' must be 'image' or 'video'"):
        load_train_config(path, ["task=audio"])


class _FrameSum(nn.Module):
    """Logits from a clip: [sum of frame means, -sum]; records the clip lengths it saw."""

    num_segments = 2

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape[1])
        s = x.mean(dim=(2, 3, 4)).sum(1)
        return torch.stack([s, -s], 1)


def test_predict_averages_test_views() -> None:
    # 1 clip of 3 views × 2 frames with frame means 1..6: view sums 3, 7, 11 → mean logit 7
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 6, 1, 1, 1).expand(1, 6, 1, 2, 2).contiguous()
    model = _FrameSum()
    logits, targets = predict(model, DataLoader(TensorDataset(x, torch.tensor([0]))), torch.device("cpu"))
    assert model.seen == [2]
    assert logits.tolist() == [[7.0, -7.0]] and targets.tolist() == [0]


def test_cycle_gives_each_epoch_fresh_draws() -> None:
    videos = np.random.default_rng(0).integers(0, 255, (2, 16, 4, 4, 3), dtype=np.uint8)
    data = ClipArrayDataset(videos, np.array([0, 1]), num_segments=4, train=True)
    batches = cycle(DataLoader(data, batch_size=2))
    first, second = next(batches)[0], next(batches)[0]
    assert data.epoch == 1
    assert not torch.equal(first, second)  # new random offsets in the second epoch


def test_synthetic_split_matches_counts() -> None:
    cfg = VideoTrainConfig.model_validate(
        {"data": {"synthetic": {"num_classes": 3, "train_per_class": 4, "test_per_class": 2, "size": 16}}}
    )
    data = build_video_datasets(cfg.data, seed=0)
    assert len(data.train) == 12 and len(data.test) == 6
    assert sorted(data.test.labels) == [0, 0, 1, 1, 2, 2]
    clip, label = data.test[0]
    assert clip.shape == (8, 3, 16, 16) and label == 0
    assert abs(clip.mean().item()) < 2  # normalised


TINY = {
    "task": "video",
    "device": "cpu",
    "model": {"arch": "resnet18", "width": 0.125, "shift_div": 4},
    "train": {"steps": 3},
    "data": {"num_segments": 4, "batch_size": 4, "eval_batch_size": 8},
}


def _write_config(path: Path, tree: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(tree))
    return path


def test_train_video_on_synthetic_writes_report(tmp_path: Path) -> None:
    tree = {**TINY, "data": {**TINY["data"], "test_clips": 2}}
    tree["data"]["synthetic"] = {"num_classes": 3, "train_per_class": 4, "test_per_class": 2, "size": 16}
    assert run(["train", str(_write_config(tmp_path / "c.yaml", tree)), "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["test_videos"] == 6 and report["num_classes"] == 3
    assert sum(map(sum, report["confusion_matrix"])) == 6
    assert report["top5"] == 100.0  # 3 classes
    assert 0 <= report["accuracy"] <= 100 and report["skipped"]["count"] == 0
    assert (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "run" / "model.pt").is_file()
    md = (tmp_path / "run" / "report.md").read_text()
    assert f"| top-1 (%) | {report['accuracy']:.2f} |" in md and "| top-5 (%) | 100.00 |" in md
    assert "| skipped videos | 0 |" in md and "![confusion matrix](confusion_matrix.png)" in md


def test_data_synth_then_train_from_lists_with_skip_policy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = ["data", "synth", "--out", str(data), "--num-classes", "2", "--videos-per-class", "5"]
    assert run([*argv, "--frames", "8", "--size", "16", "--test-fraction", "0.4"]) == 0
    train_lines = (data / "train.txt").read_text().splitlines()
    assert len(train_lines) == 6 and len((data / "test.txt").read_text().splitlines()) == 4
    # corrupt one training video: cut the file in half
    broken = data / train_lines[1].split()[0]
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 3])
    tree = {**TINY, "data": {**TINY["data"], "name": "list", "root": str(data)}}
    tree["data"].update(train_list=str(data / "train.txt"), test_list=str(data / "test.txt"))
    tree["data"]["classes"] = str(data / "classes.txt")
    config = _write_config(tmp_path / "c.yaml", tree)

    with pytest.raises(DataError, match=r"train\.txt:2"):
        run(["train", str(config), "--out", str(tmp_path / "fail")])
    assert run(["train", str(config), "--out", str(tmp_path / "skip"), "--set", "data.on_error=skip"]) == 0
    report = json.loads((tmp_path / "skip" / "report.json").read_text())
    assert report["skipped"]["count"] == 1
    assert report["skipped"]["videos"][0]["source"].endswith("train.txt:2")
    assert report["class_names"] == (data / "classes.txt").read_text().split()


def test_data_convert_ssv2_to_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(
        ["data", "synth", "--out", str(data), "--num-classes", "2", "--videos-per-class", "2", "--size", "16"]
    )
    out = tmp_path / "val.txt"
    argv = ["data", "convert", "ssv2", str(data / "labels.json"), str(data / "train.json"), "--out", str(out)]
    names = ["--classes-out", str(tmp_path / "names.txt")]
    assert run([*argv, "--path-format", "{id}.mp4", *names, "--root", str(data)]) == 0
    assert out.read_text() == (data / "train.txt").read_text()
    assert (tmp_path / "names.txt").read_text() == (data / "classes.txt").read_text()
    with pytest.raises(ConfigError, match="--path-format applies to kinetics and ssv2"):
        run(["data", "convert", "list", str(data / "train.txt"), "--out", str(out), "--path-format", "x"])
    (tmp_path / "bad.txt").write_text("videos/a.mp4 0\n\nvideos/b.mp4 one\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: label must be an integer"):
        run(["data", "convert", "list", str(tmp_path / "bad.txt"), "--out", str(out)])


def test_short_videos_policy_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(["data", "synth", "--out", str(data), "--num-classes", "2", "--videos-per-class", "2", "--frames", "3",
         "--size", "16", "--test-fraction", "0.5"])  # fmt: skip
    tree = {**TINY, "data": {**TINY["data"], "name": "list", "root": str(data), "short_videos": "error"}}
    tree["data"].update(train_list=str(data / "train.txt"), test_list=str(data / "test.txt"))
    config = _write_config(tmp_path / "c.yaml", tree)
    with pytest.raises(DataError, match=r"train\.txt:[12]: video has 3 frames, fewer than num_segments=4"):
        run(["train", str(config), "--out", str(tmp_path / "out")])
    tree["data"]["short_videos"] = "loop"  # TSN's default: frames repeat
    assert run(["train", str(_write_config(config, tree)), "--out", str(tmp_path / "out")]) == 0
