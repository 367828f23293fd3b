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


@pytest.mark.parametrize("family", ["VGG-16", "ResNet-18"])
def test_the_student_meets_the_families_macs_target_at_every_width(bench, family) -> None:
    config, reduction = bench.FAMILIES[family]
    for width in (0.125,):
        teacher, student, shape = bench.pair(config, width, reduction)
        assert shape[0] == 1  # grey images
        ratio = count_macs(teacher, (1, *shape)) / count_macs(student, (1, *shape))
        assert ratio >= reduction
        x = torch.randn(2, *shape)
        with torch.no_grad():
            assert student(x).shape == teacher(x).shape == (2, 10)
        assert len(student.blocks) == len(teacher.blocks) and not student.training


def test_the_table_has_one_row_per_family_and_width(bench) -> None:
    ops = {op: 1.0 for op in bench.OPS}
    row = {"width": 0.5, "macs_ratio": 3.0, "ms": {"teacher": 30.0, "student": 15.0}, "speedup": 2.0,
           "share": 2.0 / 3.0, "ops": {"teacher": ops, "student": ops}}  # fmt: skip
    text = bench.markdown({"VGG-16": [row], "ResNet-18": [row]}, rounds=5)
    assert "| VGG-16 | 0.5 | 3.00 | 30.0 | 15.0 | 2.00 | 0.67 | 1.0 / 1.0 | 1.0 / 1.0 | 1.0 / 1.0 |" in text
    assert text.count("| ResNet-18 |") == 1
