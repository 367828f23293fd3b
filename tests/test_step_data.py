"""A stream step's data (`StepData`): its training set and batches, the context and tools its method gets."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import tiny

from distillkit.data.videos import build_video_datasets
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.data import ClassSubset
from distillkit.incremental.evaluation import Evaluator
from distillkit.incremental.memory import ExemplarMemory
from distillkit.incremental.methods import build_method
from distillkit.incremental.objectives import BalancedNetworkObjective
from distillkit.incremental.step_data import StepData
from distillkit.jobs.incremental import build_stream_scenario
from distillkit.models.factory import build_video_model

CPU = torch.device("cpu")


def step_data(cfg: IncrementalConfig) -> StepData:
    data = build_video_datasets(cfg.data, cfg.seed)
    scenario = build_stream_scenario(cfg, data.num_classes)
    evaluator = Evaluator(data, scenario, cfg.data.eval_batch_size, cfg.memory.replay, False, CPU)
    return StepData(cfg, build_method(cfg.method.name, cfg.method.options), data, scenario, evaluator, CPU)


def base_memory(steps: StepData, root: Path) -> ExemplarMemory:
    """A memory of two videos of each base class (incremental labels 0 and 1), the second class first."""
    subset = ClassSubset(steps.data.train_eval, steps.scenario.seen(0), steps.scenario)
    memory = ExemplarMemory(root, 48, 4)
    for c in (1, 0):
        picked = [i for i, label in enumerate(subset.labels) if label == c][:2]
        memory.add_class(c, [(subset.video_id(i), subset.raw_clip(i), [0, 1, 2, 3]) for i in picked])
    return memory


def test_a_steps_training_set_is_its_new_videos_and_the_memorys_exemplars(tmp_path: Path) -> None:
    steps = step_data(tiny())
    memory = base_memory(steps, tmp_path / "memory")
    train_set = steps.train_set(1, memory)
    labels = [train_set[i][1] for i in range(len(train_set))]
    assert labels == train_set.labels  # what the loader reads is what the labels say
    assert Counter(labels[:12]) == {2: 6, 3: 6}  # every training video of the new classes, incremental labels
    assert labels[12:] == [1, 1, 0, 0]  # then the exemplars, in the memory's order
    ctx = steps.context(1, train_set, None)
    assert (ctx.num_old, ctx.num_seen) == (2, 4)
    assert ctx.class_counts.tolist() == [2, 2, 6, 6]
    assert steps.train_set(1, None).labels == labels[:12]  # no memory: the new videos alone


def test_training_sets_per_method() -> None:
    finetune = step_data(tiny(method={"name": "finetune"}))
    assert sorted(set(finetune.train_set(1, None).labels)) == [2, 3]  # new classes only
    joint = step_data(tiny(method={"name": "joint"}))
    assert sorted(set(joint.train_set(2, None).labels)) == [0, 1, 2, 3, 4, 5]  # every class seen


def test_the_batch_order_is_the_steps_own(tmp_path: Path) -> None:
    steps = step_data(tiny())
    train_set = steps.train_set(1, base_memory(steps, tmp_path / "memory"))

    def order(step: int) -> list[int]:
        return [y for _, labels in steps.loader(train_set, step) for y in labels.tolist()]

    assert order(1) == order(1)  # a resumed step draws the same batches
    assert order(1) != order(2)
    assert sorted(order(1)) == sorted(train_set.labels)  # 16 clips, two whole batches of 8


def test_memory_batches_yield_the_memory_in_a_fixed_order(tmp_path: Path) -> None:
    cfg = tiny()
    cfg.data.eval_batch_size = 3
    steps = step_data(cfg)
    memory = base_memory(steps, tmp_path / "memory")
    model = build_video_model(cfg.model, 4, 4)
    first = list(steps.tools(model, 1, memory).memory_batches())
    assert [y.tolist() for _, y in first] == [[1, 1, 0], [0]]  # the memory's order, in evaluation batches
    again = list(steps.tools(model, 1, memory).memory_batches())
    assert all(torch.equal(x, x2) for (x, _), (x2, _) in zip(first, again, strict=True))
    assert first[0][0].shape == (3, 4, 3, 16, 16)
    assert list(steps.tools(model, 1, None).memory_batches()) == []


def test_class_balanced_finetuning_trains_the_head_alone_the_same_each_time(tmp_path: Path) -> None:
    steps = step_data(tiny())
    memory = base_memory(steps, tmp_path / "memory")
    torch.manual_seed(0)
    start = build_video_model(steps.cfg.model, 2, 4)
    models = [build_video_model(steps.cfg.model, 2, 4) for _ in range(2)]
    for model in models:
        model.load_state_dict(start.state_dict())
        steps.tools(model, 1, memory).finetune_head_on_memory(1.0, 0.1)
    first, second = (m.state_dict() for m in models)
    assert all(torch.equal(first[k], second[k]) for k in first)  # the batches' order is the step's
    changed = {k for k, v in start.state_dict().items() if not torch.equal(v, first[k])}
    assert changed and all(k.startswith("head.") for k in changed)
    with pytest.raises(ConfigError, match="needs an exemplar memory"):
        steps.tools(start, 1, None).finetune_head_on_memory(1.0, 0.1)


def test_balanced_finetuning_of_the_network_trains_every_weight_keeps_batch_norm_and_starts_at_kd_0(
    tmp_path: Path,
) -> None:
    steps = step_data(tiny())
    memory = base_memory(steps, tmp_path / "memory")
    torch.manual_seed(0)
    start = build_video_model(steps.cfg.model, 2, 4)
    x, y = next(iter(steps.tools(start, 1, memory).memory_batches()))
    objective = BalancedNetworkObjective(start, copy.deepcopy(start).eval())
    objective.set_mode()  # batch norm in eval mode: the model computes as its frozen copy does
    total, parts = objective.loss(x, y)
    # the frozen copy is the model: KD is exactly 0 at the start, the total its cross-entropy
    assert parts["kd"].item() == 0.0 and torch.equal(total.detach(), parts["ce"])
    models = [copy.deepcopy(start) for _ in range(2)]
    for model in models:
        steps.tools(model, 1, memory).finetune_network_on_memory(1.0, 0.1)
    first, second = (m.state_dict() for m in models)
    assert all(torch.equal(first[k], second[k]) for k in first)  # the batches' order is the step's
    before = start.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(v, first[k])}
    assert any(k.startswith("head.") for k in changed) and any(not k.startswith("head.") for k in changed)
    statistics = [k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert statistics and not changed & set(statistics)  # batch-norm statistics stay the step's


def test_civc_shows_a_share_of_the_new_clips_small_in_incremental_steps(tmp_path: Path) -> None:
    from distillkit.incremental.data import ShownSmall
    from distillkit.incremental.memory import at_scale

    steps = step_data(
        tiny(method={"name": "civc", "options": {"exemplar_scale": 0.5, "small_new_clips": 0.5}})
    )
    memory = base_memory(steps, tmp_path / "memory")
    plain = ClassSubset(steps.data.train, steps.scenario.new(1), steps.scenario)
    train_set = steps.train_set(1, memory)
    new, replays = train_set.datasets
    assert isinstance(new, ShownSmall) and len(new) == 12
    draws = []
    for epoch in (0, 1):
        train_set.set_epoch(epoch)  # reaches the video set under `plain` too
        draws.append([new.shown_small(i) for i in range(12)])
        for i in range(12):
            clip = plain[i][0]
            assert torch.equal(new[i][0], at_scale(clip, 0.5) if draws[-1][i] else clip)
        assert torch.equal(train_set[12][0], replays[0][0])  # the exemplars as loaded
    assert 0 < sum(draws[0]) < 12 and draws[0] != draws[1]  # a share, drawn again each epoch
    assert isinstance(steps.train_set(0, None).datasets[0], ClassSubset)  # the base step: sharp clips
    full_size = step_data(tiny(method={"name": "civc", "options": {"exemplar_scale": 1}}))
    assert isinstance(full_size.train_set(1, None).datasets[0], ClassSubset)


def test_at_scale_averages_areas_and_scales_back_up() -> None:
    from distillkit.incremental.memory import at_scale

    checker = torch.zeros(2, 1, 4, 4)
    checker[..., ::2, ::2] = checker[..., 1::2, 1::2] = 1.0
    assert torch.allclose(at_scale(checker, 0.5), torch.full_like(checker, 0.5))  # 2×2 areas averaged
    ramp = torch.arange(16.0).view(1, 1, 4, 4)
    assert at_scale(ramp, 0.5).shape == ramp.shape and not torch.allclose(at_scale(ramp, 0.5), ramp)
