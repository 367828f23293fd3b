"""Video classification data sets from a `VideoDataConfig`: the embedded synthetic set, annotation lists, or an
image data set as one-frame clips (so image class-incremental benchmarks run in the same engine).

`data.name` names a video source: a builder registered with `register_source` (`synthetic`, `images`), or an
annotation format whose files `data.train_list` and `data.test_list` are (`list`, `rawframes`: the formats of
`distillkit.data.video.formats` marked `list_source`). Every set returns ``(clip, label)`` with the clip a float
tensor (T, C, H, W), has `labels`, `set_epoch` and `raw_clip` (the uint8 frames of the test-time clip, which the
exemplar memory stores).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from distillkit.config import ImageDataConfig, VideoDataConfig
from distillkit.data.images import DATASET_STATS, channel_stats, load_image_arrays
from distillkit.data.synthetic_video import make_synthetic_videos
from distillkit.data.video.annotations import (
    AnnotationFormat,
    VideoRecord,
    format_names,
    get_format,
    missing_files,
)
from distillkit.data.video.dataset import VideoDataset
from distillkit.data.video.decode import probe_video_file
from distillkit.data.video.sampling import segment_indices
from distillkit.data.video.transforms import (
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomPadCrop,
    Resize,
    left_right_label_map,
)
from distillkit.errors import ConfigError, DataError


class ClipArrayDataset(Dataset):
    """In-memory videos (N, T, H, W, 3) uint8 with TSN sampling and clip transforms, like `VideoDataset`."""

    def __init__(
        self,
        videos: np.ndarray,
        labels: np.ndarray,
        num_segments: int,
        train: bool,
        transform: Callable | None = None,
        seed: int = 0,
        clips: int = 1,
    ) -> None:
        if videos.ndim != 5 or videos.shape[-1] != 3 or len(videos) != len(labels):
            raise ValueError(
                f"expected videos (N, T, H, W, 3) and N labels, got {videos.shape}, {len(labels)}"
            )
        self.videos = videos
        self._labels = [int(v) for v in labels]
        self.num_segments = num_segments
        self.train = train
        self.transform = transform
        self.seed = seed
        self.clips = clips
        self.epoch = 0
        self.skipped: list[tuple[str, str]] = []

    @property
    def labels(self) -> list[int]:
        return self._labels

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._labels)

    def raw_clip(self, index: int) -> np.ndarray:
        """The uint8 frames (T, H, W, 3) of the test-time clip of video `index` (segment centres)."""
        t = self.videos.shape[1]
        return self.videos[index][segment_indices(t, self.num_segments, train=False)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        indices = segment_indices(self.videos.shape[1], self.num_segments, self.train, rng, self.clips)
        frames = self.videos[index][indices.ravel()]
        label = self._labels[index]
        if self.transform is None:
            return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255), label
        return self.transform(frames, label, rng)


@runtime_checkable
class RawClips(Protocol):
    """A set of videos that gives the uint8 frames of each one's test-time clip (`ClipArrayDataset`,
    `VideoDataset`)."""

    def raw_clip(self, index: int) -> np.ndarray: ...


def raw_clip(dataset: Dataset, index: int) -> np.ndarray:
    """Test-time uint8 frames (T, H, W, 3) of item `index` of a set that has them (`RawClips`)."""
    if not isinstance(dataset, RawClips):
        raise TypeError(f"no raw clips for {type(dataset).__name__}")
    return dataset.raw_clip(index)


@dataclass
class VideoDatasets:
    train: Dataset
    test: Dataset
    num_classes: int
    class_names: list[str]
    train_eval: Dataset
    """The training videos as test-time clips (segment centres, test transform): for features of training data."""
    missing: list[dict[str, str]] = field(default_factory=list)
    """Listed videos not found on disk and left out (`on_error: skip`), as skip-log entries (source, reason)."""


def clip_transforms(cfg: VideoDataConfig, class_names: list[str]) -> tuple[Compose, Compose]:
    """Training and test transforms of a config: resize, crop, flip (with the left/right label map), normalise."""
    train: list[Callable] = [Resize(cfg.resize)] if cfg.resize else []
    test: list[Callable] = [Resize(cfg.resize)] if cfg.resize else []
    if cfg.crop:
        train.append(MultiScaleCrop(cfg.crop))
        test.append(CenterCrop(cfg.crop))
    if cfg.flip:
        train.append(RandomHorizontalFlip(0.5, left_right_label_map(class_names)))
    if len(cfg.mean) != len(cfg.std):
        raise ConfigError("data.mean and data.std must have the same length")
    norm = Normalize(cfg.mean, cfg.std)
    return Compose([*train, norm]), Compose([*test, norm])


def _class_names(cfg: VideoDataConfig, records: list[VideoRecord]) -> list[str]:
    if cfg.classes is not None:
        if not cfg.classes.is_file():
            raise DataError(f"{cfg.classes}: class names file not found (data.classes)")
        names = [
            line.strip() for line in cfg.classes.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        if not names:
            raise DataError(f"{cfg.classes}: no class names")
        return names
    n = cfg.num_classes or 1 + max(r.label for r in records)
    return [f"class_{c}" for c in range(n)]


# -------------------------------------------------------------------------------------------------- sources
VideoSource = Callable[[VideoDataConfig, int], VideoDatasets]
"""Builds the data sets of a config (`data`) with a seed."""

SOURCES: dict[str, VideoSource] = {}
"""The registered video sources by name (the annotation formats `data.name` may name come on top)."""

S = TypeVar("S", bound=VideoSource)


def register_source(name: str) -> Callable[[S], S]:
    """Decorator registering a builder as the video source `name` (what `data.name` says)."""

    def register(build: S) -> S:
        if not name or name in SOURCES or name in format_names(list_source=True):
            raise ValueError(f"video source name {name!r} is empty or already registered")
        SOURCES[name] = build
        return build

    return register


def source_names() -> list[str]:
    """Every name `data.name` may take, sorted: the registered sources and the list-source annotation formats."""
    return sorted([*SOURCES, *format_names(list_source=True)])


def get_source(name: str) -> VideoSource:
    """The builder of the video source `name`; a `ConfigError` listing the valid names otherwise."""
    if name in SOURCES:
        return SOURCES[name]
    if name in format_names(list_source=True):
        return partial(build_list_datasets, fmt=get_format(name))
    raise ConfigError(f"unknown video source '{name}'; registered: {', '.join(source_names())}")


def _lists(cfg: VideoDataConfig, fmt: AnnotationFormat) -> tuple[list[VideoRecord], list[VideoRecord]]:
    for key in ("train_list", "test_list"):
        if getattr(cfg, key) is None:
            raise ConfigError(f"data.{key} is required when data.name is '{cfg.name}'")
    limit = cfg.num_classes
    if cfg.classes is not None and cfg.classes.is_file():
        limit = len([x for x in cfg.classes.read_text(encoding="utf-8").splitlines() if x.strip()])
    return fmt.parse(cfg.train_list, num_classes=limit), fmt.parse(cfg.test_list, num_classes=limit)


def _drop_missing(
    cfg: VideoDataConfig, key: str, records: list[VideoRecord], folders: bool
) -> tuple[list[VideoRecord], list[dict[str, str]]]:
    """The records of list `data.<key>` whose file (`folders`: folder) is there; the missing ones stop the run
    before any work (`on_error: fail`) or are left out with one warning (`skip`), returned as skip-log entries."""
    missing = missing_files(records, cfg.root, folders=folders)
    if not missing:
        return records, []
    where = cfg.root if cfg.root is not None else "the current folder (data.root unset)"
    first = ", ".join(r.path for r in missing[:3]) + (", ..." if len(missing) > 3 else "")
    what = f"data.{key} {getattr(cfg, key)}: {len(missing)} of {len(records)} listed videos not found under {where}"
    kind = "folder" if folders else "file"
    bad = [(r, f"{kind} not found") for r in missing]
    hint = "check data.root, or set data.on_error=skip to leave them out"
    return _leave_out(cfg, records, bad, what, first, hint, "none left to use: check data.root")


def _drop_unopenable(
    cfg: VideoDataConfig, records: list[VideoRecord]
) -> tuple[list[VideoRecord], list[dict[str, str]]]:
    """The test videos whose file opens (`decode.probe_video_file`, headers only); the others stop the run before
    any work (`on_error: fail`), since a test video found broken only after training would lose the run's
    evaluation, or are left out with one warning (`skip`), returned as skip-log entries."""
    base = Path(cfg.root) if cfg.root is not None else None
    bad: list[tuple[VideoRecord, str]] = []
    for r in records:
        reason = probe_video_file(base / r.path if base is not None else Path(r.path))
        if reason is not None:
            bad.append((r, reason))
    if not bad:
        return records, []
    what = f"data.test_list {cfg.test_list}: {len(bad)} of {len(records)} test videos cannot be opened"
    first = f"{bad[0][0].path}, {bad[0][1]}"
    hint = "fix or remove them, or set data.on_error=skip to leave them out (data.probe_test_videos=false skips this check)"
    return _leave_out(cfg, records, bad, what, first, hint, "none left to test on")


def _leave_out(
    cfg: VideoDataConfig,
    records: list[VideoRecord],
    bad: list[tuple[VideoRecord, str]],
    what: str,
    first: str,
    hint: str,
    none_left: str,
) -> tuple[list[VideoRecord], list[dict[str, str]]]:
    """`records` without the `bad` ones (record, reason): with `on_error: fail` one error line (`what`, the
    `first` ones, where, `hint`) instead; with `skip` one warning, and the skip-log entries of those left out."""
    if cfg.on_error == "fail":
        raise DataError(f"{what} (first: {first}; at {bad[0][0].source}); {hint}")
    if len(bad) == len(records):
        raise DataError(f"{what} (first: {first}); {none_left}")
    warnings.warn(f"{what} (first: {first}); left out (data.on_error: skip)", RuntimeWarning, stacklevel=5)
    gone = {id(r) for r, _ in bad}
    entries = [{"source": r.source, "reason": f"{r.source}: {why} ({r.path})"} for r, why in bad]
    return [r for r in records if id(r) not in gone], entries


def images_to_clips(images: np.ndarray | list[np.ndarray], size: int, pad: bool = False) -> np.ndarray:
    """uint8 HWC images (1 or 3 channels) → one-frame RGB videos (N, 1, size, size, 3) uint8.

    Images of another size are zero-padded centrally (`pad`, when they fit) or resized (bilinear, antialiased)
    once; grey images are replicated to 3 channels."""
    arrays = [images] if isinstance(images, np.ndarray) else [im[None] for im in images]
    out = np.empty((sum(len(a) for a in arrays), 1, size, size, 3), dtype=np.uint8)
    i = 0
    for a in arrays:
        for start in range(0, len(a), 2048):
            chunk = a[start : start + 2048]
            if chunk.ndim != 4 or chunk.shape[-1] not in (1, 3):
                raise DataError(f"expected HWC images with 1 or 3 channels, got shape {chunk.shape[1:]}")
            h, w = chunk.shape[1:3]
            if (h, w) != (size, size):
                if pad and h <= size and w <= size:
                    top, left = (size - h) // 2, (size - w) // 2
                    chunk = np.pad(chunk, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))
                else:
                    x = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float()
                    x = F.interpolate(
                        x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
                    )
                    chunk = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            out[i : i + len(chunk), 0] = chunk  # a grey channel broadcasts to 3
            i += len(chunk)
    return out


def image_clip_transforms(cfg: ImageDataConfig, mean: tuple[float, ...], std: tuple[float, ...], flip: bool):
    """Training and test transforms of one-frame image clips: [pad-crop, flip] when `cfg.augment`, normalise."""
    if len(mean) == 1:  # grey images are replicated to 3 channels, so are their statistics
        mean, std = mean * 3, std * 3
    norm = Normalize(mean, std)
    train: list[Callable] = []
    if cfg.augment:
        train.append(RandomPadCrop(cfg.image_size, 4))
        if flip:
            train.append(RandomHorizontalFlip(0.5))
    return Compose([*train, norm]), Compose([norm])


def _check_image_options(cfg: VideoDataConfig) -> None:
    if cfg.num_segments != 1:
        raise ConfigError(
            f"data.num_segments must be 1 for data.name 'images' (each image is a one-frame clip), "
            f"got {cfg.num_segments}"
        )
    defaults = VideoDataConfig()
    unused = [k for k in ("resize", "crop", "flip", "mean", "std") if getattr(cfg, k) != getattr(defaults, k)]
    if unused:
        raise ConfigError(
            f"data.{', data.'.join(unused)}: not used for data.name 'images' (set data.images.image_size and "
            "data.images.augment; normalisation uses the data set's standard statistics)"
        )


@register_source("images")
def build_image_clip_datasets(cfg: VideoDataConfig, seed: int) -> VideoDatasets:
    """The image data set of `cfg.images` as one-frame clips (N, 1, S, S, 3) in `ClipArrayDataset`s.

    Normalisation: the standard statistics of MNIST, Fashion-MNIST and CIFAR (`DATASET_STATS`), else those of
    the training images (as `build_image_datasets`); augmentation as `data.images.augment` says."""
    _check_image_options(cfg)
    icfg = cfg.images
    arrays = load_image_arrays(icfg, seed, key="data.images")
    train_x, train_y, test_x, test_y, names = (
        arrays.train_x, arrays.train_y, arrays.test_x, arrays.test_y, arrays.class_names,
    )  # fmt: skip
    mean, std = DATASET_STATS[icfg.name] if icfg.name in DATASET_STATS else channel_stats(train_x)
    grey = icfg.name in ("mnist", "fashion_mnist")
    train_tf, test_tf = image_clip_transforms(icfg, mean, std, flip=not grey)
    pad = grey and icfg.image_size == 32
    train_v, test_v = (
        images_to_clips(train_x, icfg.image_size, pad),
        images_to_clips(test_x, icfg.image_size, pad),
    )
    train = ClipArrayDataset(train_v, train_y, 1, True, train_tf, seed)
    test = ClipArrayDataset(test_v, test_y, 1, False, test_tf, seed, cfg.test_clips)
    train_eval = ClipArrayDataset(train_v, train_y, 1, False, test_tf, seed)
    return VideoDatasets(train, test, len(names), names, train_eval)


@register_source("synthetic")
def build_synthetic_datasets(cfg: VideoDataConfig, seed: int) -> VideoDatasets:
    """The embedded synthetic videos of `cfg.synthetic`, generated in memory: the first `train_per_class` videos
    of each class train, the rest test."""
    s = cfg.synthetic
    per_class = s.train_per_class + s.test_per_class
    try:
        videos, labels, names = make_synthetic_videos(
            s.preset, s.num_classes, per_class, s.frames, s.size, s.seed
        )
    except ValueError as exc:
        raise ConfigError(f"data.synthetic: {exc}") from None
    rank = np.arange(len(labels)) // s.num_classes  # position of each video within its class
    is_test = rank >= s.train_per_class
    train_tf, test_tf = clip_transforms(cfg, names)
    train = ClipArrayDataset(videos[~is_test], labels[~is_test], cfg.num_segments, True, train_tf, seed)
    test = ClipArrayDataset(
        videos[is_test], labels[is_test], cfg.num_segments, False, test_tf, seed, cfg.test_clips
    )
    train_eval = ClipArrayDataset(videos[~is_test], labels[~is_test], cfg.num_segments, False, test_tf, seed)
    return VideoDatasets(train, test, s.num_classes, names, train_eval)


def build_list_datasets(cfg: VideoDataConfig, seed: int, fmt: AnnotationFormat) -> VideoDatasets:
    """The videos listed in `data.train_list` and `data.test_list`, files in annotation format `fmt`, read from
    disk under `data.root`."""
    train_records, test_records = _lists(cfg, fmt)
    names = _class_names(cfg, train_records + test_records)  # from every listed video, found or not
    train_records, missing_train = _drop_missing(cfg, "train_list", train_records, fmt.folders)
    test_records, missing_test = _drop_missing(cfg, "test_list", test_records, fmt.folders)
    if cfg.probe_test_videos and not fmt.folders:
        test_records, broken = _drop_unopenable(cfg, test_records)
        missing_test += broken
    train_tf, test_tf = clip_transforms(cfg, names)
    common = {"root": cfg.root, "num_segments": cfg.num_segments, "on_error": cfg.on_error, "seed": seed}
    common["short"] = cfg.short_videos
    train = VideoDataset(train_records, train=True, transform=train_tf, **common)
    test = VideoDataset(test_records, train=False, transform=test_tf, clips=cfg.test_clips, **common)
    train_eval = VideoDataset(train_records, train=False, transform=test_tf, **common)
    return VideoDatasets(train, test, len(names), names, train_eval, missing_train + missing_test)


def build_video_datasets(cfg: VideoDataConfig, seed: int) -> VideoDatasets:
    """The training and test sets of `cfg` (test: segment centres, `test_clips` views), from the video source
    `data.name` names."""
    return get_source(cfg.name)(cfg, seed)


def _one_thread_per_worker(worker_id: int) -> None:
    torch.set_num_threads(1)


def video_loader(
    dataset: Dataset, cfg: VideoDataConfig, train: bool, seed: int, distributed: bool = False
) -> DataLoader:
    """A DataLoader over clips: shuffled with a seeded generator in training, in order for testing.

    `distributed` (under torchrun): `cfg.batch_size` is the global batch; in training this process takes its share
    of each batch from a `DistributedSampler`, in testing its block of the set (`engine.distributed.shard`).
    """
    workers = {
        "num_workers": cfg.num_workers,
        # training draws each clip from (seed, epoch, index): its workers start again each epoch, with the data
        # set as `set_epoch` left it (persistent ones would keep drawing epoch 0's frames and crops)
        "persistent_workers": cfg.num_workers > 0 and not train,
        "worker_init_fn": _one_thread_per_worker if cfg.num_workers > 0 else None,
    }
    if distributed:
        from distillkit.engine.distributed import per_process_batch, shard, train_sampler

        if not train:
            return DataLoader(shard(dataset), batch_size=cfg.eval_batch_size, shuffle=False, **workers)
        return DataLoader(
            dataset,
            batch_size=per_process_batch(cfg.batch_size, "data.batch_size"),
            sampler=train_sampler(dataset, seed),
            drop_last=len(dataset) >= cfg.batch_size,
            **workers,
        )
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size if train else cfg.eval_batch_size,
        shuffle=train,
        drop_last=train and len(dataset) >= cfg.batch_size,
        generator=torch.Generator().manual_seed(seed) if train else None,
        **workers,
    )
