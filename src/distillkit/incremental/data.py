"""Views of a data set for one step of a stream: the videos of some classes, labels in incremental order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from distillkit.data.videos import raw_clip
from distillkit.incremental.scenario import Scenario


class ClassSubset(Dataset):
    """The items of `dataset` whose (original) label is in `classes`, labels mapped to incremental order."""

    def __init__(self, dataset: Dataset, classes: Sequence[int], scenario: Scenario) -> None:
        wanted = set(classes)
        labels = dataset.labels
        self.dataset = dataset
        self.indices = [i for i, label in enumerate(labels) if label in wanted]
        self._labels = [scenario.to_incremental(labels[i]) for i in self.indices]
        self._map = {c: scenario.to_incremental(c) for c in classes}

    @property
    def labels(self) -> list[int]:
        return self._labels

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, label = self.dataset[self.indices[index]]
        return clip, self._map[label]

    def raw_clip(self, index: int) -> np.ndarray:
        """Test-time uint8 frames (T, H, W, 3) of item `index` (what the memory stores)."""
        return raw_clip(self.dataset, self.indices[index])

    def video_id(self, index: int) -> str:
        """A stable id of item `index`: its position in the full data set."""
        return f"{self.indices[index]:07d}"


class ConcatClips(ConcatDataset):
    """`ConcatDataset` that forwards `set_epoch` and exposes `labels`."""

    @property
    def labels(self) -> list[int]:
        return [label for d in self.datasets for label in d.labels]

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)
