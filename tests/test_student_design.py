import pytest
import torch
from torch import nn

from distillkit.compress.receptive_field import ReceptiveField, receptive_field
from distillkit.compress.student import design_student, design_student_block
from distillkit.engine.profile import count_macs
from distillkit.errors import SplitError
from distillkit.models import build_model
from distillkit.models.blocks import block_shapes, split_model


def empirical_rf(block: nn.Module, channels: int, size: int = 32) -> tuple[int, int]:
    """Measure the receptive field: which input pixels change the centre output unit when bumped up.

    All conv weights are made positive so nothing cancels and ReLUs stay open; a large bump makes the pixel
    the maximum of any pooling window it is in.
    """
    block = block.eval().double()  # float64: batched and single convs then agree to ~1e-12
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(m.weight.abs() + 0.01)
                if m.bias is not None:
                    m.bias.zero_()
        base = torch.rand(1, channels, size, size, dtype=torch.float64) + 0.5
        bumped = base.repeat(size * size, 1, 1, 1)
        idx = torch.arange(size * size)
        bumped[idx, :, idx // size, idx % size] += 100.0
        y0, y = block(base), block(bumped)
        ci, cj = y0.shape[2] // 2, y0.shape[3] // 2
        changed = ((y[:, :, ci, cj] - y0[:, :, ci, cj]).abs().amax(1) > 1e-6).reshape(size, size)
    rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_receptive_field_by_hand() -> None:
    two_convs = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2)
    )
    assert receptive_field(two_convs) == ReceptiveField((6, 6), (2, 2))  # 1+2+2, then +1 for the pool
    stem = nn.Sequential(nn.Conv2d(3, 4, 7, stride=2, padding=3), nn.MaxPool2d(3, stride=2, padding=1))
    assert receptive_field(stem) == ReceptiveField((11, 11), (4, 4))  # 7, then + 2·2
    dilated = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2), nn.Conv2d(4, 4, (1, 3)))
    assert receptive_field(dilated) == ReceptiveField((5, 7), (1, 1))
    with pytest.raises(SplitError, match="global"):
        receptive_field(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)))


@pytest.mark.parametrize(
    ("arch", "residual"),
    [
        ("vgg16", "internal"),
        ("resnet18", "internal"),
        ("resnet18", "branch"),
        ("resnet50", "internal"),
        ("resnet50", "branch"),
    ],
)
@pytest.mark.parametrize("design", ["thin", "depthwise"])
@pytest.mark.parametrize("plain", ["internal", "restore"])
def test_student_preserves_receptive_field_per_block(
    arch: str, residual: str, design: str, plain: str
) -> None:
    teacher = split_model(build_model(arch, 10, 3, width=0.125).eval())
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(teacher.blocks, shapes, design, 0.5, residual=residual, plain=plain)
    for block, student, (shape_in, shape_out) in zip(teacher.blocks, students, shapes, strict=True):
        assert receptive_field(student) == receptive_field(block)
        assert student(torch.zeros(shape_in)).shape == shape_out
        student_macs, teacher_macs = count_macs(student, tuple(shape_in)), count_macs(block, tuple(shape_in))
        # `internal` keeps a one-conv block's conv wide: its student would cost as much and is a copy
        assert student_macs < teacher_macs or (plain == "internal" and student_macs == teacher_macs)


@pytest.mark.parametrize("residual", ["internal", "branch"])
@pytest.mark.parametrize("design", ["thin", "depthwise"])
def test_analytic_rf_matches_measured_rf(design: str, residual: str) -> None:
    for arch in ("vgg11", "resnet18"):
        teacher = split_model(build_model(arch, 10, 3, width=0.125).eval())
        shapes = block_shapes(teacher, torch.zeros(1, 3, 32, 32))
        students = design_student(teacher.blocks, shapes, design, 0.5, residual=residual)
        for k in (0, 1, 2):
            channels = shapes[k][0][1]
            for block in (teacher.blocks[k], students[k]):
                rf = receptive_field(block)
                assert empirical_rf(block, channels) == rf.size, (arch, k, type(block).__name__)


def _vgg_stage() -> nn.Sequential:
    """A VGG stage with non-trivial batch-norm statistics, in eval mode: conv 3→64, conv 64→64, max-pool."""
    block = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    with torch.no_grad():
        for bn in (block[1], block[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return block.eval()


def test_student_block_macs_by_hand() -> None:
    # VGG stage: conv 3→64, conv 64→64, pool at 32×32. Student (ratio ½): convs 3→32, 32→32, pool, 1×1 32→64.
    block = _vgg_stage()
    student = design_student_block(block, 3, 64, "thin", 0.5, plain="restore")
    assert count_macs(block, (1, 3, 32, 32)) == 32 * 32 * (3 * 64 * 9 + 64 * 64 * 9)
    assert count_macs(student, (1, 3, 32, 32)) == 32 * 32 * (3 * 32 * 9 + 32 * 32 * 9) + 16 * 16 * 32 * 64
    # `internal` (the default): convs 3→32, 32→64, pool; no 1×1
    internal = design_student_block(block, 3, 64, "thin", 0.5)
    assert count_macs(internal, (1, 3, 32, 32)) == 32 * 32 * (3 * 32 * 9 + 32 * 64 * 9)
    depthwise = design_student_block(block, 3, 64, "depthwise", 0.5, plain="restore")
    expected = 32 * 32 * (3 * 9 + 3 * 32 + 32 * 9 + 32 * 32) + 16 * 16 * 32 * 64
    assert count_macs(depthwise, (1, 3, 32, 32)) == expected


def test_whole_vgg16_student_is_at_least_2_5x_cheaper() -> None:
    teacher = split_model(build_model("vgg16", 10, 1, width=0.25).eval())
    shapes = block_shapes(teacher, torch.zeros(1, 1, 32, 32))
    students = design_student(teacher.blocks, shapes, "thin", 0.5, plain="restore")
    teacher_macs = sum(count_macs(b, tuple(s[0])) for b, s in zip(teacher.blocks, shapes, strict=True))
    student_macs = sum(count_macs(b, tuple(s[0])) for b, s in zip(students, shapes, strict=True))
    assert teacher_macs / student_macs >= 2.5


def test_plain_internal_keeps_the_last_conv_wide_and_adds_no_conv() -> None:
    block = _vgg_stage()
    student = design_student_block(block, 3, 64, "thin", 0.5, init="inherit", plain="internal")
    convs = [m for m in student if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (3, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert receptive_field(student) == receptive_field(block)
    assert count_macs(student, (1, 3, 32, 32)) == 32 * 32 * (3 * 32 * 9 + 32 * 64 * 9)
    # inherited: the first conv's 32 largest filters; the last conv all 64, reading those 32 channels
    kept = block[0].weight.abs().sum(dim=(1, 2, 3)).topk(32).indices.sort().values
    assert torch.equal(convs[0].weight, block[0].weight[kept])
    assert torch.equal(convs[1].weight, block[3].weight[:, kept])
    assert torch.equal(student[4].running_mean, block[4].running_mean)  # the wide conv's BN: the teacher's
    # at ratio 1 the student is the teacher block
    whole = design_student_block(block, 3, 64, "thin", 1.0, init="inherit", plain="internal").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(whole(x), block(x), atol=1e-5)
    with pytest.raises(SplitError, match="plain 'wide'"):
        design_student_block(block, 3, 64, "thin", 0.5, plain="wide")


@pytest.mark.parametrize("plain", ["restore", "internal"])
def test_plain_internal_widens_the_conv_before_a_residual_unit(plain: str) -> None:
    from torchvision.models.resnet import BasicBlock

    block = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), BasicBlock(16, 16))
    student = design_student_block(block, 3, 16, "thin", 0.5, plain=plain)
    first = student[0]
    assert isinstance(first, nn.Conv2d)
    ones = [m for m in student.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    # restore: the stem conv is thinned to 8 and a 1×1 brings the unit's 16 back; internal: it keeps 16
    assert (first.out_channels, len(ones)) == ((8, 1) if plain == "restore" else (16, 0))
    assert student(torch.zeros(1, 3, 8, 8)).shape == (1, 16, 8, 8)
    assert receptive_field(student) == receptive_field(block)


@pytest.mark.parametrize("arch", ["vgg11", "resnet18"])
def test_plain_internal_students_keep_receptive_fields_and_cost_less(arch: str) -> None:
    teacher = split_model(build_model(arch, 10, 3, width=0.125).eval())
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(teacher.blocks, shapes, "thin", 0.5, plain="internal", copy_if_costlier=False)
    for block, student, (shape_in, shape_out) in zip(teacher.blocks, students, shapes, strict=True):
        assert receptive_field(student) == receptive_field(block)
        assert student(torch.zeros(shape_in)).shape == shape_out
        assert count_macs(student, tuple(shape_in)) <= count_macs(block, tuple(shape_in))


def test_unsupported_layer_is_named() -> None:
    block = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 6, 6]))
    with pytest.raises(SplitError, match="LayerNorm"):
        design_student_block(block, 3, 4)


@pytest.mark.parametrize(
    ("arch", "residual"),
    [("vgg11", "internal"), ("resnet18", "internal"), ("resnet18", "branch"), ("resnet50", "internal")],
)
def test_inherit_at_full_ratio_reproduces_the_teacher_block(arch: str, residual: str) -> None:
    teacher = split_model(build_model(arch, 10, 3, width=0.125).eval())
    for m in teacher.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    shapes = block_shapes(teacher, torch.zeros(2, 3, 32, 32))
    students = design_student(teacher.blocks, shapes, "thin", 1.0, init="inherit", residual=residual)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for block, student in zip(teacher.blocks, students, strict=True):
            assert torch.allclose(student.eval()(x), block(x), atol=1e-5)
            x = block(x)


def test_inherit_keeps_the_largest_filters() -> None:
    block = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4),
    )
    with torch.no_grad():
        for i, scale in enumerate([1.0, 5.0, 0.1, 3.0]):  # filters 1 and 3 have the largest L1 norm
            block[0].weight[i].fill_(scale)
        block[1].running_mean.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    student = design_student_block(block, 2, 4, "thin", 0.5, init="inherit", plain="restore")
    assert torch.equal(student[0].weight, block[0].weight[[1, 3]])
    assert torch.equal(student[1].running_mean, torch.tensor([1.0, 3.0]))
    kept = block[3].weight.abs().sum(dim=(1, 2, 3)).topk(2).indices.sort().values
    assert torch.equal(student[3].weight, block[3].weight[kept][:, [1, 3]])
    with pytest.raises(SplitError, match="inherit"):
        design_student_block(block, 2, 4, "depthwise", 0.5, init="inherit")


@pytest.mark.parametrize(
    ("arch", "reduction", "residual", "plain"),
    [
        ("vgg16", 3.0, "internal", "restore"),
        ("vgg16", 3.0, "internal", "internal"),
        ("resnet18", 2.5, "internal", "restore"),
        ("resnet18", 2.5, "branch", "internal"),
        ("resnet50", 2.0, "internal", "restore"),
    ],
)
def test_a_macs_target_gets_the_widest_student_that_meets_it(
    arch: str, reduction: float, residual: str, plain: str
) -> None:
    from distillkit.compress.student import RATIO_STEPS, ratio_for_macs

    teacher = split_model(build_model(arch, 10, 1, width=0.25, small_input=True).eval())
    shapes = block_shapes(teacher, torch.zeros(1, 1, 32, 32))
    one = (1, 1, 32, 32)
    outside = count_macs(teacher, one) - sum(
        count_macs(b, tuple(s[0])) for b, s in zip(teacher.blocks, shapes, strict=True)
    )

    def whole(ratio: float) -> int:  # the student network's MACs: its blocks, the teacher's head
        students = design_student(teacher.blocks, shapes, "thin", ratio, residual=residual, plain=plain)
        return outside + sum(count_macs(b, tuple(s[0])) for b, s in zip(students, shapes, strict=True))

    ratio, reached = ratio_for_macs(teacher.blocks, shapes, "thin", reduction, outside, residual, plain=plain)
    assert reached == pytest.approx(count_macs(teacher, one) / whole(ratio))
    assert reached >= reduction  # met ...
    assert count_macs(teacher, one) / whole(ratio + 1 / RATIO_STEPS) < reduction  # ... by the widest student
    with pytest.raises(SplitError, match=r"student.macs_reduction: 5000× .* out of reach"):
        ratio_for_macs(teacher.blocks, shapes, "thin", 5000.0, outside)


def _unit_with_statistics(unit: nn.Module) -> nn.Module:
    """`unit` in eval mode with non-trivial batch-norm statistics and affine parameters."""
    with torch.no_grad():
        for m in unit.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return unit.eval()


@pytest.mark.parametrize("kind", ["basic", "bottleneck", "basic_downsample"])
@pytest.mark.parametrize("residual", ["internal", "branch"])
def test_inherited_residual_unit_at_full_ratio_is_the_teacher_unit(kind: str, residual: str) -> None:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    if kind == "basic":
        unit, width_in, width_out, stride = BasicBlock(8, 8), 8, 8, 1
    elif kind == "bottleneck":
        unit, width_in, width_out, stride = Bottleneck(16, 4), 16, 16, 1
    else:
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        unit, width_in, width_out, stride = BasicBlock(8, 16, stride=2, downsample=down), 8, 16, 2
    unit = _unit_with_statistics(unit)
    block = nn.Sequential(unit)
    student = design_student_block(block, width_in, width_out, "thin", 1.0, "inherit", residual).eval()
    x = torch.randn(2, width_in, 12, 12)
    with torch.no_grad():
        y = student(x)
        assert y.shape == (2, width_out, 12 // stride, 12 // stride)
        assert torch.equal(y, unit(x))


def test_internal_residual_student_thins_only_the_internal_channels() -> None:
    from torchvision.models.resnet import BasicBlock

    from distillkit.models.blocks import ResidualUnit

    torch.manual_seed(0)
    unit = _unit_with_statistics(BasicBlock(8, 8))
    block = nn.Sequential(unit)
    student = design_student_block(block, 8, 8, "thin", 0.5, "inherit", "internal").eval()
    assert len(student) == 1 and isinstance(student[0], ResidualUnit)  # nothing added around the unit
    convs = [m for m in student.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(8, 4, (3, 3)), (4, 8, (3, 3))]
    assert receptive_field(student) == receptive_field(block)
    keep = unit.conv1.weight.abs().sum(dim=(1, 2, 3)).topk(4).indices.sort().values
    conv1, bn1, _, conv2, bn2 = student[0].branch
    assert torch.equal(conv1.weight, unit.conv1.weight[keep])
    assert torch.equal(bn1.running_var, unit.bn1.running_var[keep])
    assert torch.equal(conv2.weight, unit.conv2.weight[:, keep])  # every output filter, the kept inputs
    assert torch.equal(bn2.running_mean, unit.bn2.running_mean)
    assert torch.equal(bn2.weight, unit.bn2.weight)
    # The student branch is the teacher's with the other internal channels removed: zeroing them in the teacher
    # (after its batch norm) gives the same output.
    dropped = [c for c in range(8) if c not in keep.tolist()]
    with torch.no_grad():
        unit.bn1.weight[dropped] = 0.0
        unit.bn1.bias[dropped] = 0.0
        x = torch.randn(2, 8, 10, 10)
        assert torch.allclose(student(x), unit(x), atol=1e-6)


def test_branch_residual_student_appends_a_1x1_restore() -> None:
    from torchvision.models.resnet import BasicBlock

    block = nn.Sequential(BasicBlock(8, 8).eval())
    student = design_student_block(block, 8, 8, "thin", 0.5, residual="branch")
    kernels = [m.kernel_size for m in student.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [(3, 3), (3, 3), (1, 1)]
    with pytest.raises(SplitError, match="residual"):
        design_student_block(block, 8, 8, "thin", 0.5, residual="outer")


@pytest.mark.parametrize("residual", ["internal", "branch"])
def test_a_block_whose_student_costs_more_gets_a_copy_of_the_teacher_block(residual: str) -> None:
    teacher = split_model(build_model("resnet18", 10, 1, width=0.25, small_input=True).eval())
    shapes = block_shapes(teacher, torch.zeros(2, 1, 32, 32))
    stem, one = teacher.blocks[0], (1, 1, 32, 32)  # conv 1→16: thinning it adds a 1×1 restore 8→16
    thinned = design_student(
        teacher.blocks, shapes, "thin", 0.5, "inherit", residual, copy_if_costlier=False, plain="restore"
    )
    assert count_macs(thinned[0], one) > count_macs(stem, one)
    students = design_student(teacher.blocks, shapes, "thin", 0.5, "inherit", residual)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(students[0].eval()(x), stem(x))
    assert {id(p) for p in students[0].parameters()}.isdisjoint(id(p) for p in stem.parameters())
    fresh = design_student(teacher.blocks, shapes, "thin", 0.5, "random", residual)[0]
    assert count_macs(fresh, one) == count_macs(stem, one)
    assert not torch.equal(next(fresh.parameters()), next(stem.parameters()))
    for k in range(1, 5):  # the other blocks are thinned as designed
        shape_in = tuple(shapes[k][0])
        assert count_macs(students[k], shape_in) == count_macs(thinned[k], shape_in)
        assert count_macs(students[k], shape_in) < count_macs(teacher.blocks[k], shape_in)


def test_thinned_widths_in_whole_multiples_by_hand() -> None:
    from distillkit.compress.student import thinned

    assert [thinned(c, 0.39) for c in (16, 32, 64, 128)] == [6, 12, 25, 50]  # rounded, as before
    assert [thinned(c, 0.39, 16) for c in (16, 32, 64, 128)] == [6, 16, 16, 48]  # wider than 16: down to 16s
    assert thinned(64, 0.5, 16) == 32  # an exact multiple stays
    assert thinned(64, 0.1, 16) == 16  # at least one multiple
    assert thinned(8, 0.5, 16) == 4  # not wider than the multiple: thinned as before
    assert thinned(50, 1.0, 16) == 48


@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_channel_multiple_keeps_wide_convs_in_whole_blocks_and_meets_the_macs_target(arch: str) -> None:
    from distillkit.compress.student import ratio_for_macs

    teacher = split_model(build_model(arch, 10, 1, width=0.25, small_input=True).eval())
    shapes = block_shapes(teacher, torch.zeros(1, 1, 32, 32))
    one = (1, 1, 32, 32)
    outside = count_macs(teacher, one) - sum(
        count_macs(b, tuple(s[0])) for b, s in zip(teacher.blocks, shapes, strict=True)
    )

    def widths(multiple: int) -> tuple[float, float, set[int]]:
        ratio, reached = ratio_for_macs(
            teacher.blocks, shapes, "thin", 2.5, outside, channel_multiple=multiple
        )
        students = design_student(teacher.blocks, shapes, "thin", ratio, channel_multiple=multiple)
        macs = outside + sum(count_macs(b, tuple(s[0])) for b, s in zip(students, shapes, strict=True))
        assert count_macs(teacher, one) / macs == pytest.approx(reached)
        for student, block in zip(students, teacher.blocks, strict=True):  # receptive fields kept
            assert receptive_field(student) == receptive_field(block)
        convs = {m.out_channels for s in students for m in s.modules() if isinstance(m, nn.Conv2d)}
        return ratio, reached, convs

    _, reached, convs = widths(1)
    assert reached >= 2.5 and any(c > 16 and c % 16 for c in convs)  # the plain rule leaves odd widths
    _, reached, convs = widths(16)
    assert reached >= 2.5
    assert all(c <= 16 or c % 16 == 0 for c in convs)


def test_the_student_section_passes_its_channel_multiple_on() -> None:
    from distillkit.compress.student import ratio_from_config, student_from_config
    from distillkit.config.compress import StudentConfig

    teacher = split_model(build_model("resnet18", 10, 1, width=0.25, small_input=True).eval())
    shapes = block_shapes(teacher, torch.zeros(1, 1, 32, 32))
    config = StudentConfig(channel_multiple=16, macs_reduction=2.5)
    ratio, reached = ratio_from_config(teacher, shapes, config)
    students = student_from_config(teacher.blocks, shapes, config, ratio)
    widths = {m.out_channels for s in students for m in s.modules() if isinstance(m, nn.Conv2d)}
    assert reached >= 2.5 and widths >= {6, 48} and all(c <= 16 or c % 16 == 0 for c in widths)


def test_thinned_widths_survive_float_error() -> None:
    from distillkit.compress.student import thinned

    assert 800 * 0.58 / 16 < 29  # 28.999999999999996 in floats
    assert thinned(800, 0.58, 16) == 29 * 16
