"""The job-wide float type: float32, or float64 under `perf.precision: fp64` (a checking mode, not a speed one).

`job_dtype` sets torch's default float type for the duration of a job, so models, buffers and every tensor the
job creates are float64; `to_device` moves a batch and gives its floating tensors that type (data sets decode to
float32 in their loader workers, which may not share the default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from distillkit.config import PerformanceConfig


@contextmanager
def job_dtype(perf: PerformanceConfig | None) -> Iterator[torch.dtype]:
    """torch's default float type is float64 inside when `perf.precision` is fp64 (else left as it is)."""
    was = torch.get_default_dtype()
    dtype = torch.float64 if perf is not None and perf.precision == "fp64" else was
    torch.set_default_dtype(dtype)
    try:
        yield dtype
    finally:
        torch.set_default_dtype(was)


def to_device(x: torch.Tensor, device: torch.device | str, non_blocking: bool = False) -> torch.Tensor:
    """`x` on `device`; a floating `x` in the default float type when that is float64 (else as it is)."""
    if x.is_floating_point() and torch.get_default_dtype() == torch.float64:
        return x.to(device, dtype=torch.float64, non_blocking=non_blocking)
    return x.to(device, non_blocking=non_blocking)
