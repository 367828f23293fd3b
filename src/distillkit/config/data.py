"""The data sets' sections: images, videos, and their embedded synthetic generators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from distillkit.config.core import Section
from distillkit.errors import ConfigError


def _video_source(name: str) -> str:
    from distillkit.data.videos import get_source  # imports torch: only once a config names a video source

    try:
        get_source(name)
    except ConfigError as exc:
        raise PydanticCustomError("unknown_video_source", "{message}", {"message": str(exc)}) from None
    return name


VideoSourceName = Annotated[str, AfterValidator(_video_source)]
"""The name of a video source (`distillkit.data.videos.register_source`) or of an annotation format that lists
videos (`distillkit.data.video.register_format`, `list_source`)."""


class SyntheticImagesConfig(Section):
    """The embedded synthetic image task (deterministic from `seed`)."""

    num_classes: int = Field(10, ge=2, le=10)
    """Number of shape classes (at most 10)."""
    train_per_class: int = Field(300, ge=1)
    """Training images per class."""
    test_per_class: int = Field(100, ge=1)
    """Test images per class."""
    channels: Literal[1, 3] = 3
    """Grey (1) or colour (3) images."""


class ImageDataConfig(Section):
    """An image classification data set and its loader."""

    name: Literal["synthetic", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagefolder"] = "synthetic"
    """Data set: embedded synthetic, MNIST-family IDX files, CIFAR python pickles or an ImageFolder tree."""
    root: Path | None = None
    """Folder of the data set files (fashion_mnist defaults to /usr/share/datasets/fashion-mnist)."""
    image_size: int = Field(32, ge=8)
    """Side of the square network input; 28×28 MNIST-family images are zero-padded to 32."""
    train_subset: int | None = Field(None, ge=1)
    """Use a class-balanced subset of this many training images."""
    test_subset: int | None = Field(None, ge=1)
    """Use a class-balanced subset of this many test images."""
    augment: bool = False
    """Random crop (4-pixel padding) and, except for MNIST-family, horizontal flip."""
    batch_size: int = Field(64, ge=1)
    """Training batch size."""
    eval_batch_size: int = Field(256, ge=1)
    """Evaluation batch size."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes."""
    synthetic: SyntheticImagesConfig = SyntheticImagesConfig()
    """Settings of the synthetic data set."""


class SyntheticVideosConfig(Section):
    """The embedded synthetic video benchmark, generated in memory (docs/design.md, "Data")."""

    preset: Literal["motion", "appearance", "mixed"] = "motion"
    """`motion`: the class is the motion (SSv2-like); `appearance`: the class is what is seen (Kinetics-like);
    `mixed`: the class is a motion and a colour, so both are needed to tell it."""
    num_classes: int = Field(6, ge=2)
    """Number of classes (at most 18 for motion and mixed, 24 for appearance)."""
    train_per_class: int = Field(60, ge=1)
    """Training videos per class."""
    test_per_class: int = Field(20, ge=1)
    """Test videos per class (the last ones of each class, as `distillkit data synth` splits them)."""
    frames: int = Field(8, ge=1)
    """Frames per video."""
    size: int = Field(32, ge=8)
    """Frame height and width in pixels."""
    seed: int = 0
    """Seed of the generator (independent of the run's seed)."""


class VideoDataConfig(Section):
    """A video classification data set: the embedded synthetic one, annotation lists of files or rawframes, or an
    image data set whose images are one-frame clips."""

    name: VideoSourceName = "synthetic"
    """`synthetic` (in memory), `list` (`path label` lines), `rawframes` (`dir num_frames label` lines),
    `images` (the image data set of `images` as one-frame clips; needs `num_segments: 1`), or another registered
    video source. Other formats (SSv2, Kinetics, UCF101, HMDB51) are turned into lists by
    `distillkit data convert`."""
    root: Path | None = None
    """Folder the paths in the lists are relative to."""
    train_list: Path | None = None
    """Training annotation list."""
    test_list: Path | None = None
    """Test annotation list."""
    classes: Path | None = None
    """Class names, one per line in label order (optional; gives the number of classes and the flip map)."""
    num_classes: int | None = Field(None, ge=2)
    """Number of classes when no `classes` file is given (default: largest label + 1)."""
    num_segments: int = Field(8, ge=1)
    """TSN segments, i.e. frames per clip."""
    test_clips: int = Field(1, ge=1)
    """Clips per video at test time (their logits are averaged)."""
    resize: int | None = Field(None, ge=8)
    """Resize the short side to this many pixels before cropping (None: keep)."""
    crop: int | None = Field(None, ge=8)
    """Crop size (multi-scale crop in training, centre crop in test); None: no crop."""
    flip: bool = False
    """Random horizontal flips in training, with labels mapped through the left/right map of the class names."""
    mean: list[float] = [0.5, 0.5, 0.5]
    """Per-channel mean for normalisation (pixel values in [0, 1])."""
    std: list[float] = [0.25, 0.25, 0.25]
    """Per-channel standard deviation for normalisation."""
    batch_size: int = Field(16, ge=1)
    """Training batch size (clips)."""
    eval_batch_size: int = Field(32, ge=1)
    """Evaluation batch size (clips)."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes (0: load in the main process)."""
    short_videos: Literal["loop", "error"] = "loop"
    """A video with fewer frames than `num_segments`: loop its frames (TSN's behaviour) or stop with an error
    naming the file and line (`error`; with `on_error: skip` such videos are skipped and counted)."""
    on_error: Literal["fail", "skip"] = "fail"
    """An unreadable video stops the run (`fail`) or is skipped, counted in the log and the results (`skip`)."""
    probe_test_videos: bool = True
    """Open every listed test video's header before training (no frame decoded): one that cannot be opened or
    has no video stream stops the run before any work (`on_error: fail`) or is left out with one warning
    (`skip`), rather than being found after training. Files only (rawframes folders are read frame by frame)."""
    synthetic: SyntheticVideosConfig = SyntheticVideosConfig()
    """Generator settings when `name` is `synthetic`."""
    images: ImageDataConfig = ImageDataConfig()
    """The image data set when `name` is `images`: its `name`, `root`, `image_size`, subsets, `augment` (random
    crop with 4-pixel zero padding, plus horizontal flip except for MNIST-family) and `synthetic` are used, its
    batch sizes and workers are not (this section's are); normalisation uses the data set's standard statistics,
    not `mean`/`std`, and `resize`, `crop` and `flip` must stay unset."""
