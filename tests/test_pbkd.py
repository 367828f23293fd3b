import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import logged, tiny_loader

from distillkit.compress.pbkd import BlockStageObjective, progressive_distill, stage_order
from distillkit.compress.student import design_student, is_copy
from distillkit.config import OptimConfig
from distillkit.errors import ConfigError
from distillkit.models import build_model
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model


def tiny_teacher() -> BlockwiseNet:
    return split_model(build_model("vgg11", num_classes=4, in_channels=3, width=0.125).eval())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_stage_order() -> None:
    assert stage_order("bottom_up", 3) == [0, 1, 2]
    assert stage_order("top_down", 3) == [2, 1, 0]
    assert stage_order([1, 0, 2], 3) == [1, 0, 2]
    with pytest.raises(ConfigError, match="each block index"):
        stage_order([0, 0, 2], 3)


def test_stage_loss_is_ce_plus_local_l2() -> None:
    teacher = tiny_teacher()
    net = BlockwiseNet(list(teacher.blocks), teacher.head, teacher.names)
    net.blocks[2] = copy.deepcopy(teacher.blocks[2])  # a student identical to its teacher block
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    objective = BlockStageObjective(net, 2, teacher.blocks[2], local_weight=3.0)
    objective.set_mode()
    net.blocks[2].eval()  # same BN behaviour as the teacher block for this check
    loss, parts = objective.loss(x, y)
    parts = logged(parts)
    assert parts["local"] == 0.0
    assert loss.item() == pytest.approx(F.cross_entropy(teacher(x), y).item(), rel=1e-6)
    with torch.no_grad():  # a perturbed student: local = ½·mean((s − t)²)
        for p in net.blocks[2].parameters():
            p.add_(0.1)
    loss, parts = objective.loss(x, y)
    parts = logged(parts)
    h = teacher.run_blocks(x, 0, 2)
    s, t = net.blocks[2](h), teacher.blocks[2](h)
    assert parts["local"] == pytest.approx(0.5 * (s - t).pow(2).mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx(parts["ce"] + 3.0 * parts["local"], rel=1e-5)


@pytest.mark.parametrize("order", ["bottom_up", "top_down"])
def test_progressive_training_touches_only_the_current_block(order: str) -> None:
    teacher = tiny_teacher()
    teacher_before = snapshot(teacher)
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(teacher.blocks, shapes, "thin", 0.5)
    initial = [snapshot(s) for s in students]
    seen: list[int] = []
    trained: dict[int, dict] = {}

    def after_stage(stage: int, k: int, net: BlockwiseNet, result) -> None:
        seen.append(k)
        assert result.steps == 3
        assert net.blocks[k] is students[k]
        # the block just trained changed; blocks trained earlier did not change in this stage
        assert any(not torch.equal(v, initial[k][n]) for n, v in students[k].state_dict().items())
        for j, state in trained.items():
            assert all(torch.equal(v, state[n]) for n, v in students[j].state_dict().items())
        # blocks not yet replaced are still the teacher's
        for j in range(len(students)):
            if j not in trained and j != k:
                assert net.blocks[j] is teacher.blocks[j]
        trained[k] = snapshot(students[k])

    optim = OptimConfig(lr=0.05)
    student = progressive_distill(
        teacher, students, tiny_loader(n=16, size=32), 3, optim, torch.device("cpu"), 1.0, order, after_stage
    )
    assert seen == stage_order(order, 5)
    # the teacher is untouched and never accumulated gradients
    after = teacher.state_dict()
    assert all(torch.equal(after[k], v) for k, v in teacher_before.items())
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # the student is made of the student blocks and its own copy of the head
    assert all(a is b for a, b in zip(student.blocks, students, strict=True))
    assert {id(p) for p in student.head.parameters()}.isdisjoint(id(p) for p in teacher.head.parameters())
    assert student(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_stage_optimises_only_the_current_block() -> None:
    """A stage's optimiser steps change the student block and nothing else: not the teacher's blocks and head
    around it in the net, nor the teacher's own copy of the block (parameters and batch-norm statistics)."""
    teacher = tiny_teacher()
    net = BlockwiseNet(list(teacher.blocks), teacher.head, teacher.names)
    student = copy.deepcopy(teacher.blocks[1])
    net.blocks[1] = student
    objective = BlockStageObjective(net, 1, teacher.blocks[1], 1.0)
    assert {id(p) for p in objective.parameters()} == {id(p) for p in student.parameters()}
    teacher_before, student_before = snapshot(teacher), snapshot(student)
    optimiser = torch.optim.SGD(objective.parameters(), lr=0.1)
    objective.set_mode()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for _ in range(2):
        loss, _ = objective.loss(x, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(v, student_before[k]) for k, v in student.state_dict().items())


def test_stage_kd_term_adds_logit_distillation_from_the_teacher() -> None:
    from distillkit.distill.losses import kd_loss

    teacher = tiny_teacher()
    net = BlockwiseNet(list(teacher.blocks), teacher.head, teacher.names)
    net.blocks[1] = copy.deepcopy(teacher.blocks[1])
    with torch.no_grad():
        for p in net.blocks[1].parameters():
            p.add_(0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    objective = BlockStageObjective(net, 1, teacher.blocks[1], 1.0, teacher, kd_weight=2.0, temperature=3.0)
    objective.set_mode()
    net.blocks[1].eval()
    loss, parts = objective.loss(x, y)
    parts = logged(parts)
    with torch.no_grad():
        expected_kd = kd_loss(net(x), teacher(x), 3.0).item()
    assert parts["kd"] == pytest.approx(expected_kd, rel=1e-5)
    assert loss.item() == pytest.approx(parts["ce"] + parts["local"] + 2.0 * parts["kd"], rel=1e-5)
    with pytest.raises(ConfigError, match="teacher"):
        BlockStageObjective(net, 1, teacher.blocks[1], 1.0, kd_weight=1.0)


def test_precise_stage_norms_are_estimated_after_the_stage_with_its_final_weights() -> None:
    """`stage_norm="precise"`: after a stage each batch norm of the new block holds the plain average of its
    input's batch statistics over the first `stage_norm_batches` batches, computed with the weights the block
    ends with; its momentum is restored, and the global random state is as if nothing had been drawn."""
    teacher = tiny_teacher()
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(
        teacher.blocks, shapes, "thin", 0.5, plain="restore"
    )  # block 0 thinned, not copied
    first = copy.deepcopy(students[0])
    loader = tiny_loader(n=32, size=32)
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def after_stage(stage: int, k: int, net: BlockwiseNet, result) -> None:
        bn = net.blocks[k][1]
        assert isinstance(bn, torch.nn.BatchNorm2d) and bn.momentum == 0.1
        stats[k] = (bn.running_mean.clone(), bn.running_var.clone())

    torch.manual_seed(7)
    progressive_distill(
        teacher,
        students,
        loader,
        3,
        OptimConfig(lr=0.05),
        torch.device("cpu"),
        1.0,
        "bottom_up",
        after_stage,
        stage_norm="precise",
        stage_norm_batches=2,
    )
    drawn_after_precise = torch.rand(1)
    conv = students[0][0]
    assert isinstance(conv, torch.nn.Conv2d)
    assert not torch.equal(
        conv.weight, first[0].weight
    )  # it trained, so the statistics are the final weights'
    with torch.no_grad():  # by hand: per-channel mean and unbiased variance of each of the first 2 batches
        feats = [conv(x) for x, _ in list(loader)[:2]]
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).flatten(1).var(1, unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(stats[0][0], mean, atol=1e-5) and torch.allclose(stats[0][1], var, atol=1e-5)

    teacher = tiny_teacher()
    students = design_student(teacher.blocks, shapes, "thin", 0.5)
    torch.manual_seed(7)  # "batch" draws the same random numbers: the estimates left the global state alone
    progressive_distill(
        teacher, students, loader, 3, OptimConfig(lr=0.05), torch.device("cpu"), 1.0, "bottom_up"
    )
    assert torch.equal(torch.rand(1), drawn_after_precise)
    with pytest.raises(ConfigError, match="stage_norm"):
        progressive_distill(
            teacher, students, loader, 1, OptimConfig(), torch.device("cpu"), stage_norm="frozen"
        )


@pytest.mark.parametrize("keep", [True, False])
def test_a_block_that_is_its_teacher_block_is_kept_without_a_stage(keep: bool) -> None:
    """`kept`: a student block equal to its teacher block (a copy with the teacher's weights) is put in
    place untouched, with a 0-step stage; without it, the copy trains like any block."""
    teacher = tiny_teacher()
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(teacher.blocks, shapes, "thin", 0.5)
    students[0] = copy.deepcopy(teacher.blocks[0])
    assert is_copy(students[0], teacher.blocks[0]) and not is_copy(students[1], teacher.blocks[1])
    steps: dict[int, int] = {}

    def after_stage(stage: int, k: int, net: BlockwiseNet, result) -> None:
        steps[k] = result.steps
        assert net.blocks[k] is students[k]

    progressive_distill(
        teacher,
        students,
        tiny_loader(n=16, size=32),
        2,
        OptimConfig(lr=0.05),
        torch.device("cpu"),
        1.0,
        "bottom_up",
        after_stage,
        kept={0} if keep else (),
    )
    assert steps == {0: 0 if keep else 2, 1: 2, 2: 2, 3: 2, 4: 2}
    assert is_copy(students[0], teacher.blocks[0]) == keep  # kept bitwise, or trained away from the teacher's
