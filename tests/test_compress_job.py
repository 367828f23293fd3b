"""End to end: `distillkit compress` on tiny synthetic data, and the user-facing errors."""

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from helpers import TINY_COMPRESS, run_cli
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from distillkit import api
from distillkit.compress import compress_model
from distillkit.engine.profile import count_macs


def test_compress_writes_the_output_contract(tmp_path: Path, compress_yaml: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("compress", str(compress_yaml), "--out", str(out), "--set", "pbkd.local_weight=0.5") == 0
    report = json.loads((out / "report.json").read_text())
    for who in ("teacher", "student"):
        assert set(report[who]) >= {"accuracy", "params", "macs", "latency_ms"}
        assert 0 <= report[who]["accuracy"] <= 100
        assert set(report[who]["latency_ms"]) == {"1", "4"}
    assert report["method"] == "pbkd"
    assert [s["name"] for s in report["stages"]] == [f"block {k}" for k in range(5)] + ["finetune"]
    assert all(set(s) >= {"accuracy", "params", "macs", "latency_ms"} for s in report["stages"])
    assert report["stages"][-1]["macs"] == report["student"]["macs"]
    assert report["speedup"]["macs"] == pytest.approx(report["teacher"]["macs"] / report["student"]["macs"])
    assert report["speedup"]["macs"] > 2.0
    assert set(report["baselines"]) == {"scratch", "kd", "fitnets", "at"}
    assert all(b["steps"] == 5 * 2 + 2 for b in report["baselines"].values())
    assert report["config"]["pbkd"]["local_weight"] == 0.5 and report["seed"] == 1
    assert "torch" in report["versions"] and report["device"]["type"] == "cpu"
    assert report["onnx"]["max_abs_diff"] < 1e-3
    for name in ("student.pt", "student.onnx", "teacher.pt", "accuracy_vs_macs.png"):
        assert (out / name).stat().st_size > 0
    state = torch.load(out / "student.pt", weights_only=True)
    assert any(k.startswith("blocks.4.") for k in state)
    md = (out / "report.md").read_text()  # the same figures, readable without the toolkit
    assert f"| student (PBKD) | {report['student']['accuracy']:.2f} | {report['student']['params']:,} |" in md
    assert f"| speed-up |  | {report['speedup']['params']:.2f}× | {report['speedup']['macs']:.2f}× |" in md
    assert (
        md.count("| block ") == 5
        and "| finetune |" in md
        and "![accuracy vs MACs](accuracy_vs_macs.png)" in md
    )
    assert all(f"| student ({m}) | {b['accuracy']:.2f} |" in md for m, b in report["baselines"].items())

    # the trained teacher loads back as `teacher.checkpoint`, skipping its training
    out2 = tmp_path / "run2"
    args = ["--set", f"teacher.checkpoint={out / 'teacher.pt'}", "--set", "baselines.methods=[]"]
    assert run_cli("compress", str(compress_yaml), "--out", str(out2), *args) == 0
    report2 = json.loads((out2 / "report.json").read_text())
    assert report2["teacher"]["accuracy"] == report["teacher"]["accuracy"]
    assert report2["training"]["teacher_seconds"] == 0.0


def test_bad_input_fails_with_one_line(
    tmp_path: Path, compress_yaml: Path, capsys: pytest.CaptureFixture
) -> None:
    cases = [
        (["--set", "pbkd.stage.stepz=3"], "unknown key 'pbkd.stage.stepz'"),
        (["--set", "data.name=cifar10", "--set", f"data.root={tmp_path / 'nowhere'}"], "does not exist"),
        (["--set", "blocks=[features.3, features.99]"], "no module named 'features.99'"),
        (["--set", "teacher.arch=vgg99"], "unknown model arch 'vgg99'"),
    ]
    wrong = tmp_path / "wrong.pt"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    cases.append((["--set", f"teacher.checkpoint={wrong}"], "does not match the model"))
    for i, (args, expected) in enumerate(cases):
        code = run_cli("compress", str(compress_yaml), "--out", str(tmp_path / f"bad{i}"), *args)
        err = capsys.readouterr().err.strip()
        assert code == 2, args
        assert expected in err, err
        assert err.startswith("distillkit: error:") and "\n" not in err
        assert not (tmp_path / f"bad{i}" / "teacher.pt").exists(), args  # failed before training the teacher


def test_python_api_compresses_a_users_model() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.stage = nn.Sequential(
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU()
            )
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.stage(self.stem(x)))

    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TensorDataset(torch.randn(16, 3, 12, 12), torch.randint(0, 3, (16,)))
    loader = DataLoader(data, batch_size=8)
    student = compress_model(model, ["stem", "stage"], loader, steps_per_stage=2)
    assert student(torch.randn(2, 3, 12, 12)).shape == (2, 3)
    # one-conv blocks keep their last (only) conv at the teacher's width (`plain: internal`, the config's
    # default): nothing to thin, so each student block is a copy of its teacher block
    assert count_macs(student, (1, 3, 12, 12)) == count_macs(model, (1, 3, 12, 12))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    restored = compress_model(model, ["stem", "stage"], loader, steps_per_stage=2, plain="restore")
    assert [b[0].out_channels for b in restored.blocks] == [8, 16]  # half the filters, then a 1×1 back


def _vgg_like() -> nn.Module:
    layers: list[nn.Module] = []
    for c_in, c_out in [(3, 16), (16, 16), (16, 32), (32, 32)]:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers[:6], nn.MaxPool2d(2), *layers[6:], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 3))  # fmt: skip


def test_python_api_meets_a_macs_target() -> None:
    """A user with an `nn.Module` of their own asks for a MACs reduction and gets a student that meets it; a
    ratio and a reduction together are refused."""
    torch.manual_seed(0)
    model = _vgg_like().eval()
    data = TensorDataset(torch.randn(16, 3, 12, 12), torch.randint(0, 3, (16,)))
    loader = DataLoader(data, batch_size=8)
    student = compress_model(model, ["6", "12"], loader, steps_per_stage=1, macs_reduction=2.5)
    got = count_macs(model, (1, 3, 12, 12)) / count_macs(student, (1, 3, 12, 12))
    assert got >= 2.5
    wide = compress_model(model, ["6", "12"], loader, steps_per_stage=1, ratio=1.0)
    assert count_macs(wide, (1, 3, 12, 12)) == count_macs(model, (1, 3, 12, 12))
    with pytest.raises(ValueError, match="ratio or macs_reduction"):
        compress_model(model, ["6", "12"], loader, steps_per_stage=1, ratio=0.5, macs_reduction=2.5)


def test_python_api_fine_tunes_the_student_when_asked() -> None:
    """`finetune_steps` trains the whole student after the stages: from the same seed, the stages give the same
    student, and the fine-tune then moves its head (the stages never train it)."""
    model = _vgg_like().eval()
    data = TensorDataset(torch.randn(16, 3, 12, 12), torch.randint(0, 3, (16,)))
    students = []
    for steps in (0, 2):
        torch.manual_seed(0)
        loader = DataLoader(data, batch_size=8, shuffle=True)
        students.append(compress_model(model, ["6", "12"], loader, steps_per_stage=1, finetune_steps=steps))
    plain, tuned = students
    head = model[-1].weight  # the stages leave the teacher's head as it is; the fine-tune trains it
    assert [torch.equal(p, head) for p in plain.head.parameters() if p.shape == head.shape] == [True]
    assert [torch.equal(p, head) for p in tuned.head.parameters() if p.shape == head.shape] == [False]
    assert not tuned.training


def test_the_teacher_is_never_modified(
    tmp_path: Path, compress_yaml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluation, profiling and compute accounting must not leave the teacher's batch norms training: the
    teacher that the stages, the fine-tune and the baselines distil from is bitwise the one saved."""
    import distillkit.jobs.compress as job

    teachers = []
    real = job.KDFinetuneObjective

    def recording(student, teacher, *args):
        teachers.append(teacher)
        return real(student, teacher, *args)

    monkeypatch.setattr(job, "KDFinetuneObjective", recording)
    out = tmp_path / "run"
    assert run_cli("compress", str(compress_yaml), "--out", str(out), "--set", "baselines.methods=[kd]") == 0
    saved = torch.load(out / "teacher.pt", weights_only=True)
    (teacher,) = teachers
    state = {re.sub(r"^(blocks\.\d+|head)\.", "", k): v for k, v in teacher.state_dict().items()}
    assert len(state) == len(saved) and all(torch.equal(v, saved[k]) for k, v in state.items())


def test_evaluation_restores_every_modules_own_mode() -> None:
    from distillkit.engine.loop import evaluate
    from distillkit.models.blocks import block_shapes, split_model

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    model.eval()
    net = split_model(model, ["3"])
    assert not net.training and not any(m.training for m in net.modules())  # the split keeps the mode
    net.train()
    net.blocks[0].get_submodule("1").eval()  # a frozen batch norm inside a training wrapper
    modes = [m.training for m in net.modules()]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = TensorDataset(torch.randn(8, 1, 6, 6), torch.zeros(8, dtype=torch.long))
    evaluate(net, DataLoader(data, batch_size=4), torch.device("cpu"))
    block_shapes(net, torch.randn(2, 1, 6, 6))
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_macs_target_is_met_and_an_unreachable_one_fails_before_training(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        TINY_COMPRESS.replace("baselines: {methods: [scratch, kd, fitnets, at]}", "baselines: {methods: []}")
    )
    out = tmp_path / "run"
    assert run_cli("compress", str(cfg), "--out", str(out), "--set", "student.macs_reduction=3") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["speedup"]["macs"] >= 3 and 0 < report["student_ratio"] < 0.5
    assert (
        run_cli("compress", str(cfg), "--out", str(tmp_path / "far"), "--set", "student.macs_reduction=5000")
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "student.macs_reduction: 5000× fewer MACs is out of reach" in err
        and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "far" / "teacher.pt").exists()  # refused before the teacher trained


def test_a_cifar_resnet_teacher_compresses_to_its_macs_target(tmp_path: Path) -> None:
    """The CIFAR ResNets serve images too: blocks `auto` cut the stem (at its ReLU) and each stage, and the
    residual student meets the MACs target asked for."""
    cfg = yaml.safe_load(TINY_COMPRESS)
    cfg["teacher"].update(arch="resnet20", width=0.5)
    cfg.update(student={"macs_reduction": 2.0}, baselines={"methods": ["kd"]}, export_onnx=False)
    api.compress(cfg, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["blocks"] == ["relu", "layer1", "layer2", "layer3"]
    assert report["speedup"]["macs"] >= 2.0
    assert [s["block"] for s in report["stages"][:4]] == [0, 1, 2, 3]


def test_a_kept_copy_skips_its_stage_and_its_steps(tmp_path: Path) -> None:
    """`pbkd.copies: keep`: the ResNet stem on grey images is copied from the teacher (`copy_if_costlier`); its
    stage trains 0 steps, and PBKD and the baselines train one stage's steps fewer than with `train`."""
    steps = {}
    for copies in ("train", "keep"):
        cfg = yaml.safe_load(TINY_COMPRESS)
        cfg["teacher"].update(arch="resnet20", width=0.5)
        # the stem's one conv keeps its width (`plain: internal`): its student would cost what it costs
        cfg.update(student={"ratio": 0.75}, baselines={"methods": ["kd"]}, export_onnx=False)
        cfg["pbkd"]["copies"] = copies
        api.compress(cfg, tmp_path / copies)
        report = json.loads((tmp_path / copies / "report.json").read_text())
        assert report["stages"][0]["block"] == 0
        assert report["stages"][0]["steps"] == (0 if copies == "keep" else 2)
        assert report["baselines"]["kd"]["steps"] == report["training"]["pbkd_steps"]
        steps[copies] = report["training"]["pbkd_steps"]
    assert steps == {"train": 4 * 2 + 2, "keep": 3 * 2 + 2}


def test_plain_internal_student_meets_its_macs_target_and_loads_back(tmp_path: Path) -> None:
    """`student.plain: internal` through the job: no 1×1 restoring conv in the VGG student, the MACs target met,
    KD from the same start (`kd_inherit`) on the same architecture, and `load_student` rebuilds it."""
    cfg = yaml.safe_load(TINY_COMPRESS)
    cfg.update(
        student={"plain": "internal", "macs_reduction": 2.5},
        baselines={"methods": ["kd_inherit"]},
        export_onnx=False,
    )
    result = api.compress(cfg, tmp_path / "run")
    assert result.macs_ratio >= 2.5
    student = api.load_student(tmp_path / "run")
    convs = [m for m in student.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8 and all(c.kernel_size == (3, 3) for c in convs)  # VGG-11's eight 3×3 convs
    state = torch.load(tmp_path / "run" / "student.pt", weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in student.state_dict().items())
    assert student(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
