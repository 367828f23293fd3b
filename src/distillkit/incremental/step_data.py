"""The data of one step of a stream: what it trains on (its new classes' videos and the memory's exemplars, in
batches shuffled from the step's seed) and what its method is given (`StepContext`, `StepTools`).

Every random draw is seeded from (seed, step): the training batches' order and the memory's augmentation with
stream 0, the order of class-balanced fine-tuning's batches with stream 1, which new clips are shown small
(`Method.shown_small`, `data.ShownSmall`) with stream 2 (`engine.device.step_seed`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from distillkit.config import OptimConfig
from distillkit.data.videos import VideoDatasets, video_loader
from distillkit.engine.device import step_seed
from distillkit.engine.distributed import is_distributed
from distillkit.engine.loop import Objective, fit
from distillkit.engine.precision import to_device
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.data import ClassSubset, ConcatClips, ShownSmall
from distillkit.incremental.evaluation import Evaluator
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset
from distillkit.incremental.methods import Method, StepContext, StepTools
from distillkit.incremental.objectives import BalancedNetworkObjective, HeadObjective
from distillkit.incremental.scenario import Scenario


class StepData:
    """The training set, batches, context and tools of each step of a stream of `cfg` (see the module docstring);
    `evaluator` computes the features a method asks for."""

    def __init__(
        self,
        cfg: IncrementalConfig,
        method: Method,
        data: VideoDatasets,
        scenario: Scenario,
        evaluator: Evaluator,
        device: torch.device,
    ) -> None:
        self.cfg, self.method, self.data, self.scenario = cfg, method, data, scenario
        self.evaluator, self.device = evaluator, device

    def train_set(self, step: int, memory: ExemplarMemory | None) -> ConcatClips:
        """Step `step`'s training clips: its new classes' (every class seen so far for a method that trains on
        them, such as joint) and the exemplars of `memory`."""
        classes = self.scenario.seen(step) if self.method.train_on == "seen" else self.scenario.new(step)
        new: Dataset = ClassSubset(self.data.train, classes, self.scenario)
        if step > 0 and (small := self.method.shown_small()) is not None:
            new = ShownSmall(new, *small, seed=step_seed(self.cfg.seed, step, stream=2))
        parts: list[Dataset] = [new]
        if memory is not None and memory.videos:
            parts.append(self.memory_clips(memory, step))
        return ConcatClips(parts)

    def loader(self, train_set: Dataset, step: int) -> DataLoader:
        """Step `step`'s training batches of `train_set`, shuffled from the step's seed (under torchrun: this
        process's share of each global batch, from a `DistributedSampler`)."""
        seed = step_seed(self.cfg.seed, step)
        return video_loader(train_set, self.cfg.data, train=True, seed=seed, distributed=is_distributed())

    def memory_clips(self, memory: ExemplarMemory, step: int) -> MemoryDataset:
        """The memory's exemplars as step `step`'s training clips (augmented, replayed as `memory.replay`)."""
        return MemoryDataset(
            memory,
            self.data.train.transform,
            seed=step_seed(self.cfg.seed, step),
            replay=self.cfg.memory.replay,
        )

    def context(self, step: int, train_set: ConcatClips, old_model: nn.Module | None) -> StepContext:
        """What the method knows about step `step`, with the clips of each seen class in `train_set`."""
        num_old, num_seen = (self.scenario.num_seen(step - 1) if step else 0), self.scenario.num_seen(step)
        counts = torch.bincount(torch.as_tensor(train_set.labels, dtype=torch.long), minlength=num_seen)
        return StepContext(step, num_old, num_seen, old_model, self.device, counts.to(self.device))

    def tools(self, model: nn.Module, step: int, memory: ExemplarMemory | None) -> StepTools:
        """What a method may ask for during the step: features of the new classes, class-balanced fine-tuning of
        the head on the memory, and the memory's clips in batches."""

        def new_features() -> tuple[torch.Tensor, torch.Tensor]:
            subset = ClassSubset(self.data.train_eval, self.scenario.new(step), self.scenario)
            features = self.evaluator.features(model, subset, "features")
            return features.pooled, features.labels

        def balanced(objective: Objective, what: str, epochs: float, optim: OptimConfig) -> None:
            if memory is None or not memory.videos:
                raise ConfigError(
                    "class-balanced fine-tuning needs an exemplar memory (memory.budget_frames > 0)"
                )
            data = self.memory_clips(memory, step)
            generator = torch.Generator().manual_seed(step_seed(self.cfg.seed, step, stream=1))
            loader = DataLoader(data, batch_size=self.cfg.data.batch_size, shuffle=True, generator=generator)
            steps = max(1, round(epochs * len(loader)))
            desc = f"step {step} balanced {what}"
            fit(objective, loader, steps, optim, self.device, desc, perf=self.cfg.perf)

        def finetune_head_on_memory(epochs: float, lr: float) -> None:
            balanced(HeadObjective(model), "head", epochs, OptimConfig(lr=lr, weight_decay=0.0))

        def finetune_network_on_memory(epochs: float, lr: float) -> None:
            frozen = copy.deepcopy(model).eval().requires_grad_(False)
            # the steps' own optimiser (AdamW on the video presets) at the rate asked: SGD at the head's rate
            # took the whole network to chance in one fine-tuning
            optim = (self.cfg.train.step_optim or self.cfg.train.optim).model_copy(update={"lr": lr})
            balanced(BalancedNetworkObjective(model, frozen), "network", epochs, optim)

        def memory_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            if memory is None or not memory.videos:
                return
            data = self.memory_clips(memory, step)
            for x, y in DataLoader(data, batch_size=self.cfg.data.eval_batch_size, shuffle=False):
                yield to_device(x, self.device), torch.as_tensor(y).to(self.device)

        return StepTools(new_features, finetune_head_on_memory, memory_batches, finetune_network_on_memory)
