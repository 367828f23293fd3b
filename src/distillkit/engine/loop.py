"""The one training loop every job uses, and evaluation.

A job describes *what* to train as an `Objective` (which parameters, which modules train, what loss); `fit`
does the rest: optimiser, schedule, device moves, progress, NaN guard, history, and the speed options of a
`PerformanceConfig` (autocast precision, channels-last, torch.compile; all off by default). Logged loss parts
and the learning rate also go to the job's tracker (`engine.tracking`), under `fit`'s description.

An objective's loss parts are detached tensors (`LossParts`): computing them costs no host sync and no graph
break under `torch.compile`; `fit` reads them back from the device once per logging interval.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.config import OptimConfig, PerformanceConfig
from distillkit.engine import distributed
from distillkit.engine.fit_state import FitProgress, Resumable, load_fit_state, save_fit_state
from distillkit.engine.modes import eval_mode
from distillkit.engine.precision import to_device
from distillkit.engine.progress import progress_bar
from distillkit.engine.tracking import tracker
from distillkit.errors import ConfigError, DistillkitError

LossParts = dict[str, torch.Tensor]
"""The named parts of a loss, for logs: detached 0-d tensors (`.detach()`, never `.item()`) on the loss's
device."""


class Objective(Protocol):
    """What one training run optimises.

    An objective may also offer `trainable_module() -> nn.Module`, the module holding all its trainable
    parameters: under torchrun `fit` then trains it data-parallel (DDP over the global batch) by itself."""

    def parameters(self) -> Iterable[nn.Parameter]:
        """The parameters to train; nothing else gets gradients or optimiser state."""

    def set_mode(self) -> None:
        """Put the modules in train/eval mode for a training step (frozen parts stay in eval mode)."""

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        """Total loss of a batch and its named parts for logs (detached 0-d tensors: `fit` averages them over
        each logging interval and reads them back once per interval)."""


class _ObjectiveModule(nn.Module):
    """An objective as a module: `forward` is its loss, and its trainable module is a submodule, so that
    DistributedDataParallel can wrap it (DDP hooks `forward` and the parameters of the modules it holds)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.objective = objective
        self.trainable = objective.trainable_module()  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        return self.objective.loss(x, y)


@contextmanager
def _data_parallel_loss(
    objective: Objective, device: torch.device
) -> Iterator[Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, LossParts]]]:
    """`objective.loss`; under torchrun, for an objective with `trainable_module()` (the module holding every
    trainable parameter), the same loss through DDP with that module's batch norms over the global batch.
    Objectives without it are trained as given (a job may have wrapped its model in DDP itself)."""
    if not (distributed.is_distributed() and hasattr(objective, "trainable_module")):
        yield objective.loss
        return
    with distributed.data_parallel(_ObjectiveModule(objective), device) as ddp:
        yield ddp


@dataclass
class FitResult:
    steps: int
    seconds: float
    samples: int
    history: list[dict[str, float]] = field(default_factory=list)


class NonFiniteLoss(DistillkitError):
    """The loss became NaN or Inf."""


def build_optimizer(params: list[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Linear warm-up then cosine decay (or constant) as a multiple of the base learning rate."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    done = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * done))


def cycle(loader: DataLoader, epoch: int = 0, epoch_done: Callable[[int], None] | None = None) -> Iterator:
    """Batches forever, epoch after epoch from `epoch`: a fresh shuffle, and fresh random draws from data sets
    that have `set_epoch` (video sets seed their sampling by epoch), as from samplers that have it
    (`DistributedSampler` shuffles by epoch). `epoch_done(epochs)` is called when an epoch's batches are spent and
    before the next epoch draws anything (its shuffle included): where a training state is complete."""
    while True:
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1
        if epoch_done is not None:
            epoch_done(epoch)


def check_performance(perf: PerformanceConfig | None, device: torch.device | str) -> None:
    """A `ConfigError` naming the key when `perf` asks for what `device` cannot do."""
    if perf is None:
        return
    kind = torch.device(device).type
    if perf.precision == "fp16" and kind != "cuda":
        raise ConfigError(
            f"perf.precision: fp16 needs a CUDA device (its gradient scaler is CUDA-only) and this run is on "
            f"{kind}; use bf16 or fp32"
        )
    if perf.precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("perf.precision: this GPU does not support bf16; use fp16 or fp32")


def _autocast(perf: PerformanceConfig, device: torch.device):
    """The autocast context of a training step (a no-op for fp32)."""
    if perf.precision in ("fp32", "fp64"):  # fp64: the job's default float type (engine.precision)
        return nullcontext()
    dtype = torch.bfloat16 if perf.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextmanager
def _without_onednn() -> Iterator[None]:
    """CPU convolutions without oneDNN: its backward of a strided 1×1 convolution with channels-last input and
    fewer input channels than its vector block (8 with AVX2) writes out of bounds, which corrupts the heap or the
    weight gradients (uxlfoundation/oneDNN#6035; e.g. the projection shortcuts of a CIFAR ResNet at width 0.25).
    Training meets such inputs with `channels_last`, and with `compile`, whose code makes activations
    channels-last where it sees fit."""
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was


_LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, LossParts]]


def _compile(loss: _LossFn, desc: str) -> _LossFn | None:
    """`torch.compile(loss)`, or None (with a warning) when torch cannot compile on this platform."""
    if not torch._dynamo.is_dynamo_supported():
        warnings.warn(
            f"{desc}: perf.compile is on but torch.compile is not supported here "
            f"(torch {torch.__version__}); training uncompiled",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return torch.compile(loss)


def _interval_means(steps: list[LossParts]) -> dict[str, float]:
    """Each part's mean over the steps of a logging interval (a part a step lacks counts 0 there), summed in
    step order in Python floats, so equal to the mean of the parts' `.item()`s; one read-back from the device."""
    names = [name for parts in steps for name in parts]
    if not names:
        return {}
    values = torch.stack([v.to(torch.float64) for parts in steps for v in parts.values()]).tolist()
    sums: dict[str, float] = {}
    for name, value in zip(names, values, strict=True):
        sums[name] = sums.get(name, 0.0) + value
    return {name: total / len(steps) for name, total in sums.items()}


def fit(
    objective: Objective,
    loader: DataLoader,
    steps: int,
    optim: OptimConfig,
    device: torch.device,
    desc: str = "train",
    log_every: int = 50,
    perf: PerformanceConfig | None = None,
    resumable: Resumable | None = None,
) -> FitResult:
    """Train `objective` for `steps` optimiser steps on batches from `loader`.

    With `resumable`, the training state is written after every full epoch and after the last step, and when its
    file is there at the start, `fit` goes on from it (`engine.fit_state`).

    `perf` (None: plain fp32) picks the autocast precision
    of the forward pass and loss (fp16 with a gradient scaler), channels-last trained conv weights and 4-D inputs,
    and `torch.compile` of the objective's loss. With its defaults, training is exactly as without it.

    Every `log_every` steps (and after the last) the mean of each loss part over those steps goes to the history,
    the tracker and the progress line; the parts are read back from the device then, once for the interval. Under
    torchrun these are this process's parts (rank 0 logs them), not averaged over the processes.
    """
    device = torch.device(device)
    check_performance(perf, device)
    params = [p for p in objective.parameters() if p.requires_grad]
    if not params:
        raise DistillkitError(f"{desc}: nothing to train (no parameter requires grad)")
    perf = perf if perf is not None else PerformanceConfig()
    if perf.channels_last:  # in place (`.data`), so every holder of these parameters sees the new layout
        for p in params:
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
    mixed = perf.precision in ("bf16", "fp16")
    cpu_layouts = device.type == "cpu" and (perf.channels_last or perf.compile)
    safe_kernels = _without_onednn if cpu_layouts else nullcontext
    scaler = torch.amp.GradScaler(device.type) if perf.precision == "fp16" else None
    optimizer = build_optimizer(params, optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps, optim))
    result = FitResult(steps=steps, seconds=0.0, samples=0)
    start = time.perf_counter()
    interval: list[LossParts] = []  # the parts of the steps since the last log, on the device
    done = load_fit_state(resumable, steps, optimizer, scheduler, scaler, loader) if resumable else None
    if done is not None:
        result.samples, result.history = done.samples, done.history
        interval = [{k: v.to(device) for k, v in parts.items()} for parts in done.interval]
    first = done.step if done is not None else 0
    step = first

    def keep_state(epochs: int) -> None:  # `step` steps are done; the next epoch has drawn nothing yet
        progress = FitProgress(step, epochs, result.samples, result.history, interval)
        save_fit_state(resumable, steps, progress, optimizer, scheduler, scaler, loader)

    epoch_done = keep_state if resumable is not None else None
    batches = cycle(loader, done.epoch if done is not None else 0, epoch_done)
    with progress_bar(desc, total=steps) as bar, _data_parallel_loss(objective, device) as compute_loss:
        step_loss = _compile(compute_loss, desc) if perf.compile else None
        if first:
            bar.advance(first)
        for step in range(first, steps):
            objective.set_mode()
            x, y = next(batches)
            x, y = to_device(x, device, non_blocking=True), y.to(device, non_blocking=True)
            if perf.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with safe_kernels(), _autocast(perf, device):
                if step_loss is None:
                    loss, parts = compute_loss(x, y)
                else:
                    try:
                        loss, parts = step_loss(x, y)
                    except torch._dynamo.exc.BackendCompilerFailed as exc:
                        why = " ".join(str(exc).split())[:300] or type(exc).__name__
                        warnings.warn(
                            f"{desc}: perf.compile is on but torch.compile failed ({why}); training uncompiled",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        step_loss = None
                        loss, parts = compute_loss(x, y)
            if not torch.isfinite(loss):
                named = ", ".join(f"{k}={float(v):.4g}" for k, v in parts.items())
                where = f"step {step} (batch {step % len(loader)} of epoch {step // len(loader)})"
                hint = f" or train in fp32 (perf.precision is {perf.precision})" if mixed else ""
                raise NonFiniteLoss(
                    f"{desc}: loss is {loss.item()} at {where}; parts: {named}. Nothing was saved for this run "
                    f"after its last checkpoint; lower the learning rate or check the data{hint}"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                with safe_kernels():
                    loss.backward()
                optimizer.step()
            else:  # fp16: scaled backward; the step is skipped when gradients overflowed
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            result.samples += x.shape[0]
            interval.append({k: v.detach() for k, v in parts.items()})
            if (step + 1) % log_every == 0 or step + 1 == steps:
                entry = {"step": step + 1, **_interval_means(interval)}
                result.history.append(entry)
                parts_now = {k: v for k, v in entry.items() if k != "step"}
                tracker().scalars(desc, {**parts_now, "lr": scheduler.get_last_lr()[0]}, step + 1)
                bar.set_postfix(", ".join(f"{k} {v:.3f}" for k, v in entry.items() if k != "step"))
                interval = []
            bar.advance()
    optimizer.zero_grad(set_to_none=True)
    if resumable is not None and first < steps:  # trained to the end: a resume after a crash trains no more
        step = steps
        keep_state(steps // len(loader))
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def split_views(x: torch.Tensor, segments: int | None) -> tuple[torch.Tensor, int]:
    """Clips (N, V·T, ...) holding V test views of T = `segments` frames each, as (N·V, T, ...) view clips, and V
    (1, with `x` unchanged, for clips of T frames, images, or a model without segments)."""
    if not segments or x.dim() != 5 or x.shape[1] <= segments or x.shape[1] % segments:
        return x, 1
    views = x.shape[1] // segments
    return x.unflatten(1, (views, segments)).flatten(0, 1), views


def predict(
    model: nn.Module, loader: DataLoader, device: torch.device, sharded: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and targets (N,) of a whole loader, in eval mode (the training flag is restored).

    Clips holding several test views (T = views · `model.num_segments` frames) are split into views and their
    logits averaged. `sharded`: the loader holds this process's block of the set (`distributed.shard`); every
    process gets the outputs of the whole set, in order.
    """
    logits, targets = [], []
    segments = getattr(model, "num_segments", None)
    with eval_mode(model):
        for x, y in loader:
            x, views = split_views(to_device(x, device), segments)
            out = model(x)
            logits.append((out.unflatten(0, (-1, views)).mean(1) if views > 1 else out).float().cpu())
            targets.append(y)
    if sharded:
        return distributed.gather_cat(torch.cat(logits)), distributed.gather_cat(torch.cat(targets))
    return torch.cat(logits), torch.cat(targets)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, sharded: bool = False) -> float:
    """Top-1 accuracy in percent, in eval mode (every module's training flag is restored). `sharded`: the loader
    holds this process's part of the set (`distributed.shard`); the counts of all processes are summed."""
    correct = total = 0
    with eval_mode(model):
        for x, y in loader:
            logits = model(to_device(x, device))
            correct += (logits.argmax(1).cpu() == y).sum().item()
            total += y.numel()
    if sharded:
        correct, total = (int(v) for v in distributed.all_reduce_sum([correct, total]))
    return 100.0 * correct / max(1, total)


class ClassifierObjective:
    """Plain supervised training of a whole classifier with cross-entropy."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def set_mode(self) -> None:
        self.model.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        ce = nn.functional.cross_entropy(self.model(x), y)
        return ce, {"ce": ce.detach()}
