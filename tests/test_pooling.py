"""The students' max-pooling: the same values as `nn.MaxPool2d`, and training untouched."""

import pytest
import torch
from torch import nn

from distillkit.compress.student import design_student, is_copy
from distillkit.models import build_model
from distillkit.models.blocks import block_shapes, split_model
from distillkit.models.pooling import StridedMaxPool2d, fast_pools


@pytest.mark.parametrize("kernel", [2, 3, (2, 3), (2, 1)])
@pytest.mark.parametrize("size", [(8, 8), (9, 7), (6, 12)])
def test_strided_pool_gives_every_value_of_max_pool(
    kernel: int | tuple[int, int], size: tuple[int, int]
) -> None:
    x = torch.randn(3, 5, *size, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0] = float("nan")
    with torch.no_grad():
        want, got = nn.MaxPool2d(kernel)(x), StridedMaxPool2d(kernel)(x)
    assert got.shape == want.shape
    assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.isnan(got).any()
    finite = ~torch.isnan(want)
    assert torch.equal(got[finite], want[finite])


def test_strided_pool_uses_max_pool_where_a_gradient_is_asked_for() -> None:
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    nn.MaxPool2d(2)(a).pow(2).sum().backward()
    StridedMaxPool2d(2)(b).pow(2).sum().backward()
    assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad)


def test_fast_pools_replaces_only_pools_whose_windows_tile_the_input() -> None:
    model = nn.Sequential(
        nn.MaxPool2d(2),
        nn.Sequential(nn.MaxPool2d(3, stride=2), nn.MaxPool2d(2, padding=1), nn.MaxPool2d(1)),
        nn.MaxPool2d((2, 1)),
    )
    assert fast_pools(model) == 2
    assert [type(m) for m in model.modules() if isinstance(m, nn.MaxPool2d)] == [
        StridedMaxPool2d, nn.MaxPool2d, nn.MaxPool2d, nn.MaxPool2d, StridedMaxPool2d
    ]  # fmt: skip


def test_a_vgg_student_pools_fast_and_gives_the_same_output() -> None:
    teacher = split_model(build_model("vgg16", 10, 1, 0.25, True).eval(), "auto").eval()
    shapes = block_shapes(teacher, torch.zeros(2, 1, 32, 32))
    slow = design_student(teacher.blocks, shapes, "thin", 0.5, "inherit", fast_pool=False)
    fast = design_student(teacher.blocks, shapes, "thin", 0.5, "inherit")
    pools = [m for b in fast for m in b.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5 and all(type(m) is StridedMaxPool2d for m in pools)
    assert all(type(m) is nn.MaxPool2d for m in teacher.modules() if isinstance(m, nn.MaxPool2d))
    x = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    for s, f, block in zip(slow, fast, teacher.blocks, strict=True):
        with torch.no_grad():
            assert torch.equal(s.eval()(x), f.eval()(x))
            x = block(x)


def test_a_copied_block_pools_fast_and_is_still_a_copy_of_its_teacher_block() -> None:
    block = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)).eval()
    shapes = [(torch.Size([1, 1, 8, 8]), torch.Size([1, 8, 4, 4]))]
    (student,) = design_student(nn.ModuleList([block]), shapes, "thin", 0.5, "inherit")
    assert type(student[3]) is StridedMaxPool2d and type(block[3]) is nn.MaxPool2d
    assert is_copy(student, block)
    assert not is_copy(nn.Sequential(*list(student)[:3], nn.AvgPool2d(2)), block)
