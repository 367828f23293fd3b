"""Model cost profiling: parameter counts, multiply-accumulates and wall-clock latency.

What is counted:

* **Parameters**: ``numel()`` of every parameter (shared parameters once); buffers such as BatchNorm
  running statistics are not parameters and are not counted.
* **MACs**: the FLOPs reported by :class:`torch.utils.flop_counter.FlopCounterMode` divided by 2.
  That counter covers matrix-multiply-like ops only: convolutions (``aten.convolution``, incl. grouped
  and depthwise), ``mm``/``addmm``/``bmm``/``baddbmm`` (hence ``nn.Linear`` and ``torch.matmul``) and
  attention kernels. A convolution costs ``out_numel * (C_in / groups) * kH * kW`` MACs and a linear
  layer ``batch * in_features * out_features``; bias additions are not counted. BatchNorm, activations
  (ReLU, ...), pooling, element-wise ops (e.g. residual additions) and softmax are not counted either.
* **Latency**: wall-clock time of ``model(x)`` under :func:`torch.inference_mode` in eval mode, measured
  with :func:`time.perf_counter` per run (CUDA is synchronized before and after each run).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from distillkit.engine.modes import eval_mode

__all__ = ["count_params", "count_macs", "measure_latency", "profile_model"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements; with ``trainable_only``, only those with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device of the first parameter/buffer (CPU if none) and dtype of the first floating one."""
    tensors = list(model.parameters()) + list(model.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    return device, dtype


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a zero input of ``input_shape`` (batch included).

    Computed as ``FlopCounterMode`` total FLOPs // 2, i.e. conv / linear / matmul MACs only (bias, BN,
    activations and pooling are not counted; see the module docstring). The model runs in eval mode
    under ``torch.no_grad()`` on its own device; its training flags are restored afterwards.
    """
    device, dtype = _model_device_dtype(model)
    x = torch.zeros(input_shape, device=device, dtype=dtype)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops()) // 2


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    repeats: int = 30,
    warmup: int = 5,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    channels_last: bool = False,
) -> dict:
    """Wall-clock latency of ``model(x)`` for a random input of ``input_shape`` (batch included).

    The model must already live on ``device``; it is run in eval mode under ``torch.inference_mode``
    and its training flags are restored afterwards. ``threads`` sets ``torch.set_num_threads`` for the
    measurement only; ``channels_last`` gives the input in that memory format (4-D inputs; the model's weights
    are left as they are). Returns ``median_ms``, ``p90_ms``, ``mean_ms``, ``std_ms`` (population std) over
    ``repeats`` timed runs after ``warmup`` untimed ones, plus ``batch``, ``device`` and ``threads``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = torch.device(device)
    model_device, dtype = _model_device_dtype(model)
    if model_device.type != device.type:
        raise ValueError(f"model is on {model_device} but latency was requested on {device}")
    cuda = device.type == "cuda"
    prev_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        used_threads = torch.get_num_threads()
        x = torch.randn(input_shape, device=model_device, dtype=dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        times = []
        with eval_mode(model), torch.inference_mode():
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize(model_device)
                start = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize(model_device)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        if threads is not None:
            torch.set_num_threads(prev_threads)
    ms = np.asarray(times)
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
        "batch": int(input_shape[0]),
        "device": str(device),
        "threads": used_threads,
    }


def _latency_table(
    model: nn.Module,
    input_shape_without_batch: tuple[int, ...],
    batches: list[int],
    repeats: int,
    device: torch.device,
    threads: int | None,
) -> dict[str, dict]:
    return {
        str(b): measure_latency(
            model, (b, *input_shape_without_batch), repeats=repeats, device=device, threads=threads
        )
        for b in batches
    }


def profile_model(
    model: nn.Module,
    input_shape_without_batch: tuple[int, int, int],
    batches: list[int],
    repeats: int,
    device: torch.device | str,
    threads: int | None = None,
) -> dict:
    """Parameters, per-image MACs (batch 1) and latency per batch size of ``model``.

    Returns ``{"params", "macs", "latency_ms": {str(batch): median_ms}, "latency": {str(batch): dict}}``
    (see :func:`measure_latency`). If the model is not on ``device``, a copy is moved there. When
    ``device`` is the CPU and CUDA is available, a CUDA copy is also timed and reported as
    ``"gpu_latency_ms"`` (medians) and ``"gpu_latency"`` (full dicts). The caller's model is never moved.
    """
    device = torch.device(device)
    shape = tuple(input_shape_without_batch)
    result: dict = {"params": count_params(model), "macs": count_macs(model, (1, *shape))}

    model_device, _ = _model_device_dtype(model)
    timed = model if model_device.type == device.type else copy.deepcopy(model).to(device)
    latency = _latency_table(timed, shape, batches, repeats, device, threads)
    result["latency_ms"] = {b: d["median_ms"] for b, d in latency.items()}
    result["latency"] = latency

    if device.type == "cpu" and torch.cuda.is_available():
        cuda = torch.device("cuda")
        gpu_model = copy.deepcopy(model).to(cuda)
        gpu_latency = _latency_table(gpu_model, shape, batches, repeats, cuda, None)
        del gpu_model
        result["gpu_latency_ms"] = {b: d["median_ms"] for b, d in gpu_latency.items()}
        result["gpu_latency"] = gpu_latency
    return result
