"""Evaluation of a class-incremental model: clip features of a data set, and the accuracy rows of the CNN and the
nearest-mean-of-exemplars (NME) classifiers on every class seen (`metrics.accuracy_row`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from distillkit.data.videos import VideoDatasets
from distillkit.engine.distributed import gather_cat, shard
from distillkit.engine.loop import split_views
from distillkit.engine.modes import eval_mode
from distillkit.engine.precision import to_device
from distillkit.engine.progress import progress_bar
from distillkit.incremental.data import ClassSubset
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset
from distillkit.incremental.methods import VideoBackbone
from distillkit.incremental.metrics import accuracy_row, samples_per_step
from distillkit.incremental.replay import Replay
from distillkit.incremental.scenario import Scenario


class Features(NamedTuple):
    """A data set's clip features (N, D), frame features (N, T, D), logits (N, K) and labels (N,)."""

    pooled: torch.Tensor
    frames: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


@torch.no_grad()
def clip_features(
    model: VideoBackbone, dataset: Dataset, batch_size: int, device: torch.device, desc: str
) -> Features:
    """The `Features` of `dataset` in eval mode.

    Test clips holding several views are split into views (`engine.loop.split_views`); their features and logits
    are averaged. Under torchrun each process computes its block of `dataset` and every process gets the whole
    set's, in order."""
    pooled, frames, logits, labels = [], [], [], []
    part = shard(dataset, batch_size)
    # a process whose block is empty computes one sample to learn the output shapes, then keeps none
    loader = DataLoader(part if len(part) else Subset(dataset, [0]), batch_size=batch_size, shuffle=False)
    with progress_bar(desc, total=len(loader)) as bar, eval_mode(model):
        for x, y in loader:
            x, views = split_views(to_device(x, device), model.num_segments)
            out = model.forward_features(x)
            pooled.append(out["pooled"].unflatten(0, (-1, views)).mean(1).cpu())
            frames.append(out["frames"].unflatten(0, (-1, views)).mean(1).cpu())
            logits.append(model.classify(out["pooled"]).unflatten(0, (-1, views)).mean(1).cpu())
            labels.append(torch.as_tensor(y))
            bar.advance()
    keep = len(part)
    return Features(*(gather_cat(torch.cat(t)[:keep]) for t in (pooled, frames, logits, labels)))


class Evaluator:
    """Accuracy rows of a stream's model on the test clips of every class seen, by its head (CNN) and, with
    `nme`, by the nearest mean of the memory's exemplars; and the features other parts of the run need."""

    def __init__(
        self,
        data: VideoDatasets,
        scenario: Scenario,
        batch_size: int,
        replay: Replay,
        nme: bool,
        device: torch.device,
    ) -> None:
        self.data, self.scenario, self.batch_size = data, scenario, batch_size
        self.replay, self.nme, self.device = replay, nme, device

    def features(self, model: nn.Module, dataset: Dataset, desc: str) -> Features:
        """`clip_features` of `dataset` at the evaluation batch size."""
        return clip_features(model, dataset, self.batch_size, self.device, desc)

    def steps_of(self, labels: torch.Tensor) -> torch.Tensor:
        """The step of each incremental label (classes are numbered in the order they arrive)."""
        bounds = torch.tensor(np.cumsum(self.scenario.classes_per_step))
        return torch.searchsorted(bounds, labels.long(), right=True)

    def test_samples_per_step(self, steps_done: int) -> list[int]:
        """Test clips of each step's classes, for the `steps_done` first steps (`metrics.summarize`'s weights)."""
        seen = self.scenario.seen(steps_done - 1)
        labels = torch.tensor(ClassSubset(self.data.test, seen, self.scenario).labels)
        return samples_per_step(self.steps_of(labels), steps_done)

    def evaluate(
        self, step: int, model: nn.Module, memory: ExemplarMemory | None
    ) -> tuple[list[float], list[float] | None]:
        """Step `step`'s accuracy rows: CNN, and NME when asked for and there is a memory (else None)."""
        test = ClassSubset(self.data.test, self.scenario.seen(step), self.scenario)
        f = self.features(model, test, f"step {step} evaluation")
        steps_of = self.steps_of(f.labels)
        cnn = accuracy_row(f.logits.argmax(1), f.labels, steps_of, step)
        nme = None
        if self.nme and memory is not None and memory.videos:
            means = self.class_means(model, memory)
            nme_pred = (F.normalize(f.pooled, dim=1) @ means.T).argmax(1)
            nme = accuracy_row(nme_pred, f.labels, steps_of, step)
        return cnn, nme

    def class_means(self, model: nn.Module, memory: ExemplarMemory) -> torch.Tensor:
        """iCaRL's class means: normalised mean of the normalised features of each class's exemplars."""
        data = MemoryDataset(memory, self.data.test.transform, replay=self.replay)
        f = self.features(model, data, "means")
        pooled = F.normalize(f.pooled, dim=1)
        means = torch.stack([pooled[f.labels == c].mean(0) for c in range(int(f.labels.max()) + 1)])
        return F.normalize(means, dim=1)
