"""The students the compression baselines train: fresh ones, and `kd_inherit`'s, which starts where PBKD does."""

import pytest
import torch
from torch import nn

from distillkit.compress.baselines import StudentObjective, baseline_student
from distillkit.config import BaselineConfig, StudentConfig
from distillkit.models.blocks import BlockwiseNet, block_shapes, split_model


def teacher_net() -> BlockwiseNet:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    )  # fmt: skip
    with torch.no_grad():  # statistics a fresh batch norm would not have
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    net = split_model(model, ["3", "7"])
    net.requires_grad_(False)
    return net


def first_conv(net: nn.Module) -> nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d))


def classifier(net: BlockwiseNet) -> torch.Tensor:
    return next(m for m in net.head.modules() if isinstance(m, nn.Linear)).weight


def test_kd_inherit_starts_from_the_teachers_filters_and_head() -> None:
    teacher = teacher_net()
    shapes = block_shapes(teacher, torch.zeros(2, 3, 16, 16))
    student = StudentConfig(design="thin", init="auto", plain="restore")  # every conv thinned
    same = baseline_student("kd_inherit", teacher, shapes, student, 0.5)
    fresh = baseline_student("kd", teacher, shapes, student, 0.5)

    # the thinned first conv keeps the teacher's 4 filters of largest L1 norm, in the teacher's order
    t, s = first_conv(teacher).weight, first_conv(same).weight
    assert s.shape == (4, 3, 3, 3)
    keep = t.abs().sum(dim=(1, 2, 3)).topk(4).indices.sort().values
    assert torch.equal(s, t[keep])
    assert not any(torch.equal(first_conv(fresh).weight, t[i : i + 4]) for i in range(5))
    # the head is the teacher's (as PBKD's is), a fresh baseline's is not
    assert torch.equal(classifier(same), classifier(teacher))
    assert not torch.equal(classifier(fresh), classifier(teacher))
    # both are the same architecture, every weight trains, and the teacher is left alone
    assert [p.shape for p in same.parameters()] == [p.shape for p in fresh.parameters()]
    assert all(p.requires_grad for p in same.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    classifier(same).data.add_(1.0)
    assert not torch.equal(classifier(same), classifier(teacher))


def test_kd_inherit_is_kd_with_the_same_loss() -> None:
    teacher = teacher_net()
    shapes = block_shapes(teacher, torch.zeros(2, 3, 16, 16))
    net = baseline_student("kd", teacher, shapes, StudentConfig(), 0.5)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    cfg = BaselineConfig()
    kd, kd_parts = StudentObjective("kd", net, teacher, cfg).loss(x, y)
    same, same_parts = StudentObjective("kd_inherit", net, teacher, cfg).loss(x, y)
    assert torch.equal(kd, same) and set(kd_parts) == set(same_parts) == {"ce", "kd"}
    with pytest.raises(ValueError, match="unknown baseline"):
        StudentObjective("distil", net, teacher, cfg).loss(x, y)
