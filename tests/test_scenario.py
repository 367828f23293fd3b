"""Class-incremental scenario: class order, steps, label remapping, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillkit.errors import ConfigError, DistillkitError
from distillkit.incremental.scenario import PRESETS, Scenario, build_scenario, preset_scenario


def test_steps_follow_the_seeded_order() -> None:
    s = build_scenario(10, base=4, increment=3, seed=0)
    order = [int(c) for c in np.random.default_rng(0).permutation(10)]
    assert s.class_order == order
    assert s.steps == [order[:4], order[4:7], order[7:10]]
    assert s.num_steps == 3 and s.num_classes == 10
    assert s.classes_per_step == [4, 3, 3]
    assert s.new(1) == order[4:7]
    assert s.seen(1) == order[:7]
    assert s.seen(2) == order
    assert [s.step_of(c) for c in order] == [0] * 4 + [1] * 3 + [2] * 3
    assert (s.offset(0), s.offset(1), s.offset(2)) == (0, 4, 7)
    assert s.num_seen(1) == 7


def test_order_is_deterministic_per_seed() -> None:
    assert build_scenario(20, 5, 5, seed=3) == build_scenario(20, 5, 5, seed=3)
    assert build_scenario(20, 5, 5, seed=3).class_order != build_scenario(20, 5, 5, seed=4).class_order
    assert build_scenario(20, 5, 5, seed=None).class_order == list(range(20))


def test_explicit_order_wins_and_may_be_a_subset() -> None:
    s = build_scenario(10, base=2, increment=1, seed=5, order=[9, 3, 1, 0])
    assert s.steps == [[9, 3], [1], [0]]
    with pytest.raises(ConfigError, match="outside 0..9"):
        build_scenario(10, 2, 1, order=[0, 1, 10])
    with pytest.raises(ConfigError, match="more than once"):
        build_scenario(10, 2, 1, order=[0, 1, 1])


def test_num_steps_limits_and_defaults() -> None:
    assert build_scenario(10, 4, 3, num_steps=1).classes_per_step == [4, 3]
    assert build_scenario(10, 4, 4).classes_per_step == [4, 4]  # as many as fit; 2 classes unused
    assert build_scenario(10, 10, 5).classes_per_step == [10]
    with pytest.raises(ConfigError, match=r"asks for 14 classes.*only 10"):
        build_scenario(10, 4, 5, num_steps=2)
    with pytest.raises(ConfigError, match="base"):
        build_scenario(10, 0, 2)
    with pytest.raises(ConfigError, match="increment"):
        build_scenario(10, 2, 0)
    with pytest.raises(ConfigError, match="num_steps"):
        build_scenario(10, 2, 2, num_steps=-1)


def test_remap_makes_each_step_a_contiguous_range() -> None:
    s = build_scenario(12, base=3, increment=3, seed=1)
    for step in range(s.num_steps):
        mapped = s.remap(np.array(s.new(step)))
        assert mapped.tolist() == list(range(s.offset(step), s.offset(step) + s.classes_per_step[step]))
    labels = torch.tensor(s.class_order[::-1])
    mapped = s.remap(labels)
    assert isinstance(mapped, torch.Tensor) and mapped.dtype == torch.int64
    assert mapped.tolist() == list(range(12))[::-1]
    assert [s.to_incremental(c) for c in s.class_order] == list(range(12))
    assert [s.to_original(i) for i in range(12)] == s.class_order
    assert s.steps_of(labels).tolist() == [s.step_of(c) for c in labels.tolist()]
    assert s.steps_of(np.array(s.class_order)).tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3


def test_labels_outside_the_scenario_are_rejected() -> None:
    s = build_scenario(10, base=2, increment=2, num_steps=1, seed=0)
    unused = sorted(set(range(10)) - set(s.class_order))[0]
    with pytest.raises(DistillkitError, match="not part of this scenario"):
        s.remap(torch.tensor([s.class_order[0], unused]))
    with pytest.raises(DistillkitError, match="not part of this scenario"):
        s.to_incremental(unused)
    with pytest.raises(DistillkitError, match="out of range"):
        s.seen(2)


def test_inconsistent_scenario_is_rejected() -> None:
    with pytest.raises(ConfigError):
        Scenario(class_order=[0, 1, 2], steps=[[0, 1], [3]])
    with pytest.raises(ConfigError):
        Scenario(class_order=[0, 1], steps=[[0, 1], []])


DATASET_CLASSES = {
    "tcd_ucf101": (101, 101),
    "tcd_hmdb51": (51, 51),
    "tcd_ssv2": (174, 174),
    "vclimb_ucf101_10": (101, 100),  # vCLIMB: 10 tasks of 10 classes, 100 of UCF101's 101 used
    "vclimb_kinetics_10": (400, 400),
    "vclimb_kinetics_20": (400, 400),
    "synthetic_motion": (18, 18),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_totals_match_the_dataset(name: str) -> None:
    dataset_classes, used = DATASET_CLASSES[name]
    base, increment, num_steps = PRESETS[name]
    assert base + increment * num_steps == used
    s = preset_scenario(name, dataset_classes, seed=0)
    assert s.num_classes == used
    assert s.num_steps == num_steps + 1
    if name.startswith("vclimb"):
        assert base == increment
    with pytest.raises(ConfigError, match="only"):
        preset_scenario(name, used - 1)


def test_preset_steps() -> None:
    assert preset_scenario("tcd_ucf101", 101).classes_per_step == [51] + [5] * 10
    assert preset_scenario("tcd_hmdb51", 51).classes_per_step == [26] + [5] * 5
    assert preset_scenario("tcd_ssv2", 174).classes_per_step == [84] + [9] * 10
    assert preset_scenario("vclimb_kinetics_20", 400).classes_per_step == [20] * 20
    with pytest.raises(ConfigError, match="unknown scenario preset"):
        preset_scenario("nope", 10)
