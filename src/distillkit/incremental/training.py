"""Training the model of a class-incremental step: the method's objective (`objectives.StepObjective`, with the
step's temporal consistency) in one `engine.loop.fit` over the step's batches, data-parallel under torchrun; or, at
the base step of a run with `train.base_model`, that run's base weights, checked compatible before any work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from distillkit.config import current_config, dump_config
from distillkit.engine.distributed import data_parallel, synchronised_batch_norms
from distillkit.engine.loop import FitResult, fit
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.methods import METHODS, Method, StepContext, build_method
from distillkit.incremental.objectives import Consistency, ScaleConsistency, StepObjective, WithOutputs
from distillkit.incremental.state import StreamState


class StepTrainer:
    """Trains each step's model of a stream of `cfg` with `method` (see the module docstring)."""

    def __init__(self, cfg: IncrementalConfig, method: Method, device: torch.device) -> None:
        self.cfg, self.method, self.device = cfg, method, device
        self.base_state = base_model_state(cfg, method) if cfg.train.base_model is not None else None
        """The weights of `train.base_model`'s base step (None: the base step trains)."""

    def train(
        self,
        step: int,
        model: nn.Module,
        old_model: nn.Module | None,
        ctx: StepContext,
        loader: DataLoader,
    ) -> FitResult:
        """Train `model` on step `step`'s `loader` (`old_model`: the frozen model of the step before)."""
        if step == 0 and self.base_state is not None:
            model.load_state_dict(self.base_state)
            return FitResult(steps=0, seconds=0.0, samples=0)
        train = self.cfg.train
        budget, optim = (
            (train.base, train.optim) if step == 0 else (train.step, train.step_optim or train.optim)
        )
        steps = budget.num_steps(len(loader))
        synced_old = old_model if self.method.old_model_batch_stats else None
        fixed = self.method.fixed_head_rows(model.head, ctx)
        with (
            keep_rows(model.head.weight, fixed),
            data_parallel(WithOutputs(model), self.device) as net,
            _batch_norms(synced_old, self.device),
        ):
            return fit(
                StepObjective(
                    net, old_model, self.method, ctx, self.consistency(step), self.scale_consistency(step)
                ),
                loader,
                steps,
                optim,
                self.device,
                f"step {step} ({self.method.name})",
                perf=self.cfg.perf,
            )

    def consistency(self, step: int) -> Consistency | None:
        """The step's temporal consistency (incremental steps only, so base models stay shareable)."""
        tc = self.cfg.train.temporal_consistency
        if step == 0 or tc.weight == 0:
            return None
        segments = self.cfg.data.num_segments
        stored = self.method.exemplar_frames(segments)
        frames = tc.frames or (stored if stored < segments else max(1, segments // 2))
        return Consistency(tc.weight, min(frames, segments), self.cfg.memory.replay)

    def scale_consistency(self, step: int) -> ScaleConsistency | None:
        """The step's scale consistency, the method's (incremental steps only)."""
        sc = self.method.scale_consistency()
        return None if step == 0 or sc is None else ScaleConsistency(*sc)


def base_model_state(cfg: IncrementalConfig, method: Method) -> dict[str, torch.Tensor]:
    """The base-step weights of `cfg.train.base_model`, after checking that run is compatible with this one (same
    seed, data, model, scenario, base budget and optimiser, and a head of `method`'s kind)."""
    source = Path(cfg.train.base_model)
    path = source / "checkpoints" / "step_000.pt" if source.is_dir() else source
    if not path.is_file():
        raise ConfigError(f"train.base_model: {path} not found (give a run folder with a finished base step)")
    state = StreamState.load(path)
    theirs = current_config(state.config, IncrementalConfig, f"the config recorded in {path}")
    ours = dump_config(cfg)
    keys = ["seed", "data", "model", "scenario"]
    differ = [k for k in keys if theirs.get(k) != ours[k]]
    differ += [f"train.{k}" for k in ("base", "optim") if theirs["train"].get(k) != ours["train"][k]]
    if differ:
        raise ConfigError(f"train.base_model: {source} was run with a different {', '.join(differ)}")
    theirs_method = theirs["method"]
    head = (
        build_method(theirs_method["name"], theirs_method.get("options", {})).head
        if theirs_method["name"] in METHODS
        else None
    )
    if head != method.head:
        raise ConfigError(
            f"train.base_model: {source} has a {head} head ({theirs['method']['name']}), "
            f"method '{method.name}' needs a {method.head} head"
        )
    return state.model


@contextmanager
def keep_rows(weight: nn.Parameter, rows: int) -> Iterator[None]:
    """Within the block, the first `rows` rows of `weight` get no gradient, and they are set back to their values
    on entry when it ends (decoupled weight decay would otherwise still shrink them)."""
    if rows == 0:
        yield
        return
    kept = weight.detach()[:rows].clone()

    def zero_rows(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[:rows] = 0
        return grad

    handle = weight.register_hook(zero_rows)
    try:
        yield
    finally:
        handle.remove()
        with torch.no_grad():
            weight[:rows] = kept


@contextmanager
def _batch_norms(model: nn.Module | None, device: torch.device) -> Iterator[None]:
    """`synchronised_batch_norms` of `model`, when there is one."""
    if model is None:
        yield
        return
    with synchronised_batch_norms(model, device):
        yield
