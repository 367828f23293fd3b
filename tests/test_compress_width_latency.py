"""The width-latency benchmark (benchmarks/compress_width_latency.py): the teacher/student pair it times."""

from __future__ import annotations

import pytest
import torch
from helpers import benchmark_module

from distillkit.engine.profile import count_macs


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("compress_width_latency") as module:
        yield module


@pytest.mark.parametrize("family", ["VGG-16", "ResNet-18", "ResNet-20", "user CNN"])
def test_the_student_meets_the_families_macs_target(bench, family) -> None:
    config, reduction, options, widths = bench.FAMILIES[family]
    for width in (0.125 if len(widths) > 1 else widths[0],):
        teacher, student, shape = bench.pair(config, width, reduction, options)
        assert shape[0] == 1  # grey images
        ratio = count_macs(teacher, (1, *shape)) / count_macs(student, (1, *shape))
        assert ratio >= reduction
        x = torch.randn(2, *shape)
        with torch.no_grad():
            assert student(x).shape == teacher(x).shape == (2, 10)
        assert len(student.blocks) == len(teacher.blocks) and not student.training


def test_the_vgg_student_pools_fast_and_the_teacher_as_the_config_builds_it(bench) -> None:
    from distillkit.models.pooling import StridedMaxPool2d

    config, reduction, options, _ = bench.FAMILIES["VGG-16"]
    teacher, student, _ = bench.pair(config, 0.125, reduction, options)
    kinds = lambda net: {type(m) for m in net.modules() if isinstance(m, torch.nn.MaxPool2d)}  # noqa: E731
    assert kinds(student) == {StridedMaxPool2d} and kinds(teacher) == {torch.nn.MaxPool2d}


def test_vgg_students_keep_their_last_conv_wide_as_in_the_families_benchmark(bench) -> None:
    config, reduction, options, _ = bench.FAMILIES["VGG-16"]
    _, student, _ = bench.pair(config, 0.125, reduction, options)
    _, restoring, _ = bench.pair(config, 0.125, reduction, {"plain": "restore"})
    ones = lambda net: sum(m.kernel_size == (1, 1) for m in net.modules() if isinstance(m, torch.nn.Conv2d))  # noqa: E731
    assert ones(student) == 0 and ones(restoring) == len(student.blocks)  # one 1×1 restoring conv a block


def test_the_table_has_one_row_per_family_and_width_and_the_first_widths_convs(bench) -> None:
    ops = {op: 1.0 for op in bench.OPS}
    ops = {**ops, "aten::maximum": 0.5}
    row = {"width": 0.5, "macs_ratio": 3.0, "ms": {"teacher": 30.0, "student": 15.0, "teacher, pools fast": 27.0},
           "speedup": 2.0, "share": 2.0 / 3.0, "share_like_for_like": 0.6, "ms_channels_last": {"teacher": 24.0, "student": 10.0}, "speedup_channels_last": 2.4,
           "share_channels_last": 0.8, "ops": {"teacher": ops, "student": ops}, "convs": None,
           "share_bound": 0.9, "ms_onnxruntime": {"teacher": 20.0, "student": 8.0}, "share_onnxruntime": 2.5 / 3.0}  # fmt: skip
    first = {**row, "convs": {"teacher": {"16×32×32 → 16, 3×3": 4.0}, "student": {"16×32×32 → 6, 3×3": 4.5}}}
    text = bench.markdown({"VGG-16": [row], "ResNet-18": [first, row]}, rounds=5)
    assert (
        "| VGG-16 | 0.5 | 3.00 | 30.0 | 15.0 | 2.00 | 0.67 | 27.0 | 0.60 | 24.0 / 10.0 | 0.80 | 0.90 | 20.0 / 8.0 | "
        "0.83 | 1.0 / 1.0 | 1.5 / 1.5 | 1.0 / 1.0 |" in text
    )
    assert text.count("| ResNet-18 |") == 2
    assert (
        "| teacher | 16×32×32 → 16, 3×3 | 4.00 |" in text and "| student | 16×32×32 → 6, 3×3 | 4.50 |" in text
    )
    assert text.count("conv time (NCHW") == 1


def test_conv_time_is_keyed_by_input_output_and_kernel_with_same_shaped_convs_summed(bench) -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3, padding=1),
        torch.nn.Conv2d(5, 5, 3, padding=1),
        torch.nn.Conv2d(5, 5, 3, padding=1),
        torch.nn.Conv2d(5, 2, 1),
    ).eval()
    found = bench.conv_ms(net, torch.randn(2, 3, 6, 6))
    assert sorted(found) == ["3×6×6 → 5, 3×3", "5×6×6 → 2, 1×1", "5×6×6 → 5, 3×3"]
    assert all(v >= 0 for v in found.values())


def test_the_conv_bound_divides_the_teachers_conv_time_by_the_macs_ratio(bench) -> None:
    # teacher 40 ms, 3/4 of it in convs (30 ms); student 20 ms, half in convs (rest 10 ms); MACs ratio 3:
    # ideal student = 30 / 3 + 10 = 20 ms, bound speed-up 40 / 20 = 2
    ops = {"teacher": {"aten::conv2d": 3.0, "total": 4.0}, "student": {"aten::conv2d": 1.0, "total": 2.0}}
    assert bench.conv_bound({"teacher": 40.0, "student": 20.0}, ops, 3.0) == pytest.approx(2.0)
    # a student with no work outside its convs is bounded by the MACs ratio itself
    ops["teacher"] = ops["student"] = {"aten::conv2d": 1.0, "total": 1.0}
    assert bench.conv_bound({"teacher": 40.0, "student": 20.0}, ops, 3.0) == pytest.approx(3.0)


def test_profiled_ops_report_the_pass_wall_time_besides_each_op(bench) -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    ).eval()
    ops = bench.op_ms(net, torch.randn(2, 3, 8, 8))
    assert set(ops) == {*bench.OPS, "total"}
    assert ops["total"] > 0 and ops["aten::conv2d"] > 0


def test_onnxruntime_times_every_net_it_is_given(bench) -> None:
    nets = {"teacher": torch.nn.Conv2d(1, 4, 3).eval(), "student": torch.nn.Conv2d(1, 2, 3).eval()}
    ms = bench.onnxruntime_ms(nets, (1, 8, 8), rounds=1)
    assert set(ms) == {"teacher", "student"} and all(v > 0 for v in ms.values())


def test_the_output_sweep_times_every_width_of_every_input_and_tabulates_them(bench, monkeypatch) -> None:
    monkeypatch.setattr(bench, "SWEEP_INPUTS", ((3, 4),))
    monkeypatch.setattr(bench, "SWEEP_OUTPUTS", (2, 5))
    sweep = bench.output_sweep(rounds=1)
    assert list(sweep) == [(3, 4)] and list(sweep[(3, 4)]) == [2, 5]
    assert all(ms > 0 for ms in sweep[(3, 4)].values())
    text = bench.sweep_markdown({(3, 4): {2: 0.5, 5: 1.25}})
    assert "| input C×H×W | → 2 | → 5 |" in text and "| 3×4×4 | 0.50 | 1.25 |" in text


def test_the_blocked_ratio_by_hand(bench) -> None:
    """One basic unit 32 → 32 channels on 4×4 maps: its two 3×3 convs (32·32·9·16 MACs each) keep 16 of 32
    internal channels, so 2·147 456 MACs become 147 456; a plain net has no ratio."""
    from torchvision.models.resnet import BasicBlock

    unit = BasicBlock(32, 32).eval()
    assert bench.blocked_ratio(unit, (32, 4, 4)) == pytest.approx(2.0)
    assert bench.blocked_ratio(BasicBlock(16, 16).eval(), (16, 4, 4)) == pytest.approx(1.0)
    assert bench.blocked_ratio(torch.nn.Conv2d(3, 8, 3), (3, 4, 4)) is None
    text = bench.blocked_markdown({"ResNet": [{"width": 1.0, "macs_ratio": 2.5, "blocked_ratio": 1.67}]})
    assert "| ResNet | 1 | 2.50 | 1.67 |" in text


def test_a_frozen_net_computes_what_the_net_computes_and_wall_ms_times_every_net(bench) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten()
    ).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
        x = torch.randn(3, 1, 6, 6)
        torch.testing.assert_close(bench.frozen(net, (1, 6, 6))(x), net(x), rtol=1e-4, atol=1e-5)
    ms = bench.wall_ms({"a": net, "b": bench.frozen(net, (1, 6, 6))}, (1, 6, 6), rounds=1)
    assert set(ms) == {"a", "b"} and all(v > 0 for v in ms.values())


def test_the_variants_meet_the_macs_target_and_are_tabulated(bench) -> None:
    from distillkit.models.pooling import fast_pools

    config, reduction, options, _ = bench.FAMILIES["VGG-16"]
    teacher, student, shape = bench.pair(config, 0.125, reduction, options)
    fast_pools(teacher)
    found = bench.variants(config, 0.125, reduction, options, teacher, student, shape, rounds=1)
    assert list(found) == [*bench.VARIANTS, "TorchScript frozen"]
    assert all(v["macs_ratio"] >= reduction and v["speedup"] > 0 for v in found.values())
    row = {"width": 0.25, "macs_ratio": 3.0, "share_like_for_like": 0.6,
           "variants": {"widths in 16s": {"macs_ratio": 3.2, "speedup": 2.4}, "depthwise": {"macs_ratio": 7.0,
                        "speedup": 1.4}}}  # fmt: skip
    text = bench.variants_markdown({"VGG-16": [row]})
    assert "| Family | Width | as benchmarked | widths in 16s | depthwise |" in text
    assert "| VGG-16 | 0.25 | 0.60 (3.00×) | 0.75 (3.20×) | 0.20 (7.00×) |" in text
