"""PBKD of video networks (`distillkit compress` with `task: video`): blocks cut between TSM residual units, student
units that keep the temporal shift and the receptive field, a teacher read from a run folder, the report, resume."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import TINY_INCREMENTAL, refused, run_cli

import distillkit.compress.pbkd as pbkd
from distillkit import api
from distillkit.compress.receptive_field import receptive_field
from distillkit.compress.student import design_student, is_copy, ratio_for_macs
from distillkit.compress.video import load_video_teacher, teacher_data
from distillkit.config import VideoCompressConfig, load_compress_config
from distillkit.engine.profile import count_macs
from distillkit.errors import ConfigError, SplitError
from distillkit.incremental.memory import ExemplarMemory
from distillkit.jobs.compress import VideoCompressionRun
from distillkit.models.blocks import BlockwiseNet, block_shapes
from distillkit.models.tsm import VideoResNet
from distillkit.models.video_blocks import ClipBlock, frames_seen, shift_convs, split_video_model

T = 4
DATA = {
    "name": "synthetic",
    "num_segments": T,
    "batch_size": 8,
    "eval_batch_size": 16,
    "synthetic": {"num_classes": 3, "train_per_class": 8, "test_per_class": 4, "frames": T, "size": 16},
}
TEACHER_RUN = {
    "task": "video",
    "device": "cpu",
    "data": DATA,
    "model": {"arch": "resnet18", "width": 0.125, "shift_div": 4},
    "train": {"steps": 3},
    "optim": {"name": "adamw", "lr": 0.002},
}
"""A `distillkit train` video run that trains in seconds: the teacher of the compress tests."""


def _compress_tree(teacher_run: Path) -> dict:
    return {
        "task": "video",
        "seed": 1,
        "device": "cpu",
        "data": DATA,
        "teacher": {"from_run": str(teacher_run)},
        "student": {"macs_reduction": 2.0},
        "pbkd": {"stage": {"steps": 2}, "finetune": {"enabled": True, "budget": {"steps": 2}}},
        "baselines": {"methods": ["scratch", "kd", "fitnets", "at"]},
        "profile": {"latency_batches": [2], "latency_repeats": 1},
        "export_onnx": True,
    }


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("video") / "teacher"
    api.train(copy.deepcopy(TEACHER_RUN), out)
    return out


def _tsm(shift: bool = True, width: float = 0.25, arch: str = "resnet18") -> VideoResNet:
    torch.manual_seed(0)
    return VideoResNet(arch, 5, T, width=width, shift=shift, shift_div=4).eval()


def _student(teacher: BlockwiseNet, ratio: float, design: str = "thin", init: str = "random") -> BlockwiseNet:
    shapes = block_shapes(teacher, torch.zeros(2, T, 3, 16, 16))
    blocks = design_student(teacher.blocks, shapes, design, ratio, init, "internal")
    return BlockwiseNet(blocks, copy.deepcopy(teacher.head), teacher.names)


# ------------------------------------------------------------------------------------------------ the student
def test_cutting_a_tsm_between_units_computes_what_it_computes() -> None:
    model = _tsm()
    net = split_video_model(model, ["maxpool", "layer1.1", "layer2", "layer3.0", "layer4"])
    x = torch.randn(3, T, 3, 16, 16)
    assert torch.equal(net(x), model(x))
    assert all(isinstance(b, ClipBlock) for b in net.blocks)
    with pytest.raises(SplitError, match="no module named 'layer1.0.conv2' runs"):  # units are never cut
        split_video_model(model, ["layer1.0.conv2"])


@pytest.mark.parametrize("design", ["thin", "depthwise"])
def test_student_units_shift_where_the_teachers_do_with_the_same_fold(design: str) -> None:
    teacher = split_video_model(_tsm())
    student = _student(teacher, 0.5, design)
    for t_block, s_block in zip(teacher.blocks, student.blocks, strict=True):
        t_shifts, s_shifts = shift_convs(t_block), shift_convs(s_block)
        assert len(s_shifts) == len(t_shifts)  # one per residual unit that has it (none in the stem)
        for (_, t), (_, s) in zip(t_shifts, s_shifts, strict=True):
            assert (s.num_segments, s.shift_div) == (t.num_segments, t.shift_div)
            assert s.in_channels // s.shift_div == t.in_channels // t.shift_div > 0  # the same channels move
    assert sum(len(shift_convs(b)) for b in teacher.blocks) == 8  # ResNet-18: 8 units, all shifting
    # and the shift acts: after layer1's two units, a change at the last frame reaches two frames back, no further
    x = torch.randn(1, T, 3, 16, 16)
    y = x.clone()
    y[:, -1] += 1.0
    stem, layer1 = student.eval().blocks[0], student.blocks[1]
    before, after = layer1(stem(x)), layer1(stem(y))
    assert torch.equal(before[:, 0], after[:, 0]) and not torch.equal(before[:, 1], after[:, 1])


def test_a_tsn_student_has_no_shift_and_frames_stay_apart() -> None:
    teacher = split_video_model(_tsm(shift=False))
    student = _student(teacher, 0.5)
    assert not any(shift_convs(b) for b in student.blocks)
    assert frames_seen(student.blocks, T) == [1] * len(student.blocks)


@pytest.mark.parametrize("design", ["thin", "depthwise"])
def test_each_student_block_has_its_teacher_blocks_spatial_receptive_field(design: str) -> None:
    teacher = split_video_model(_tsm(), ["maxpool", "layer1", "layer2.0", "layer2", "layer3", "layer4"])
    student = _student(teacher, 0.25, design)
    fields = []
    for t_block, s_block in zip(teacher.blocks, student.blocks, strict=True):
        rf = receptive_field(t_block.frames)
        assert receptive_field(s_block.frames) == rf
        assert receptive_field(s_block) == rf  # the clip wrapper leaves it as it is
        fields.append(rf.size)
    assert fields[:3] == [(3, 3), (9, 9), (7, 7)]  # stem 3×3; two units of two 3×3; a unit of stride 2


def test_frames_seen_grow_by_two_per_shifting_unit() -> None:
    teacher = split_video_model(_tsm(), ["maxpool", "layer1.0", "layer1", "layer2"])
    student = _student(teacher, 0.5)
    assert frames_seen(teacher.blocks, 8) == [1, 3, 5, 8]  # at most the clip's frames
    assert frames_seen(student.blocks, 8) == frames_seen(teacher.blocks, 8)


def test_the_reassembled_student_classifies_clips() -> None:
    teacher = split_video_model(_tsm())
    student = _student(teacher, 0.5, init="inherit")
    out = student.eval()(torch.randn(3, T, 3, 16, 16))
    assert out.shape == (3, 5)
    assert student.head.classifier is not teacher.head.classifier  # the head is a copy, as in the teacher


def test_a_stem_whose_student_would_be_the_same_conv_is_a_copy_the_stages_can_keep() -> None:
    """With `plain: internal` the one-conv stem keeps its width, so its student costs what it does and is a copy
    of it (`copy_if_costlier`); `is_copy` must see that through the `ClipBlock` around the traced frame layers
    (a copied `fx.GraphModule` gets a class of its own), or `pbkd.copies: keep` would train the copy."""
    teacher = split_video_model(_tsm())
    shapes = block_shapes(teacher, torch.zeros(2, T, 3, 16, 16))
    students = design_student(teacher.blocks, shapes, "thin", 0.5, "inherit", "internal", True, "internal")
    assert isinstance(students[0], ClipBlock)
    assert type(students[0].frames) is not type(teacher.blocks[0].frames)  # a class of its own
    assert is_copy(students[0], teacher.blocks[0])
    assert not any(is_copy(s, t) for s, t in zip(students[1:], teacher.blocks[1:], strict=True))
    with torch.no_grad():
        students[0].frames.conv1.weight[0, 0, 0, 0] += 1.0
    assert not is_copy(students[0], teacher.blocks[0])  # the values count, not only the structure


def test_a_macs_reduction_target_is_met_per_clip() -> None:
    teacher = split_video_model(_tsm(width=0.5))
    shapes = block_shapes(teacher, torch.zeros(2, T, 3, 16, 16))
    clip = (1, T, 3, 16, 16)
    head = count_macs(teacher, clip) - sum(
        count_macs(b, (1, *s[0][1:])) for b, s in zip(teacher.blocks, shapes, strict=True)
    )
    ratio, reached = ratio_for_macs(teacher.blocks, shapes, "thin", 2.5, head)
    student = _student(teacher, ratio)
    measured = count_macs(teacher, clip) / count_macs(student, clip)
    assert measured == pytest.approx(reached) and measured >= 2.5
    assert ratio < 1


# ------------------------------------------------------------------------------------------- the job's input
def test_from_run_refuses_a_missing_unfinished_or_image_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def compress(folder: Path) -> str:
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump(_compress_tree(folder)))
        return refused(capsys, "compress", config, "--out", tmp_path / f"out_{folder.name}")

    assert compress(tmp_path / "nowhere").startswith(
        f"teacher.from_run: {tmp_path / 'nowhere'} is not a folder"
    )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    assert "is not a distillkit run folder (no run.json)" in compress(foreign)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({"job": "train", "config": TEACHER_RUN}))
    assert (
        compress(unfinished)
        == f"teacher.from_run: the train run in {unfinished} has not finished (no report.json)"
    )
    image = tmp_path / "image"
    image.mkdir()
    (image / "run.json").write_text(json.dumps({"job": "train", "config": {}}))
    (image / "report.json").write_text(json.dumps({"config": {"task": "image"}}))
    assert "holds an image classifier (task: image), not a video model" in compress(image)
    incremental = tmp_path / "incremental"
    incremental.mkdir()
    (incremental / "run.json").write_text(json.dumps({"job": "incremental", "config": {}}))
    (incremental / "results.json").write_text(
        json.dumps({"classes_per_step": [2, 2], "class_order": [0, 1, 2, 3, 4, 5]})
    )
    assert "has not finished (it has learnt 4 of its 6 classes)" in compress(incremental)
    assert not list(tmp_path.glob("out_*"))  # each refused before its run folder was claimed


def test_a_video_config_is_read_by_its_task(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_compress_tree(tmp_path)))
    cfg = load_compress_config(path, ["pbkd.stage.steps=5"])
    assert isinstance(cfg, VideoCompressConfig) and cfg.pbkd.stage.steps == 5
    assert (
        cfg.pbkd.optim.name == cfg.pbkd.finetune.optim.name == cfg.baselines.optim.name == "adamw"
    )  # video defaults: an optimiser that trains
    with pytest.raises(ConfigError, match="'teacher': Field required"):
        load_compress_config(None, ["task=video"])


def test_data_must_match_the_teacher_run(teacher_run: Path, tmp_path: Path) -> None:
    tree = _compress_tree(teacher_run)
    tree["data"] = {**DATA, "num_segments": 2}
    with pytest.raises(ConfigError, match="^data.num_segments is 2, the teacher"):
        VideoCompressionRun(VideoCompressConfig.model_validate(tree), tmp_path / "a", quiet=True).run()
    tree["data"] = {**DATA, "synthetic": {**DATA["synthetic"], "num_classes": 4}}
    with pytest.raises(ConfigError, match="^data: the data set has 4 classes, the teacher"):
        VideoCompressionRun(VideoCompressConfig.model_validate(tree), tmp_path / "b", quiet=True).run()


# -------------------------------------------------------------------------------------------------- the job
def test_compress_video_writes_the_report(teacher_run: Path, tmp_path: Path) -> None:
    result = api.compress(_compress_tree(teacher_run), tmp_path / "run")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    t, s = report["teacher"], report["student"]
    teacher_report = json.loads((teacher_run / "report.json").read_text())
    assert t["accuracy"] == teacher_report["accuracy"]  # clip-level, evaluated as training evaluates it
    assert t["macs"] / s["macs"] >= 2.0 and report["speedup"]["macs"] == t["macs"] / s["macs"]
    assert t["macs"] == count_macs(api.load_model(teacher_run), (1, T, 3, 16, 16))  # MACs per clip
    for entry in (t, s):
        assert 0 <= entry["accuracy"] <= 100
        assert set(entry["clips_per_s"]) == {"2"} and entry["clips_per_s"]["2"] > 0
        assert entry["clips_per_s"]["2"] == pytest.approx(2000.0 / entry["latency_ms"]["2"])
    assert set(report["baselines"]) == {"scratch", "kd", "fitnets", "at"}
    video = report["video"]
    assert video["teacher_kind"] == "train" and video["num_segments"] == T
    assert [b["name"] for b in video["blocks"]] == ["maxpool", "layer1", "layer2", "layer3", "layer4"]
    for b in video["blocks"]:
        assert b["receptive_field"] == b["student_receptive_field"]
        assert b["shifts"] == b["student_shifts"] == (0 if b["name"] == "maxpool" else 2)
    assert [b["frames_seen"] for b in video["blocks"]] == [1, 4, 4, 4, 4]
    assert (tmp_path / "run" / "student.onnx").is_file() and report["onnx"]["max_abs_diff"] < 1e-4
    assert "## What each block sees" in (tmp_path / "run" / "report.md").read_text()
    assert result.student.accuracy == s["accuracy"]
    assert video["clip_shape"] == [T, 3, 16, 16]
    loaded, clips = api.load_student(tmp_path / "run"), torch.randn(2, T, 3, 16, 16)
    assert count_macs(loaded, (1, T, 3, 16, 16)) == s["macs"]
    saved = torch.load(tmp_path / "run" / "student.pt", weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())
    assert loaded(clips).shape == (2, 3)


def test_the_command_compresses_a_video_model_from_a_config_file(teacher_run: Path, tmp_path: Path) -> None:
    """`distillkit compress VIDEO.yaml --out DIR` (the path a user takes): the report of a video run, the MACs
    target met, the student loads back and classifies clips."""
    tree = {**_compress_tree(teacher_run), "baselines": {"methods": []}, "export_onnx": False}
    config = tmp_path / "video.yaml"
    config.write_text(yaml.safe_dump(tree))
    assert run_cli("compress", str(config), "--out", str(tmp_path / "run")) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["video"]["num_segments"] == T and report["video"]["clip_shape"] == [T, 3, 16, 16]
    assert report["teacher"]["macs"] / report["student"]["macs"] >= 2.0
    assert [b["shifts"] for b in report["video"]["blocks"]] == [0, 2, 2, 2, 2]
    assert api.load_student(tmp_path / "run")(torch.randn(2, T, 3, 16, 16)).shape == (2, 3)


class Crash(Exception):
    """Stands for a kill in the middle of a phase."""


def test_a_crashed_video_run_resumes_to_the_uninterrupted_result(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _compress_tree(teacher_run)
    tree |= {"baselines": {"methods": ["kd"]}, "export_onnx": False}
    cfg = VideoCompressConfig.model_validate(tree)
    reference = VideoCompressionRun(cfg, tmp_path / "reference", quiet=True).run()
    real, calls = pbkd.fit, []

    def crashing(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            raise Crash
        return result

    with monkeypatch.context() as patch:  # killed at the end of stage 3's training, before it was recorded
        patch.setattr(pbkd, "fit", crashing)
        with pytest.raises(Crash):
            VideoCompressionRun(cfg, tmp_path / "crashed", quiet=True).run()
    resumed = VideoCompressionRun(cfg, tmp_path / "crashed", quiet=True, resume=True).run()

    def stable(tree: object) -> object:
        if isinstance(tree, dict):
            return {
                k: stable(v)
                for k, v in tree.items()
                if not any(w in k for w in ("latency", "seconds", "created", "time", "per_s"))
            }
        return [stable(v) for v in tree] if isinstance(tree, list) else tree

    assert stable(resumed) == stable(reference)
    mine, theirs = (
        torch.load(d / "student.pt", weights_only=True)
        for d in (tmp_path / "crashed", tmp_path / "reference")
    )
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_an_incremental_runs_final_model_compresses_on_the_classes_it_has_seen(tmp_path: Path) -> None:
    tree = copy.deepcopy(TINY_INCREMENTAL)
    tree["method"] = {"name": "lucir"}
    api.incremental(tree, tmp_path / "inc")
    results = json.loads((tmp_path / "inc" / "results.json").read_text())
    config = {**_compress_tree(tmp_path / "inc"), "data": tree["data"], "baselines": {"methods": []}}
    config["export_onnx"] = False
    config["pbkd"] = {"stage": {"steps": 1}}
    report = api.compress(config, tmp_path / "run")
    raw = json.loads((tmp_path / "run" / "report.json").read_text())
    assert raw["video"]["teacher_kind"] == "incremental" and raw["video"]["classes"] == 6
    assert "6 classes the incremental run has seen" in raw["video"]["trained_on"]
    # accuracy on all classes seen, labels in the run's class order: the run's own final figure
    assert report.teacher.accuracy == pytest.approx(results["final_accuracy"])


def test_an_incremental_runs_final_model_compresses_on_its_memory_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture, teacher_run: Path
) -> None:
    tree = copy.deepcopy(TINY_INCREMENTAL)
    tree["method"] = {"name": "lucir"}
    api.incremental(tree, tmp_path / "inc")
    memory = ExemplarMemory.load(tmp_path / "inc" / "memory" / "step_002")
    assert memory.classes == list(range(6)) and 0 < memory.videos < 6 * 6  # fewer clips than the videos seen
    config = {**_compress_tree(tmp_path / "inc"), "data": tree["data"], "baselines": {"methods": ["kd"]}}
    config |= {"export_onnx": False, "pbkd": {"stage": {"steps": 1}}}
    config["teacher"] = {"from_run": str(tmp_path / "inc"), "train_on": "memory"}
    cfg = load_compress_config(_yaml(tmp_path / "c.yaml", config), [])
    assert isinstance(cfg, VideoCompressConfig)
    run = VideoCompressionRun(cfg, tmp_path / "run")
    run.found = load_video_teacher(tmp_path / "inc")
    data, said = teacher_data(cfg, run.found)
    # the training clips are the memory's exemplars, labelled in the run's outputs; the test set is every test video
    assert len(data.train) == memory.videos
    assert sorted(data.train.labels) == sorted(e.label for c in memory.classes for e in memory.exemplars(c))
    assert len(data.test) == 6 * 3 and said.startswith(
        f"the {memory.videos} exemplars of the incremental run's"
    )
    report = api.compress(config, tmp_path / "run")
    raw = json.loads((tmp_path / "run" / "report.json").read_text())
    assert raw["video"]["trained_on"] == said and raw["video"]["classes"] == 6
    results = json.loads((tmp_path / "inc" / "results.json").read_text())
    assert report.teacher.accuracy == pytest.approx(results["final_accuracy"])

    def refusal(name: str, teacher: dict) -> str:
        return refused(capsys, "compress", _yaml(tmp_path / f"{name}.yaml", config | {"teacher": teacher}),
                       "--out", tmp_path / name)  # fmt: skip

    assert refusal("train", {"from_run": str(teacher_run), "train_on": "memory"}) == (
        f"teacher.train_on: memory needs an incremental run's teacher; {teacher_run} holds a train run "
        "(give train_on: all)"
    )
    shutil.rmtree(tmp_path / "inc" / "memory")
    assert refusal("gone", config["teacher"]) == (
        f"teacher.train_on: memory: teacher.from_run: the run keeps no memory after its last step "
        f"({tmp_path / 'inc' / 'memory' / 'step_002'})"
    )
    assert not (tmp_path / "gone").exists() and not (tmp_path / "train").exists()


def _yaml(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(json.loads(json.dumps(tree))))
    return path


def test_baselines_train_every_weight_of_their_student(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shortcuts (and a stem copied when the student's would cost more) are fresh copies of the frozen teacher's
    parts: a baseline must unfreeze them, or they stay at their random initialisation."""
    import distillkit.jobs.compress as job

    real, frozen = job.fit, {}

    def recording(objective, *args, **kwargs):
        if kwargs.get("desc", "").startswith("baseline"):
            named = objective.trainable_module().named_parameters()
            frozen[kwargs["desc"]] = [n for n, p in named if not p.requires_grad]
        return real(objective, *args, **kwargs)

    monkeypatch.setattr(job, "fit", recording)
    tree = _compress_tree(teacher_run) | {"baselines": {"methods": ["scratch", "kd"]}, "export_onnx": False}
    tree["pbkd"] = {"stage": {"steps": 1}}
    VideoCompressionRun(VideoCompressConfig.model_validate(tree), tmp_path / "run", quiet=True).run()
    assert frozen == {"baseline scratch": [], "baseline kd": []}
