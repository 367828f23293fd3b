"""Max-pooling that runs fast on a CPU without changing a single value.

PyTorch's CPU kernel for `max_pool2d` on NCHW tensors is slow for the small feature maps of a thin network: the
five pools of VGG-16 at width 0.25 took 8.0 of its 35.6 ms at batch 64 on one thread, where its PBKD student's
convs took 10.9 (docs/results.md, "PBKD across teacher families"). When the windows tile the input (kernel =
stride, no padding, no dilation), the same output is the element-wise maximum of strided views, which took 1.2.
`StridedMaxPool2d` computes it so wherever no gradient is asked for, and falls back to `nn.MaxPool2d` where one
is (training: gradients stay exactly PyTorch's), in channels-last (whose kernel is fast already) and in ONNX
export (which keeps its `MaxPool` node).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair


class StridedMaxPool2d(nn.MaxPool2d):
    """`nn.MaxPool2d` with windows that tile the input, computed without a gradient as the maximum of strided
    views: every output value equal to `nn.MaxPool2d`'s."""

    def __init__(self, kernel_size: int | tuple[int, int]) -> None:
        super().__init__(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.requires_grad
            or x.dim() != 4
            or torch.onnx.is_in_onnx_export()
            or (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        ):
            return super().forward(x)
        kh, kw = _pair(self.kernel_size)
        x = x[..., : x.shape[-2] // kh * kh, : x.shape[-1] // kw * kw]
        rows = x[..., 0::kh, :]
        for i in range(1, kh):
            rows = torch.maximum(rows, x[..., i::kh, :])
        out = rows[..., 0::kw]
        for j in range(1, kw):
            out = torch.maximum(out, rows[..., j::kw])
        return out


def tiles(pool: nn.MaxPool2d) -> bool:
    """Whether `pool`'s windows tile its input: kernel = stride, larger than 1×1 (a 1×1 pool is the identity), no
    padding or dilation, floor mode, no indices."""
    return (
        _pair(pool.kernel_size) == _pair(pool.stride)
        and _pair(pool.kernel_size) != (1, 1)
        and _pair(pool.padding) == (0, 0)
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
    )


def fast_pools(model: nn.Module) -> int:
    """Replace, in place, every `nn.MaxPool2d` of `model` whose windows tile its input by a `StridedMaxPool2d` of
    the same kernel; returns how many were replaced. The model computes the same values as before."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.MaxPool2d and tiles(child):
                setattr(parent, name, StridedMaxPool2d(child.kernel_size))
                replaced += 1
    return replaced
