"""Student block design that preserves the teacher block's receptive field (Wang et al., IJCAI 2018, §3.2).

A student block repeats the teacher block's spatial operations — every conv's kernel size, stride, dilation and
padding, every pooling layer — so its receptive field is the teacher's, but each conv keeps only a fraction
(`ratio`) of the filters. The teacher block's output channels come back in one of two ways (`plain`):

- ``internal`` (default): the block's last conv (and a conv just before a residual unit) keeps the teacher's
  width, reading the thinned channels, as filter pruning thins a plain network (Li et al., ICLR 2017): no conv is
  added, and with `init="inherit"` the student block is the teacher block with its weakest internal filters
  removed.
- ``restore``: a final 1×1 conv + BN + ReLU restores them (the paper's design); the 1×1 starts random.

Residual units keep their shape, in one of two ways (`residual`):

- ``internal`` (default): only the branch's internal channels are thinned, as filter pruning thins ResNets (Li et
  al., ICLR 2017): every conv of the branch but the last keeps `ratio` × the filters, the last one keeps the
  unit's width, reading the thinned channels. No conv is added, and with `init="inherit"` the student branch is
  the teacher's branch with its weakest internal filters removed (at ratio 1, the teacher's unit itself).
- ``branch``: every conv of the branch is thinned (a Bottleneck's last 1×1 excepted) and the branch ends in
  ReLU + a fresh 1×1 conv + BN back to the unit's width.

Widths: each thinned conv keeps `ratio` × its filters, rounded; with `channel_multiple` (say 16), a conv wider
than the multiple keeps whole multiples of it instead, since CPU conv kernels compute output channels in blocks and
a width between two multiples takes the time of the larger one.

Designs:
- ``thin``: each k×k conv becomes a k×k conv with `ratio` × the filters.
- ``depthwise``: each k×k conv (k > 1) becomes a depthwise k×k conv (same stride/dilation) followed by a
  pointwise conv to `ratio` × the filters — the same receptive field for far fewer MACs.

Video blocks (`models.video_blocks.ClipBlock`, a TSM/TSN network cut into blocks) are designed on their frame
layers and wrapped again. A conv that shifts its input along time (TSM's `ShiftConv2d`, a residual unit's first
conv) becomes a shifting conv with the same `num_segments` and `shift_div` (the first conv of the depthwise pair),
so every student unit shifts where the teacher's does; with `residual: internal` it reads the unit's full width,
so the same channels move.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch
from torch import fx, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from distillkit.engine.profile import count_macs
from distillkit.errors import SplitError
from distillkit.models.blocks import BlockTracer, BlockwiseNet, ResidualUnit
from distillkit.models.pooling import StridedMaxPool2d, fast_pools
from distillkit.models.tsm import ShiftConv2d
from distillkit.models.video_blocks import ClipBlock

if TYPE_CHECKING:
    from distillkit.config.compress import StudentConfig

RESIDUAL_MODES = ("internal", "branch")
PLAIN_MODES = ("restore", "internal")
_KEEP = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


def resolve_init(design: str, init: str) -> str:
    """`auto` → `inherit` for the thin design, `random` for depthwise; other values unchanged."""
    if init != "auto":
        return init
    return "inherit" if design == "thin" else "random"


def thinned(channels: int, ratio: float, multiple: int = 1) -> int:
    """`ratio` × `channels` filters, rounded; with `multiple` > 1 and a conv wider than it, rounded down to whole
    multiples instead (at least one): CPU conv kernels compute output channels in blocks (16 floats with AVX-512),
    so a width between two multiples costs the time of the larger one."""
    if multiple > 1 and channels > multiple:
        # + 1e-9: 800 × 0.58 / 16 is 28.999999999999996 in floats, and must give 29 multiples, not 28
        return max(multiple, multiple * math.floor(channels * ratio / multiple + 1e-9))
    return max(1, int(round(channels * ratio)))


def design_student_block(
    block: nn.Module,
    in_channels: int,
    out_channels: int,
    design: str = "thin",
    ratio: float = 0.5,
    init: str = "random",
    residual: str = "internal",
    plain: str = "internal",
    channel_multiple: int = 1,
) -> nn.Sequential:
    """A student for teacher `block` (in/out channels of the block's tensors); `residual`: how residual units are
    thinned (`internal` or `branch`), `plain`: how the block's own output width comes back (`restore` or
    `internal`; module docstring), `channel_multiple`: thinned widths in whole multiples of it (`thinned`).

    `init="random"` initialises it afresh (`"auto"`: inherit for thin, random for depthwise); `init="inherit"` (thin design only) starts every thinned conv from the
    teacher's filters of largest L1 norm (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017), with
    their input channels and batch-norm statistics, so the student starts from a subset of the teacher's features;
    the 1×1 restoring convs stay random.
    """
    if design not in ("thin", "depthwise"):
        raise SplitError(f"unknown student design '{design}'; choose 'thin' or 'depthwise'")
    if residual not in RESIDUAL_MODES:
        raise SplitError(f"unknown student residual '{residual}'; choose 'internal' or 'branch'")
    if plain not in PLAIN_MODES:
        raise SplitError(f"unknown student plain '{plain}'; choose 'restore' or 'internal'")
    init = resolve_init(design, init)
    if init not in ("random", "inherit"):
        raise SplitError(f"unknown student init '{init}'; choose 'auto', 'random' or 'inherit'")
    if init == "inherit" and design != "thin":
        raise SplitError(f"student init 'inherit' needs the thin design, not '{design}'")
    inherit = init == "inherit"
    layers: list[nn.Module] = []
    channels, keep = in_channels, None
    chain = _module_chain(block)
    wide = _width_keeping_convs(chain) if plain == "internal" else set()
    for name, module in chain:
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise SplitError(
                    f"student design: grouped conv '{name}' is not supported; give the student block"
                )
            out = (
                module.out_channels if name in wide else thinned(module.out_channels, ratio, channel_multiple)
            )
            layers += _conv(module, channels, out, design)
            keep = _inherit_conv(layers[-1], module, keep) if inherit else None
            channels = out
        elif isinstance(module, nn.BatchNorm2d):
            layers.append(_inherit_bn(module, keep) if inherit else nn.BatchNorm2d(channels))
        elif isinstance(module, _KEEP):
            layers.append(copy.deepcopy(module))
        elif isinstance(module, (BasicBlock, Bottleneck, ResidualUnit)):
            unit_in, unit_out = _unit_channels(module)
            if channels != unit_in:
                layers += _restore(channels, unit_in)
            layers.append(
                _residual_student(
                    module, unit_in, unit_out, design, ratio, inherit, residual, channel_multiple
                )
            )
            channels, keep = unit_out, None
        else:
            raise SplitError(
                f"student design: layer '{name}' ({type(module).__name__}) is not supported; "
                "give the student block yourself"
            )
    if channels != out_channels:
        layers += _restore(channels, out_channels)
    return nn.Sequential(*layers)


def _width_keeping_convs(chain: list[tuple[str, nn.Module]]) -> set[str]:
    """The convs of a chain that `plain: internal` leaves at the teacher's width: the last one before each residual
    unit and the last one of the chain (the layers between keep the channel count)."""
    wide, last = set(), None
    for name, module in chain:
        if isinstance(module, nn.Conv2d):
            last = name
        elif isinstance(module, (BasicBlock, Bottleneck, ResidualUnit)) and last is not None:
            wide.add(last)
            last = None
    return wide | ({last} if last is not None else set())


def _module_chain(block: nn.Module) -> list[tuple[str, nn.Module]]:
    """The block's operations in order; it must be a plain chain of modules."""
    gm = fx.GraphModule(block, BlockTracer().trace(block))
    chain: list[tuple[str, nn.Module]] = []
    previous: fx.Node | None = None
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            previous = node if node.op == "placeholder" else previous
            continue
        if node.op != "call_module" or node.all_input_nodes != [previous]:
            raise SplitError(
                f"student design: '{node.name}' ({node.op} {node.target}) is not part of a plain chain of "
                "layers; give the student block yourself"
            )
        chain.append((str(node.target), gm.get_submodule(str(node.target))))
        previous = node
    return chain


def _conv(teacher: nn.Conv2d, in_ch: int, out_ch: int, design: str) -> list[nn.Module]:
    spatial = dict(stride=teacher.stride, padding=teacher.padding, dilation=teacher.dilation)
    bias = teacher.bias is not None
    if design == "depthwise" and max(teacher.kernel_size) > 1:
        return [
            _keep_shift(
                teacher, nn.Conv2d(in_ch, in_ch, teacher.kernel_size, groups=in_ch, bias=False, **spatial)
            ),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=bias),
        ]
    return [_keep_shift(teacher, nn.Conv2d(in_ch, out_ch, teacher.kernel_size, bias=bias, **spatial))]


def _keep_shift(teacher: nn.Conv2d, conv: nn.Conv2d) -> nn.Conv2d:
    """`conv`, shifting its input along time as the teacher's conv does (TSM), if it does."""
    if isinstance(teacher, ShiftConv2d):
        return ShiftConv2d.from_conv(conv, teacher.num_segments, teacher.shift_div)
    return conv


def _restore(in_ch: int, out_ch: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


def _unit_channels(unit: nn.Module) -> tuple[int, int]:
    convs = [m for m in _branch_layers(unit) if isinstance(m, nn.Conv2d)]
    return convs[0].in_channels, convs[-1].out_channels


def _branch_layers(unit: nn.Module) -> list[nn.Module]:
    if isinstance(unit, BasicBlock):
        return [unit.conv1, unit.bn1, nn.ReLU(inplace=True), unit.conv2, unit.bn2]
    if isinstance(unit, Bottleneck):
        relu = nn.ReLU(inplace=True)
        return [unit.conv1, unit.bn1, relu, unit.conv2, unit.bn2, relu, unit.conv3, unit.bn3]
    return list(unit.branch)


def _residual_student(
    unit: nn.Module,
    in_ch: int,
    out_ch: int,
    design: str,
    ratio: float,
    inherit: bool = False,
    residual: str = "internal",
    channel_multiple: int = 1,
) -> ResidualUnit:
    teacher_layers = _branch_layers(unit)
    convs = [m for m in teacher_layers if isinstance(m, nn.Conv2d)]
    last = convs[-1]
    layers: list[nn.Module] = []
    channels, keep = in_ch, None
    for m in teacher_layers:
        if isinstance(m, nn.Conv2d):
            # internal: the last conv keeps the unit's width. branch: only a final 1×1 conv does (Bottleneck);
            # otherwise a 1×1 is appended below.
            keep_width = m is last and (residual == "internal" or max(m.kernel_size) == 1)
            out = m.out_channels if keep_width else thinned(m.out_channels, ratio, channel_multiple)
            layers += _conv(m, channels, out, design)
            keep = _inherit_conv(layers[-1], m, keep) if inherit else None
            channels = out
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(_inherit_bn(m, keep) if inherit else nn.BatchNorm2d(channels))
        else:
            layers.append(copy.deepcopy(m))
    if channels != out_ch:
        layers += [nn.ReLU(inplace=True), *_restore(channels, out_ch, relu=False)]
    teacher_shortcut = unit.downsample if isinstance(unit, (BasicBlock, Bottleneck)) else unit.shortcut
    shortcut = copy.deepcopy(teacher_shortcut) if inherit and teacher_shortcut is not None else None
    return ResidualUnit(nn.Sequential(*layers), shortcut or fresh_copy(teacher_shortcut))


@torch.no_grad()
def _inherit_conv(
    student: nn.Conv2d, teacher: nn.Conv2d, keep_in: torch.Tensor | None
) -> torch.Tensor | None:
    """Copy the teacher's filters of largest L1 norm into `student`; returns the kept output channels."""
    weight = teacher.weight if keep_in is None else teacher.weight[:, keep_in]
    if student.out_channels == teacher.out_channels:
        keep_out = None
        student.weight.copy_(weight)
    else:
        norms = teacher.weight.abs().sum(dim=(1, 2, 3))
        keep_out = norms.topk(student.out_channels).indices.sort().values
        student.weight.copy_(weight[keep_out])
    if student.bias is not None and teacher.bias is not None:
        student.bias.copy_(teacher.bias if keep_out is None else teacher.bias[keep_out])
    return keep_out


@torch.no_grad()
def _inherit_bn(teacher: nn.BatchNorm2d, keep: torch.Tensor | None) -> nn.BatchNorm2d:
    """A copy of the teacher's batch norm restricted to the kept channels."""
    bn = copy.deepcopy(teacher)
    if keep is None:
        return bn
    bn.num_features = len(keep)
    for name in ("weight", "bias"):
        setattr(bn, name, nn.Parameter(getattr(teacher, name)[keep].clone()))
    for name in ("running_mean", "running_var"):
        setattr(bn, name, getattr(teacher, name)[keep].clone())
    return bn


def fresh_copy(module: nn.Module | None) -> nn.Module:
    """A re-initialised copy of `module` (same structure, new parameters and BN statistics)."""
    if module is None:
        return nn.Identity()
    fresh = copy.deepcopy(module)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    return fresh


def design_student(
    blocks: nn.ModuleList,
    shapes: list[tuple[torch.Size, torch.Size]],
    design: str,
    ratio: float,
    init: str = "random",
    residual: str = "internal",
    copy_if_costlier: bool = True,
    plain: str = "internal",
    fast_pool: bool = True,
    channel_multiple: int = 1,
) -> list[nn.Module]:
    """Student blocks for every teacher block; `shapes[k]` = (input shape, output shape) of block k (for a
    `ClipBlock`, of clips: (N, T, C, H, W)).

    With `fast_pool`, every max-pooling layer whose windows tile its input becomes a `StridedMaxPool2d`: the same
    values, computed faster on a CPU when no gradient is asked for (`distillkit.models.pooling`). With
    `channel_multiple` > 1, thinned convs wider than it keep whole multiples of it (`thinned`).

    With `copy_if_costlier`, a block whose designed student would have at least the teacher block's MACs (a
    ResNet stem on grey images: one thin conv plus the 1×1 restore cost more than the teacher's conv) gets a copy
    of the teacher block instead: the teacher's weights with `init="inherit"`, fresh ones otherwise.
    """
    students: list[nn.Module] = []
    for k, (block, (shape_in, shape_out)) in enumerate(zip(blocks, shapes, strict=True)):
        if isinstance(block, ClipBlock):  # clips (N, T, C, H, W): designed on its frame layers
            frames = design_student_block(
                block.frames,
                shape_in[2],
                shape_out[2],
                design,
                ratio,
                init,
                residual,
                plain,
                channel_multiple,
            )
            student: nn.Module = ClipBlock(frames)
        else:
            student = design_student_block(
                block, shape_in[1], shape_out[1], design, ratio, init, residual, plain, channel_multiple
            )
        one = (1, *shape_in[1:])
        if copy_if_costlier and count_macs(student, one) >= count_macs(block, one):
            inherit = resolve_init(design, init) == "inherit"
            student = copy.deepcopy(block) if inherit else fresh_copy(block)
        if fast_pool:
            fast_pools(student)
        with torch.no_grad():
            got = student.eval()(torch.zeros(shape_in)).shape
        if got != shape_out:
            raise SplitError(
                f"student block {k} maps {tuple(shape_in)} to {tuple(got)}, teacher to {tuple(shape_out)}"
            )
        students.append(student)
    return students


def is_copy(student: nn.Module, teacher: nn.Module) -> bool:
    """Whether `student` is `teacher` itself in another object: the same submodules (names and types, every
    `fx.GraphModule` counting as one type, since a copied one gets a class of its own: the root of an image block,
    the frames of a video block's `ClipBlock`) and the same parameters and buffers (names, shapes and values
    exactly)."""
    kinds = [(n, _kind(m)) for n, m in student.named_modules() if n]
    if kinds != [(n, _kind(m)) for n, m in teacher.named_modules() if n]:
        return False
    a, b = student.state_dict(), teacher.state_dict()
    return a.keys() == b.keys() and all(a[n].shape == b[n].shape and torch.equal(a[n], b[n]) for n in a)


def _kind(module: nn.Module) -> type:
    if isinstance(module, StridedMaxPool2d):  # the same values as the teacher's pool
        return nn.MaxPool2d
    return fx.GraphModule if isinstance(module, fx.GraphModule) else type(module)


RATIO_STEPS = 64
"""`ratio_for_macs` searches ratios k / RATIO_STEPS."""


def ratio_for_macs(
    blocks: nn.ModuleList,
    shapes: list[tuple[torch.Size, torch.Size]],
    design: str,
    reduction: float,
    other_macs: int = 0,
    residual: str = "internal",
    copy_if_costlier: bool = True,
    plain: str = "internal",
    channel_multiple: int = 1,
) -> tuple[float, float]:
    """The largest filter ratio k/64 whose student has at least `reduction` times fewer MACs than the teacher, and
    the reduction it gives. MACs of one sample: the blocks' (teacher and student, on `shapes`) plus `other_macs`
    (the classifier head and anything outside the blocks, the same for both). A `SplitError` names the reduction
    reachable when even 1/64 is not enough."""

    def macs(modules: list[nn.Module]) -> int:
        return other_macs + sum(count_macs(m, (1, *s[0][1:])) for m, s in zip(modules, shapes, strict=True))

    teacher = macs(list(blocks))

    def achieved(k: int) -> float:
        return teacher / macs(
            design_student(
                blocks,
                shapes,
                design,
                k / RATIO_STEPS,
                "random",
                residual,
                copy_if_costlier,
                plain,
                channel_multiple=channel_multiple,
            )
        )

    if achieved(1) < reduction:
        raise SplitError(
            f"student.macs_reduction: {reduction:g}× fewer MACs is out of reach for the {design} design "
            f"(at most {achieved(1):.2f}× at ratio 1/{RATIO_STEPS}); ask for less, or use student.design: depthwise"
        )
    low, high = (
        1,
        RATIO_STEPS,
    )  # achieved(low) >= reduction; find the largest such k (fewer filters: fewer MACs)
    while low < high:
        mid = (low + high + 1) // 2
        if achieved(mid) >= reduction:
            low = mid
        else:
            high = mid - 1
    return low / RATIO_STEPS, achieved(low)


def student_from_config(
    blocks: nn.ModuleList,
    shapes: list[tuple[torch.Size, torch.Size]],
    config: StudentConfig,
    ratio: float,
    init: str | None = None,
) -> list[nn.Module]:
    """`design_student` with the choices of a `student:` config section at `ratio`; `init` (None: the section's)
    lets a baseline start from fresh weights."""
    return design_student(
        blocks,
        shapes,
        config.design,
        ratio,
        config.init if init is None else init,
        config.residual,
        config.copy_if_costlier,
        config.plain,
        config.fast_pool,
        config.channel_multiple,
    )


def macs_outside_blocks(teacher: BlockwiseNet, shapes: list[tuple[torch.Size, torch.Size]]) -> int:
    """MACs of one sample of a split teacher outside its blocks (the head): the same for teacher and student."""
    return count_macs(teacher, (1, *shapes[0][0][1:])) - sum(
        count_macs(b, (1, *sh[0][1:])) for b, sh in zip(teacher.blocks, shapes, strict=True)
    )


def ratio_from_config(
    teacher: BlockwiseNet, shapes: list[tuple[torch.Size, torch.Size]], config: StudentConfig
) -> tuple[float, float]:
    """`ratio_for_macs` for the `student:` section's `macs_reduction` and design choices on a whole split
    teacher (what lies outside its blocks, the head, counts for teacher and student alike)."""
    if config.macs_reduction is None:
        raise ValueError("ratio_from_config needs student.macs_reduction")
    return ratio_for_macs(
        teacher.blocks,
        shapes,
        config.design,
        config.macs_reduction,
        macs_outside_blocks(teacher, shapes),
        config.residual,
        config.copy_if_costlier,
        config.plain,
        config.channel_multiple,
    )
