"""Receptive fields of convolutional blocks, computed from the traced graph.

For each value the pair (rf, jump) is tracked per spatial axis: `rf` is how many input pixels one output unit
sees, `jump` the distance in input pixels between neighbouring output units. A k×k conv or pool with stride s and
dilation d maps (rf, jump) → (rf + (k − 1)·d·jump, jump·s). Element-wise joins (residual adds) take the largest
receptive field of their inputs (Araujo et al., "Computing receptive fields of CNNs", Distill 2019). Subclasses of
conv and pooling layers count as what they are (TSM's `ShiftConv2d` moves channels along time, not space);
reshapes between clips and frames (`models.video_blocks.ClipBlock`) leave the field as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import fx, nn

from distillkit.errors import SplitError

_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear, nn.Flatten)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field size and jump (effective stride) along (height, width)."""

    size: tuple[int, int]
    jump: tuple[int, int]


class _Tracer(fx.Tracer):
    """Keeps every conv and pooling layer whole, subclasses included (their own forward may not trace)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _WINDOWED) or super().is_leaf_module(m, module_qualified_name)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def receptive_field(module: nn.Module) -> ReceptiveField:
    """Receptive field of one output unit of `module` (a conv block) with respect to its input."""
    try:
        gm = fx.GraphModule(module, _Tracer().trace(module))
    except Exception as exc:
        raise SplitError(
            f"receptive field: {type(module).__name__} is not traceable ({exc.__class__.__name__})"
        ) from None
    fields: dict[fx.Node, ReceptiveField] = {}
    result: ReceptiveField | None = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            fields[node] = ReceptiveField((1, 1), (1, 1))
            continue
        inputs = [fields[n] for n in node.all_input_nodes if n in fields]
        if node.op == "output":
            result = inputs[0]
            continue
        if not inputs:  # constants
            continue
        merged = ReceptiveField(
            tuple(max(f.size[i] for f in inputs) for i in range(2)),  # type: ignore[arg-type]
            tuple(max(f.jump[i] for f in inputs) for i in range(2)),  # type: ignore[arg-type]
        )
        if node.op == "call_module":
            sub = gm.get_submodule(str(node.target))
            if isinstance(sub, _GLOBAL):
                raise SplitError(f"receptive field is global after '{node.target}' ({type(sub).__name__})")
            if isinstance(sub, _WINDOWED):
                merged = _through_window(merged, sub)
        elif node.op == "call_function" and getattr(node.target, "__name__", "") in (
            "conv2d",
            "max_pool2d",
            "avg_pool2d",
        ):
            raise SplitError(
                f"receptive field: functional '{node.target.__name__}' is not supported; use modules"
            )
        fields[node] = merged
    assert result is not None
    return result


def _through_window(rf: ReceptiveField, layer: nn.Module) -> ReceptiveField:
    k = _pair(layer.kernel_size)
    s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
    d = _pair(getattr(layer, "dilation", 1))
    size = tuple(rf.size[i] + (k[i] - 1) * d[i] * rf.jump[i] for i in range(2))
    jump = tuple(rf.jump[i] * s[i] for i in range(2))
    return ReceptiveField(size, jump)  # type: ignore[arg-type]
