"""The stream runner: a class-incremental run from base step to last, resumable after any finished step.

Per step: grow the head, train with the method's loss (one training loop, `engine.loop.fit`), update the
exemplar memory (reduce old classes, herd the new ones), evaluate every class seen so far (CNN and NME), write a
checkpoint, `results.json`, `report.md` and the plots. Each finished step has its own memory folder (frames
hard-linked from the previous one), so a run killed at any moment resumes from its last checkpoint with the memory
of that step; on resuming, what the kill left (half-written files, other steps' memory folders) is cleared and
`log.jsonl` is rewritten from the checkpoint.
All randomness of a step is seeded from (seed, step): a resumed run ends with the same results as an
uninterrupted one.

Under torchrun (WORLD_SIZE > 1) a run is data-parallel: `data.batch_size` is the global batch, split over the
processes; the model trains in DDP with batch norms over the global batch (the old model's too, when it
normalises with batch statistics); features for evaluation, imprinting and exemplar selection are computed in
shards of whole evaluation batches and gathered, so every process evaluates and selects from the same full set; only rank 0
writes the memory, checkpoints, logs and results (the others read the memory back); class-balanced fine-tuning
of the head runs identically on every process.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from distillkit.config import OptimConfig, check_resumable, current_config, dump_config
from distillkit.data.video.transforms import left_right_label_map
from distillkit.data.videos import VideoDatasets, build_video_datasets
from distillkit.engine.device import resolve_device, seed_everything, step_seed
from distillkit.engine.distributed import (
    barrier,
    data_parallel,
    gather_cat,
    is_distributed,
    is_main,
    per_process_batch,
    process_group,
    shard,
    synchronised_batch_norms,
    train_sampler,
)
from distillkit.engine.loop import FitResult, LossParts, check_performance, fit
from distillkit.engine.modes import eval_mode
from distillkit.engine.precision import to_device
from distillkit.engine.progress import progress_bar
from distillkit.engine.tracking import tracker
from distillkit.errors import ConfigError
from distillkit.incremental import replay
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.data import ClassSubset, ConcatClips, ReplayedClips
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset
from distillkit.incremental.methods import METHODS, Method, StepContext, StepTools, build_method
from distillkit.incremental.metrics import accuracy_row, other_classifier, samples_per_step, summarize
from distillkit.incremental.replay import Replay, downsample_clips
from distillkit.incremental.scenario import Scenario, build_scenario, preset_scenario
from distillkit.incremental.selection import allocate, herding, random_order
from distillkit.incremental.state import StreamFolder, StreamState
from distillkit.models.factory import build_video_model
from distillkit.models.heads import grow_head
from distillkit.report.incremental_plots import plot_accuracy_matrix, plot_accuracy_per_step
from distillkit.report.incremental_report import incremental_report
from distillkit.report.meta import run_metadata


def model_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stage features, frame and clip features, `logits`, and for a cosine or local-similarity head its class
    similarities `cosine` and scale `scale` (logits = scale · cosine)."""
    out = model.forward_features(x)
    out["logits"] = model.classify(out["pooled"])
    if hasattr(model.head, "cosine"):
        out["cosine"] = model.head.cosine(out["pooled"])
        out["scale"] = model.head.sigma
    return out


def normalise_with_batch_statistics(model: nn.Module) -> nn.Module:
    """Put every batch norm of a frozen `model` in training mode with momentum 0: it normalises each batch with
    that batch's statistics and never changes its running ones."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
            module.momentum = 0.0
    return model


class WithOutputs(nn.Module):
    """`model` whose `forward` returns `model_outputs` (so that DDP, which hooks `forward`, can wrap it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return model_outputs(self.model, x)


@dataclass(frozen=True)
class Consistency:
    """Temporal consistency of a step (`train.temporal_consistency`): cross-entropy with `weight` on copies of
    the new classes' clips down-sampled to `frames` frames and replayed as `replay`."""

    weight: float
    frames: int
    replay: Replay


class StepObjective:
    """One step's training objective: the current model trains, the old one (frozen) gives its outputs.

    `net` computes the current model's outputs: `WithOutputs(model)`, possibly wrapped in DDP. With
    `consistency`, the batch's new-class clips are also seen down-sampled (`replay.downsample_clips`): one
    forward pass of both models over the batch and the copies (batch norms see both), the method's loss on the
    batch's outputs, and cross-entropy on the copies'."""

    def __init__(
        self,
        net: nn.Module,
        old_model: nn.Module | None,
        method: Method,
        ctx: StepContext,
        consistency: Consistency | None = None,
    ) -> None:
        self.net, self.old_model, self.method, self.ctx = net, old_model, method, ctx
        self.consistency = consistency

    def parameters(self):
        return self.net.parameters()

    def set_mode(self) -> None:
        self.net.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        tc, n = self.consistency, x.shape[0]
        new = y >= self.ctx.num_old
        inputs = x if tc is None else torch.cat([x, downsample_clips(x[new], tc.frames, tc.replay)])
        out, copies = _split(self.net(inputs), n)
        out["clips"] = x
        old = None
        if self.old_model is not None and self.method.needs_old_outputs:
            with torch.no_grad():
                old, _ = _split(model_outputs(self.old_model, inputs), n)
        loss, parts = self.method.loss(out, old, y, self.ctx)
        if tc is None:
            return loss, parts
        tc_loss = F.cross_entropy(copies["logits"], y[new]) if new.any() else loss.new_zeros(())
        return loss + tc.weight * tc_loss, {**parts, "tc": tc_loss.detach()}


def _split(outputs: dict[str, torch.Tensor], n: int) -> tuple[dict, dict]:
    """Outputs of a batch split into those of its first `n` samples and of the rest (tensors without a batch
    dimension, such as a head's scale, go to both); the outputs themselves when the batch has `n` samples."""
    total = len(outputs["logits"])
    if total == n:
        return outputs, {}
    head, tail = {}, {}
    for k, v in outputs.items():
        batched = v.dim() > 0 and v.shape[0] == total
        head[k], tail[k] = (v[:n], v[n:]) if batched else (v, v)
    return head, tail


class HeadObjective:
    """Cross-entropy training of the head alone, the backbone frozen in eval mode (class-balanced fine-tuning)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def parameters(self):
        return self.model.head.parameters()

    def set_mode(self) -> None:
        self.model.eval()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        with torch.no_grad():
            pooled = self.model.forward_features(x)["pooled"]
        ce = F.cross_entropy(self.model.classify(pooled), y)
        return ce, {"ce": ce.detach()}


@torch.no_grad()
def clip_features(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device, desc: str):
    """Clip features (N, D), frame features (N, T, D), logits (N, K) and labels (N,) in eval mode.

    Test clips holding several views are split into views; their features and logits are averaged. Under
    torchrun each process computes its block of `dataset` and every process gets the whole set's, in order."""
    pooled, frames, logits, labels = [], [], [], []
    part = shard(dataset, batch_size)
    # a process whose block is empty computes one sample to learn the output shapes, then keeps none
    loader = DataLoader(part if len(part) else Subset(dataset, [0]), batch_size=batch_size, shuffle=False)
    segments = model.num_segments
    with progress_bar(desc, total=len(loader)) as bar, eval_mode(model):
        for x, y in loader:
            x = to_device(x, device)
            views = x.shape[1] // segments if x.shape[1] > segments else 1
            x = x.unflatten(1, (views, segments)).flatten(0, 1) if views > 1 else x
            out = model.forward_features(x)
            p, f = out["pooled"].unflatten(0, (-1, views)), out["frames"].unflatten(0, (-1, views))
            pooled.append(p.mean(1).cpu())
            frames.append(f.mean(1).cpu())
            logits.append(model.classify(out["pooled"]).unflatten(0, (-1, views)).mean(1).cpu())
            labels.append(torch.as_tensor(y))
            bar.advance()
    keep = len(part)
    return tuple(gather_cat(torch.cat(t)[:keep]) for t in (pooled, frames, logits, labels))


def build_stream_scenario(cfg: IncrementalConfig, num_classes: int) -> Scenario:
    s = cfg.scenario
    if s.preset is not None:
        return preset_scenario(s.preset, num_classes, s.order_seed)
    return build_scenario(num_classes, s.base, s.increment, s.num_steps, s.order_seed, s.order)


class StreamRun:
    """A class-incremental run of `cfg` writing to `out` (see the module docstring)."""

    def __init__(
        self,
        cfg: IncrementalConfig,
        out: str | Path,
        resume: bool = False,
        device: torch.device | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.device = device if device is not None else resolve_device(cfg.device)
        check_performance(cfg.perf, self.device)
        if is_distributed():
            per_process_batch(cfg.data.batch_size, "data.batch_size")  # before any work
        self.method = build_method(cfg.method.name, cfg.method.options)
        seed_everything(cfg.seed)
        self.data: VideoDatasets = build_video_datasets(cfg.data, cfg.seed)
        self.scenario = build_stream_scenario(cfg, self.data.num_classes)
        self.segments = cfg.data.num_segments
        self.use_memory = self.method.uses_memory and cfg.memory.budget_frames > 0
        self.eval_nme = cfg.eval.nme if cfg.eval.nme is not None else self.use_memory
        self.folder = StreamFolder(self.out)
        self._check_before_training()

    # --------------------------------------------------------------------------------------------- checks
    def _check_before_training(self) -> None:
        cfg = self.cfg
        if cfg.data.flip and left_right_label_map(self.data.class_names):
            raise ConfigError(
                "data.flip: flipping maps some classes onto others (left/right pairs), which may belong to a "
                "later step; set data.flip to false for class-incremental runs"
            )
        if self.method.nme and not self.use_memory:
            raise ConfigError(
                f"method '{self.method.name}' classifies by exemplar means: set memory.budget_frames > 0"
            )
        if self.eval_nme and not self.use_memory:
            raise ConfigError("eval.nme needs an exemplar memory (memory.budget_frames > 0)")
        if self.use_memory:  # the last step holds exemplars of every class
            per = self.method.exemplar_frames(self.segments)
            allocate(cfg.memory.budget_frames, list(range(self.scenario.num_classes)), per)
        self.base_state = self._base_state() if cfg.train.base_model is not None else None

    def _base_state(self) -> dict[str, torch.Tensor]:
        """The base-step weights of `train.base_model`, after checking that run is compatible with this one."""
        source = Path(self.cfg.train.base_model)
        path = source / "checkpoints" / "step_000.pt" if source.is_dir() else source
        if not path.is_file():
            raise ConfigError(
                f"train.base_model: {path} not found (give a run folder with a finished base step)"
            )
        state = StreamState.load(path)
        theirs = current_config(state.config, IncrementalConfig, f"the config recorded in {path}")
        ours = dump_config(self.cfg)
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
        if head != self.method.head:
            raise ConfigError(
                f"train.base_model: {source} has a {head} head ({theirs['method']['name']}), "
                f"method '{self.method.name}' needs a {self.method.head} head"
            )
        return state.model

    # ---------------------------------------------------------------------------------------------- state
    def _start(self) -> tuple[int, StreamState]:
        """First step to run and the state so far (fresh, or from the last checkpoint when resuming)."""
        last = self.folder.last_step()
        if last is None:
            if self.resume and self.out.exists() and any(self.out.iterdir()) and is_main():
                print(f"resume: no finished step in {self.out}; starting from the base step")
            return 0, StreamState()
        if not self.resume:
            raise ConfigError(
                f"{self.out} already holds a run (finished up to step {last}); pass --resume to continue it, "
                "or choose another --out"
            )
        state = StreamState.load(self.folder.checkpoint(last))
        check_resumable(state.config, self.cfg, self.out)
        return last + 1, state

    # ------------------------------------------------------------------------------------------------ run
    def run(self) -> dict:
        first, state = self._start()
        if is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            self.folder.clear_leftovers(first)
            self.folder.rewrite_log([self._log_entry(i, state) for i in range(state.steps_done)])
        barrier()
        model = build_video_model(self.cfg.model, self.scenario.num_seen(0), self.segments)
        model.head = self.method.build_head(model.feature_dim, self.scenario.num_seen(0))
        memory = None
        if first > 0:
            model.head = self.method.build_head(model.feature_dim, self.scenario.num_seen(first - 1))
            model.load_state_dict(state.model)
            if self.use_memory:
                memory = ExemplarMemory.load(self.folder.memory(first - 1))
            if is_main():
                print(f"resumed after step {first - 1} from {self.folder.checkpoint(first - 1)}")
        model.to(self.device)
        for step in range(first, self.scenario.num_steps):
            model, memory = self._step(step, model, memory, state)
        return self._write_results(state, memory)

    def _step(self, step: int, model: nn.Module, memory: ExemplarMemory | None, state: StreamState):
        cfg, scenario = self.cfg, self.scenario
        start = time.perf_counter()
        seed_everything(step_seed(cfg.seed, step))
        num_old, num_seen = (scenario.num_seen(step - 1) if step else 0), scenario.num_seen(step)
        old_model = None
        if step > 0:
            old_model = copy.deepcopy(model).eval().requires_grad_(False)
            if self.method.old_model_batch_stats:
                normalise_with_batch_statistics(old_model)
            model.head = grow_head(model.head, num_seen)
        train_set = self._train_set(step, memory)
        counts = torch.bincount(torch.as_tensor(train_set.labels, dtype=torch.long), minlength=num_seen)
        ctx = StepContext(step, num_old, num_seen, old_model, self.device, counts.to(self.device))
        tools = self._tools(model, step, memory)
        self.method.begin_step(model, ctx, tools)
        loader = self._train_loader(train_set, step_seed(cfg.seed, step))
        budget, optim = (
            (cfg.train.base, cfg.train.optim) if step == 0 else (cfg.train.step, self._step_optim())
        )
        if step == 0 and cfg.train.base_model is not None:
            model.load_state_dict(self.base_state)
            result = FitResult(steps=0, seconds=0.0, samples=0)
        else:
            steps = budget.num_steps(len(loader))
            synced_old = old_model if self.method.old_model_batch_stats else None
            with data_parallel(WithOutputs(model), self.device) as net, _batch_norms(synced_old, self.device):
                result = fit(
                    StepObjective(net, old_model, self.method, ctx, self._consistency(step)),
                    loader,
                    steps,
                    optim,
                    self.device,
                    f"step {step} ({self.method.name})",
                    perf=cfg.perf,
                )
        if self.use_memory:
            memory = self._update_memory(step, model, memory)
            tools = self._tools(model, step, memory)
        self.method.end_step(model, ctx, tools)
        cnn, nme = self._evaluate(step, model, memory)
        seconds = time.perf_counter() - start
        stats = self._memory_stats(memory, self.method.replay_tolerance() is not None)
        state.record_step(
            step, cnn, nme, seconds, stats, result.history, model.state_dict(), dump_config(cfg)
        )
        if is_main():
            state.save(self.folder.checkpoint(step))
            if step > 0 and self.use_memory:
                self.folder.remove_memory(step - 1)
            self._log(step, state)
        self._write_results(state, memory)
        accuracy = {
            name: f["accuracy_per_step"][-1] if f else None for name, f in self._figures(state).items()
        }
        tracker().scalars("accuracy on classes seen", accuracy, step)
        tracker().scalars("memory", {"frames": state.memory[-1]["frames"]}, step)
        barrier()
        return model, memory

    def _consistency(self, step: int) -> Consistency | None:
        """The step's temporal consistency (incremental steps only, so base models stay shareable)."""
        tc = self.cfg.train.temporal_consistency
        if step == 0 or tc.weight == 0:
            return None
        stored = self.method.exemplar_frames(self.segments)
        frames = tc.frames or (stored if stored < self.segments else max(1, self.segments // 2))
        return Consistency(tc.weight, min(frames, self.segments), self.cfg.memory.replay)

    def _step_optim(self) -> OptimConfig:
        return self.cfg.train.step_optim or self.cfg.train.optim

    def _train_loader(self, train_set: Dataset, seed: int) -> DataLoader:
        """A step's training batches, shuffled with `seed` (under torchrun: this process's share of each global
        batch, from a `DistributedSampler`)."""
        cfg = self.cfg.data
        drop_last = len(train_set) >= cfg.batch_size
        if is_distributed():
            return DataLoader(
                train_set, batch_size=per_process_batch(cfg.batch_size, "data.batch_size"),
                sampler=train_sampler(train_set, seed), drop_last=drop_last, num_workers=cfg.num_workers,
            )  # fmt: skip
        return DataLoader(
            train_set, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed),
            drop_last=drop_last, num_workers=cfg.num_workers,
        )  # fmt: skip

    # ----------------------------------------------------------------------------------------------- data
    def _train_set(self, step: int, memory: ExemplarMemory | None) -> Dataset:
        classes = self.scenario.seen(step) if self.method.train_on == "seen" else self.scenario.new(step)
        parts: list[Dataset] = [ClassSubset(self.data.train, classes, self.scenario)]
        if self.use_memory and memory is not None and memory.videos:
            parts.append(
                MemoryDataset(
                    memory,
                    self.data.train.transform,
                    seed=step_seed(self.cfg.seed, step),
                    replay=self.cfg.memory.replay,
                )
            )
        return ConcatClips(parts)

    def _tools(self, model: nn.Module, step: int, memory: ExemplarMemory | None) -> StepTools:
        def new_features() -> tuple[torch.Tensor, torch.Tensor]:
            subset = ClassSubset(self.data.train_eval, self.scenario.new(step), self.scenario)
            pooled, _, _, labels = clip_features(
                model, subset, self.cfg.data.eval_batch_size, self.device, "features"
            )
            return pooled, labels

        def finetune_head_on_memory(epochs: float, lr: float) -> None:
            if memory is None or not memory.videos:
                raise ConfigError(
                    "class-balanced fine-tuning needs an exemplar memory (memory.budget_frames > 0)"
                )
            data = MemoryDataset(
                memory,
                self.data.train.transform,
                seed=step_seed(self.cfg.seed, step),
                replay=self.cfg.memory.replay,
            )
            generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, step, stream=1))
            loader = DataLoader(data, batch_size=self.cfg.data.batch_size, shuffle=True, generator=generator)
            steps = max(1, round(epochs * len(loader)))
            optim = OptimConfig(lr=lr, weight_decay=0.0)
            desc = f"step {step} balanced head"
            fit(HeadObjective(model), loader, steps, optim, self.device, desc, perf=self.cfg.perf)

        def memory_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            if memory is None or not memory.videos:
                return
            data = MemoryDataset(
                memory,
                self.data.train.transform,
                seed=step_seed(self.cfg.seed, step),
                replay=self.cfg.memory.replay,
            )
            for x, y in DataLoader(data, batch_size=self.cfg.data.eval_batch_size, shuffle=False):
                yield to_device(x, self.device), torch.as_tensor(y).to(self.device)

        return StepTools(new_features, finetune_head_on_memory, memory_batches)

    # --------------------------------------------------------------------------------------------- memory
    def _update_memory(self, step: int, model: nn.Module, memory: ExemplarMemory | None) -> ExemplarMemory:
        """Next step's memory in its own folder: old classes reduced to their share, new classes herded.

        Every process computes the same selection from gathered features; rank 0 writes it and the others
        read it back."""
        subset = ClassSubset(self.data.train_eval, self.scenario.new(step), self.scenario)
        features = clip_features(
            model, subset, self.cfg.data.eval_batch_size, self.device, f"step {step} exemplars"
        )
        per = self.method.exemplar_frames(self.segments)
        pooled, frames = features[0], features[1]
        positions = [self.method.select_frames(frames[i], pooled[i], per) for i in range(len(subset))]
        tolerance = self.method.replay_tolerance()
        if tolerance is not None:  # adaptive granularity: whole clips where the replay is not faithful
            replayed = ReplayedClips(subset, positions, self.cfg.memory.replay, self.data.test.transform)
            again, _, logits, labels = clip_features(
                model, replayed, self.cfg.data.eval_batch_size, self.device, "replays"
            )
            kept = replay.faithful(pooled, again, logits, labels, tolerance).tolist()
            whole = list(range(self.segments))
            positions = [p if ok else whole for p, ok in zip(positions, kept, strict=True)]
        folder = self.folder.memory(step)
        if is_main():
            memory = self._write_memory(step, folder, memory, subset, features, positions)
        barrier()
        return memory if is_main() else ExemplarMemory.load(folder)

    def _write_memory(
        self,
        step: int,
        folder: Path,
        memory: ExemplarMemory | None,
        subset: ClassSubset,
        features: tuple,
        positions: list[list[int]],
    ) -> ExemplarMemory:
        """Each class's share of the frame budget (`per` frames times its exemplar count): old classes reduced
        to it, new classes filled in herding (or random) order with each video's kept `positions`, until the
        next video would not fit."""
        m = self.cfg.memory
        if folder.exists():  # left by a run killed during this step
            shutil.rmtree(folder)
        if memory is None:
            memory = ExemplarMemory(
                folder, m.budget_frames, self.segments, m.per_class_frames, m.jpeg_quality
            )
        else:
            memory = memory.fork(folder)
        seen = list(range(self.scenario.num_seen(step)))
        per = self.method.exemplar_frames(self.segments)
        share = allocate(m.budget_frames, seen, per)
        if m.per_class_frames is not None:
            share = {c: min(n, m.per_class_frames // per) for c, n in share.items()}
        memory.reduce({c: share[c] * per for c in memory.classes})
        pooled, _, _, labels = features
        for c in range(self.scenario.num_seen(step - 1) if step else 0, len(seen)):
            members = (labels == c).nonzero().flatten().tolist()
            # every candidate in priority order; as many as fit the class's frames (all of `per` when fixed)
            if m.selection == "herding":
                order = herding(pooled[members], len(members))
            else:
                order = random_order(
                    len(members), len(members), np.random.default_rng([self.cfg.seed, step, c])
                )
            picked, used = [], 0
            for i in (members[j] for j in order):
                if used + len(positions[i]) > share[c] * per:
                    break
                picked.append(i)
                used += len(positions[i])
            memory.add_class(c, [(subset.video_id(i), subset.raw_clip(i), positions[i]) for i in picked])
        memory.check_budget()
        return memory

    @staticmethod
    def _memory_stats(memory: ExemplarMemory | None, adaptive: bool = False) -> dict:
        """Frames, bytes and videos held; with adaptive granularity also the videos kept as whole clips."""
        if memory is None:
            return {"frames": 0, "bytes": 0, "videos": 0}
        stats = {"frames": memory.frames, "bytes": memory.bytes_on_disk(), "videos": memory.videos}
        if adaptive:
            everything = memory.num_segments
            stats["whole_clips"] = sum(
                len(e.frames) == everything for c in memory.classes for e in memory.exemplars(c)
            )
        return stats

    # ----------------------------------------------------------------------------------------- evaluation
    def _steps_of(self, labels: torch.Tensor) -> torch.Tensor:
        """The step of each incremental label (classes are numbered in the order they arrive)."""
        bounds = torch.tensor(np.cumsum(self.scenario.classes_per_step))
        return torch.searchsorted(bounds, labels.long(), right=True)

    def _evaluate(self, step: int, model: nn.Module, memory: ExemplarMemory | None):
        test = ClassSubset(self.data.test, self.scenario.seen(step), self.scenario)
        pooled, _, logits, labels = clip_features(
            model, test, self.cfg.data.eval_batch_size, self.device, f"step {step} evaluation"
        )
        steps_of = self._steps_of(labels)
        cnn = accuracy_row(logits.argmax(1), labels, steps_of, step)
        nme = None
        if self.eval_nme and memory is not None and memory.videos:
            means = self._class_means(model, memory)
            nme_pred = (F.normalize(pooled, dim=1) @ means.T).argmax(1)
            nme = accuracy_row(nme_pred, labels, steps_of, step)
        return cnn, nme

    def _class_means(self, model: nn.Module, memory: ExemplarMemory) -> torch.Tensor:
        """iCaRL's class means: normalised mean of the normalised features of each class's exemplars."""
        data = MemoryDataset(memory, self.data.test.transform, replay=self.cfg.memory.replay)
        pooled, _, _, labels = clip_features(model, data, self.cfg.data.eval_batch_size, self.device, "means")
        pooled = F.normalize(pooled, dim=1)
        means = torch.stack([pooled[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
        return F.normalize(means, dim=1)

    # ------------------------------------------------------------------------------------------- results
    def _log_entry(self, step: int, state: StreamState) -> dict:
        return state.log_entry(step, self.scenario.num_seen(step))

    def _log(self, step: int, state: StreamState) -> None:
        """Append step `step` to `log.jsonl` and print its line: the own classifier's accuracy on the classes seen
        first (with its row per step's classes), the other's beside it, named."""
        entry = self._log_entry(step, state)
        self.folder.append_log(entry)
        figures = self._figures(state)
        own = self._classifier
        line = f"step {step}: {entry['classes_seen']} classes, {own.upper()} "
        line += f"{figures[own]['accuracy_per_step'][-1]:.2f}%"
        other = figures[other_classifier(own)]
        if other is not None:
            line += f" ({other_classifier(own).upper()} {other['accuracy_per_step'][-1]:.2f}%)"
        row = figures[own]["accuracy_matrix"][step]
        print(line + f", per step's classes [{', '.join(f'{a:.1f}' for a in row)}]")

    @property
    def _classifier(self) -> str:
        """The method's own classifier: `nme` for a method that classifies by exemplar means, else `cnn`."""
        return "nme" if self.method.nme else "cnn"

    def _figures(self, state: StreamState) -> dict[str, dict | None]:
        """Per classifier (`cnn`, `nme`) its accuracy matrix and metrics (`metrics.summarize`) over the steps done
        so far; `nme` is None when the NME classifier is not evaluated."""
        done = state.steps_done
        test_labels = ClassSubset(self.data.test, self.scenario.seen(done - 1), self.scenario).labels
        n_per_step = samples_per_step(self._steps_of(torch.tensor(test_labels)), done)
        figures: dict[str, dict | None] = {
            "cnn": {"accuracy_matrix": state.cnn, **summarize(state.cnn, n_per_step)}
        }
        evaluated = state.nme and state.nme[0] is not None
        figures["nme"] = (
            {"accuracy_matrix": state.nme, **summarize(state.nme, n_per_step)} if evaluated else None
        )
        return figures

    def _write_results(self, state: StreamState, memory: ExemplarMemory | None) -> dict:
        """`results.json` (returned), `report.md` and the plots (written by rank 0 only)."""
        done = state.steps_done
        figures = self._figures(state)
        own, other = self._classifier, other_classifier(self._classifier)
        own_figures = figures[own]
        assert own_figures is not None  # a method classifying by NME needs the memory, so NME is evaluated
        results = {
            "method": self.method.name,
            "classifier": own,
            "classes_per_step": self.scenario.classes_per_step[:done],
            "class_order": self.scenario.class_order,
            "steps_done": done,
            **own_figures,  # the headline: the method's own classifier
            other: figures[other],
            "memory": state.memory[-1],
            "memory_per_step": state.memory,
            "seconds_per_step": state.seconds,
            "seed": self.cfg.seed,
            "config": dump_config(self.cfg),
            "method_options": self.method.options.model_dump(mode="json"),
            **run_metadata(self.device),
        }
        if not is_main():
            return results
        self.folder.write_text("results.json", json.dumps(results, indent=2))
        self.folder.write_text("report.md", incremental_report(results, time.strftime("%Y-%m-%d %H:%M")))
        seen = [self.scenario.num_seen(i) for i in range(self.scenario.num_steps)]
        series = {
            name.upper(): f["accuracy_per_step"] for name in (own, other) if (f := figures[name]) is not None
        }
        plot_accuracy_per_step(series, seen, self.out / "accuracy_per_step.png", f"{self.method.name}")
        plot_accuracy_matrix(
            own_figures["accuracy_matrix"],
            self.out / "accuracy_matrix.png",
            f"{self.method.name} ({own.upper()}): a[i][j]",
        )
        return results


@contextmanager
def _batch_norms(model: nn.Module | None, device: torch.device) -> Iterator[None]:
    """`synchronised_batch_norms` of `model`, when there is one."""
    if model is None:
        yield
        return
    with synchronised_batch_norms(model, device):
        yield


def run_incremental(cfg: IncrementalConfig, out: str | Path, resume: bool = False) -> dict:
    """Run the whole stream of `cfg` into `out` (continuing the last finished step with `resume`); under torchrun
    data-parallel (module docstring), every process returning the same results."""
    with process_group(cfg.device) as device:
        results = StreamRun(cfg, out, resume, device).run()
        main = is_main()
    if not main:
        return results
    own = results["classifier"]
    line = f"{results['method']}: average incremental accuracy {results['avg_incremental_accuracy']:.2f}% "
    line += f"({own.upper()}), final {results['final_accuracy']:.2f}%, forgetting {results['forgetting']:.2f}"
    if other := results[other_classifier(own)]:
        line += f" ({other_classifier(own).upper()}: {other['avg_incremental_accuracy']:.2f}%)"
    print(line)
    return results
