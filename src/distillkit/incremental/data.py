"""Views of a data set for one step of a stream: the videos of some classes, labels in incremental order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from distillkit.data.video.transforms import Compose, clip_to_tensor
from distillkit.data.videos import raw_clip
from distillkit.incremental.memory import at_scale, at_stored_scale
from distillkit.incremental.replay import Replay, replay_frames
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


class ReplayedClips(Dataset):
    """The items of a `ClassSubset` as the memory would replay them after keeping only `positions[i]` of item i
    (`replay.replay_frames`), at `frame_scale` of each side (`memory.at_stored_scale`, without the JPEG), through
    `transform` (a test-time `VideoDataset` transform; None: plain tensors)."""

    def __init__(
        self,
        subset: ClassSubset,
        positions: Sequence[Sequence[int]],
        replay: Replay,
        transform=None,
        frame_scale: float = 1.0,
    ) -> None:
        if len(positions) != len(subset):
            raise ValueError(f"ReplayedClips: {len(positions)} position lists for {len(subset)} items")
        if transform is not None and not getattr(transform, "takes_label", False):
            transform = Compose([transform])
        self.subset, self.positions, self.replay, self.transform = subset, positions, replay, transform
        self.frame_scale = frame_scale

    @property
    def labels(self) -> list[int]:
        return self.subset.labels

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raw, kept = self.subset.raw_clip(index), list(self.positions[index])
        frames = at_stored_scale(replay_frames(raw[kept], kept, len(raw), self.replay), self.frame_scale)
        label = self.subset.labels[index]
        if self.transform is None:
            return clip_to_tensor(frames), label
        return self.transform(frames, label, np.random.default_rng(index))


class ShownSmall(Dataset):
    """The clips of `dataset`, each shown with probability `share` at `scale` of each side and back up
    (`memory.at_scale`), the draw seeded by (seed, epoch, index) as a video set's augmentation is: the same clips
    in one process as in each process's share under torchrun."""

    def __init__(self, dataset: Dataset, share: float, scale: float, seed: int) -> None:
        self.dataset, self.share, self.scale, self.seed = dataset, share, scale, seed
        self.epoch = 0

    @property
    def labels(self) -> list[int]:
        return self.dataset.labels

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def shown_small(self, index: int) -> bool:
        """Whether item `index` is shown small in the current epoch."""
        return bool(np.random.default_rng([self.seed, self.epoch, index]).random() < self.share)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, label = self.dataset[index]
        return (at_scale(clip, self.scale) if self.shown_small(index) else clip), label
