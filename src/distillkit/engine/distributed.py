"""Multi-process data-parallel training (plain `DistributedDataParallel`) for runs launched by `torchrun`.

A run is distributed when `torchrun` started it with WORLD_SIZE > 1: `process_group` then joins the group
(gloo on CPU, NCCL on CUDA with one GPU per process, `cuda:LOCAL_RANK`). Everything else here is a no-op in a
single process, so single-process runs are exactly as without this module.

Conventions: a config's batch size is the *global* batch (split evenly over the processes); batch norm runs over
the global batch too (`data_parallel` makes it synchronised), so a step sees the statistics and gradient of the
same samples as one process with the whole batch would; evaluation runs on contiguous shards (`shard`) whose
counts or outputs are summed or gathered; only rank 0 writes files and prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset, DistributedSampler, Subset

from distillkit.engine.device import resolve_device
from distillkit.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")


def launched() -> bool:
    """Whether `torchrun` started this process as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """Whether a process group of more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def main_only(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Decorator: run `fn` on rank 0 only; other ranks get None."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        return fn(*args, **kwargs) if is_main() else None

    return wrapper


@contextmanager
def process_group(device: str = "auto") -> Iterator[torch.device]:
    """The device of this process, inside the process group when `launched()` (destroyed on exit).

    Single process: `resolve_device(device)`. Under torchrun: `cuda:LOCAL_RANK` with NCCL when `device` asks for
    CUDA (`auto` with a GPU present, or `cuda[:N]`, whose index is then ignored), else the CPU with gloo.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield resolve_device(device) if not is_distributed() else _own_device(device)
        return
    if not dist.is_available():
        raise ConfigError("this run was launched with WORLD_SIZE > 1 but torch.distributed is unavailable")
    target = _own_device(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
        dist.init_process_group("nccl", device_id=target)
    else:
        dist.init_process_group("gloo")
    try:
        yield target
    finally:
        dist.destroy_process_group()


def _own_device(device: str) -> torch.device:
    kind = resolve_device("cuda" if device.startswith("cuda") else device).type  # the index is LOCAL_RANK
    if kind == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(kind)


def per_process_batch(global_batch: int, key: str) -> int:
    """The batch of each process when `global_batch` is split over all of them; a `ConfigError` naming `key`
    when it does not divide evenly."""
    n = world_size()
    if global_batch % n:
        raise ConfigError(
            f"{key}: {global_batch} is the global batch and must divide evenly over the {n} processes "
            f"(use a multiple of {n})"
        )
    return global_batch // n


def train_sampler(dataset: Dataset, seed: int) -> DistributedSampler:
    """This process's part of every epoch: a seeded shuffle (new each `set_epoch`), tail dropped so all processes
    take the same number of batches, which is the number one process would take with the global batch."""
    return DistributedSampler(dataset, world_size(), rank(), shuffle=True, seed=seed, drop_last=True)


def shard(dataset: Dataset, batch_size: int = 1) -> Dataset:
    """The contiguous block of `dataset` this process evaluates, made of whole batches of `batch_size` (the
    batch counts of the processes differ by at most one, nothing repeated); concatenating the blocks in rank
    order gives the whole set back. Whole batches mean each batch is the one a single process would compute,
    so per-sample outputs are bitwise those of one process (a batch's size can change a kernel's rounding)."""
    if not is_distributed():
        return dataset
    n, r, w = len(dataset), rank(), world_size()
    batches = -(-n // batch_size)
    start, stop = (min(n, batches * k // w * batch_size) for k in (r, r + 1))
    return Subset(dataset, range(start, stop))


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def process_share(count: int) -> float:
    """This process's share of a count summed over all processes (the global count / processes; `count` itself
    when not distributed): the divisor that makes averaged DDP gradients those of a mean over the global batch."""
    if not is_distributed():
        return float(count)
    return all_reduce_sum([count])[0] / world_size()


def all_reduce_sum(values: list[float] | list[int]) -> list[float]:
    """Element-wise sums of `values` over all processes (float64; `values` unchanged when not distributed)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenation along dim 0 of every process's `t` (first dims may differ), in rank order, on the CPU."""
    if not is_distributed():
        return t
    device = _comm_device()
    size = torch.tensor([t.shape[0]], device=device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=device)
    padded[: t.shape[0]] = t.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())].cpu() for p, s in zip(parts, sizes, strict=True)])


def gather_objects(obj: object) -> list[object]:
    """Every process's picklable `obj`, in rank order (`[obj]` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over all processes, differentiable: the gradient of each input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(_BatchNorm):
    """Batch norm over the global batch of all processes, differentiable, on any device (torch's
    `nn.SyncBatchNorm` is GPU-only). Mean, then variance, by two autograd-aware all-reduces; running statistics
    updated like `F.batch_norm` (unbiased variance). In eval mode, or alone, it is plain batch norm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_tensor([x.numel() / x.shape[1]])
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(mean.detach(), alpha=f)
                self.running_var.mul_(1 - f).add_(var.detach() * (n / (n - 1)), alpha=f)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def _synced(bn: _BatchNorm, device: torch.device) -> nn.Module:
    """A synchronised batch norm sharing `bn`'s parameters and buffers (updates reach `bn`)."""
    cls = nn.SyncBatchNorm if device.type == "cuda" else GlobalBatchNorm
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, device=device)
    for name in ("weight", "bias"):
        if getattr(bn, name) is not None:
            setattr(new, name, getattr(bn, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        if getattr(bn, name) is not None:
            new.register_buffer(name, getattr(bn, name))
    return new.train(bn.training)


def barrier() -> None:
    """Wait for every process (a no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


@contextmanager
def synchronised_batch_norms(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """`model` with every batch norm normalising over the global batch of all processes while in training mode
    (`nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` elsewhere, sharing the original's parameters and buffers); on
    exit the original modules are back, holding the updated values. A no-op in one process."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    if is_distributed():
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _BatchNorm) and not isinstance(
                    child, nn.SyncBatchNorm | GlobalBatchNorm
                ):
                    parent.add_module(name, _synced(child, device))
                    swapped.append((parent, name, child))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            parent.add_module(name, child)


@contextmanager
def data_parallel(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """`model` to train: itself in one process; under torchrun wrapped in DDP with its batch norms synchronised
    over the global batch (on exit the original batch-norm modules are back, holding the trained values)."""
    if not is_distributed():
        yield model
        return
    with synchronised_batch_norms(model, device):
        ids = [device.index] if device.type == "cuda" else None
        yield nn.parallel.DistributedDataParallel(model, device_ids=ids)
