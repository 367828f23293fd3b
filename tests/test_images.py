"""Synthetic images, `build_image_datasets` and `make_loaders` on tiny data written to tmp_path."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distillkit.config import ImageDataConfig, SyntheticImagesConfig
from distillkit.data.images import (
    DATASET_STATS,
    ArrayImageDataset,
    build_image_datasets,
    make_loaders,
    stratified_subset,
)
from distillkit.data.synthetic_images import SHAPE_NAMES, make_synthetic_images
from distillkit.errors import ConfigError, DataError


def small_synthetic(**kw: object) -> ImageDataConfig:
    syn = SyntheticImagesConfig(num_classes=4, train_per_class=10, test_per_class=5, channels=3)
    return ImageDataConfig(name="synthetic", synthetic=syn, **kw)


def write_idx(path: Path, array: np.ndarray) -> None:
    code = 0x08
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def write_mnist(root: Path, n_train: int = 20, n_test: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    first = None
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
        first = images if first is None else first
    return first


# ------------------------------------------------------------------------------------------------- synthetic
def test_synthetic_deterministic_and_seeded() -> None:
    a_x, a_y = make_synthetic_images(10, 6, 16, 3, seed=3)
    b_x, b_y = make_synthetic_images(10, 6, 16, 3, seed=3)
    c_x, c_y = make_synthetic_images(10, 6, 16, 3, seed=4)
    assert a_x.tobytes() == b_x.tobytes() and np.array_equal(a_y, b_y)
    assert not np.array_equal(a_x, c_x)
    assert not np.array_equal(a_y, c_y)


@pytest.mark.parametrize("channels", [1, 3])
def test_synthetic_shapes_and_balance(channels: int) -> None:
    images, labels = make_synthetic_images(7, 9, 20, channels, seed=0)
    assert images.shape == (63, 20, 20, channels) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [9] * 7
    assert not np.array_equal(labels, np.sort(labels))  # interleaved, not blocked by class
    assert images.std() > 10  # not blank


def test_synthetic_classes_differ() -> None:
    """Each family's mean shape mask differs from every other's (they are distinct patterns)."""
    images, labels = make_synthetic_images(10, 60, 24, 1, seed=0)
    # Contrast-normalise each image so the mean image reflects the shape, not the colour.
    x = images[..., 0].astype(np.float64)
    x = np.abs(x - np.median(x, axis=(1, 2), keepdims=True))
    x /= x.max(axis=(1, 2), keepdims=True) + 1e-9
    means = np.stack([x[labels == c].mean(0) for c in range(10)])
    dist = np.abs(means[:, None] - means[None]).mean(axis=(2, 3))
    assert (dist + np.eye(10)).min() > 0.01


def test_synthetic_rejects_too_many_classes() -> None:
    with pytest.raises(ValueError):
        make_synthetic_images(len(SHAPE_NAMES) + 1, 2, 8, 3, seed=0)


# ---------------------------------------------------------------------------------------------- subsetting
def test_stratified_subset_balanced_and_deterministic() -> None:
    labels = np.repeat(np.arange(5), [50, 30, 10, 4, 6])
    idx = stratified_subset(labels, 20, seed=1)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert np.bincount(labels[idx], minlength=5).tolist() == [4, 4, 4, 4, 4]
    assert np.array_equal(idx, stratified_subset(labels, 20, seed=1))
    assert not np.array_equal(idx, stratified_subset(labels, 20, seed=2))
    small = np.bincount(labels[stratified_subset(labels, 30, seed=0)], minlength=5)
    assert small[3] == 4 and small.sum() == 30  # a class with only 4 items gives all of them


# ------------------------------------------------------------------------------------------ build datasets
def test_build_synthetic() -> None:
    ds = build_image_datasets(small_synthetic(image_size=16), seed=0)
    assert (len(ds.train), len(ds.test)) == (40, 20)
    assert ds.num_classes == 4 and ds.in_channels == 3 and ds.image_size == 16
    assert ds.class_names == list(SHAPE_NAMES[:4])
    x, y = ds.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and isinstance(y, int)
    # Normalised with the train statistics: roughly zero mean, unit std per channel.
    train = ds.train.images
    assert torch.allclose(train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(train.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    # Train and test come from different seeds; the same seed rebuilds identical data.
    assert not torch.equal(ds.train.images[:20], ds.test.images)
    again = build_image_datasets(small_synthetic(image_size=16), seed=0)
    assert torch.equal(again.train.images, ds.train.images)
    assert not torch.equal(build_image_datasets(small_synthetic(image_size=16), seed=1).train.images, train)


def test_build_synthetic_subsets() -> None:
    ds = build_image_datasets(small_synthetic(train_subset=12, test_subset=7), seed=0)
    assert (len(ds.train), len(ds.test)) == (12, 7)
    assert torch.bincount(ds.train.labels, minlength=4).tolist() == [3, 3, 3, 3]


def test_build_mnist_pads_28_to_32(tmp_path: Path) -> None:
    first = write_mnist(tmp_path)
    ds = build_image_datasets(ImageDataConfig(name="mnist", root=tmp_path, image_size=32), seed=0)
    assert ds.num_classes == 10 and ds.in_channels == 1 and ds.class_names[3] == "3"
    assert (len(ds.train), len(ds.test)) == (20, 10)
    x, y = ds.train[0]
    assert x.shape == (1, 32, 32) and y == 0
    (mean,), (std,) = DATASET_STATS["mnist"]
    expected = (torch.from_numpy(first[0]).float() / 255 - mean) / std
    assert torch.allclose(x[0, 2:30, 2:30], expected, atol=1e-5)
    border = torch.cat(
        [x[0, :2].flatten(), x[0, 30:].flatten(), x[0, :, :2].flatten(), x[0, :, 30:].flatten()]
    )
    assert torch.allclose(border, torch.full_like(border, -mean / std))


def test_build_mnist_resizes_other_sizes(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    ds = build_image_datasets(ImageDataConfig(name="fashion_mnist", root=tmp_path, image_size=14), seed=0)
    assert ds.train[0][0].shape == (1, 14, 14)
    assert ds.class_names[0] == "T-shirt/top"


def test_build_requires_existing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.root.*does not exist"):
        build_image_datasets(ImageDataConfig(name="cifar10", root=tmp_path / "nope"), seed=0)
    with pytest.raises(ConfigError, match="data.root: must be set"):
        build_image_datasets(ImageDataConfig(name="mnist"), seed=0)


def test_build_cifar10(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 1, 2, 9]}, f)
    ds = build_image_datasets(ImageDataConfig(name="cifar10", root=tmp_path, image_size=24), seed=0)
    assert (len(ds.train), len(ds.test)) == (20, 4)
    assert ds.num_classes == 10 and ds.in_channels == 3
    assert ds.train[0][0].shape == (3, 24, 24)


def test_build_imagefolder_resizes_mixed_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for rel, (h, w) in {"train/a/1.png": (10, 12), "train/b/2.png": (20, 8), "test/b/3.png": (7, 7)}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / rel)
    ds = build_image_datasets(ImageDataConfig(name="imagefolder", root=tmp_path, image_size=16), seed=0)
    assert ds.class_names == ["a", "b"] and ds.num_classes == 2 and ds.in_channels == 3
    assert ds.train.images.shape == (2, 3, 16, 16) and ds.test.images.shape == (1, 3, 16, 16)
    assert ds.test[0][1] == 1


# ---------------------------------------------------------------------------------------------- augmentation
def _shifted(x: torch.Tensor, dy: int, dx: int, fill: torch.Tensor) -> torch.Tensor:
    padded = torch.nn.functional.pad(x - fill, (4, 4, 4, 4)) + fill[..., :1, :1]
    return padded[:, 4 + dy : 4 + dy + x.shape[1], 4 + dx : 4 + dx + x.shape[2]]


@pytest.mark.parametrize("flip", [False, True])
def test_augment_is_shift_and_flip(flip: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (1, 12, 12, 2), dtype=np.uint8)
    ds = ArrayImageDataset(images, np.array([0]), 12, (0.5, 0.4), (0.2, 0.3), augment=True, flip=flip)
    plain = ArrayImageDataset(images, np.array([0]), 12, (0.5, 0.4), (0.2, 0.3)).images[0]
    fill = torch.tensor([-0.5 / 0.2, -0.4 / 0.3]).view(2, 1, 1).expand(2, 12, 12)
    shifts = {(dy, dx): _shifted(plain, dy, dx, fill) for dy in range(-4, 5) for dx in range(-4, 5)}
    torch.manual_seed(0)
    seen_flip, seen_shift = False, False
    for _ in range(60):
        x, _ = ds[0]
        as_is = any(torch.allclose(x, s) for s in shifts.values())
        flipped = any(torch.allclose(x.flip(-1), s) for s in shifts.values())
        assert as_is or flipped
        seen_flip |= flipped and not as_is
        seen_shift |= not torch.allclose(x, plain)
    assert seen_shift
    assert seen_flip == flip


def test_mnist_augment_never_flips(tmp_path: Path) -> None:
    """MNIST-family digits are shifted by the augmentation but never mirrored (a mirrored digit is another)."""
    write_mnist(tmp_path)
    ds = build_image_datasets(ImageDataConfig(name="mnist", root=tmp_path, augment=True), seed=0)
    assert ds.train.augment and not ds.train.flip and not ds.test.augment
    plain = ds.train.images[0]
    fill = plain[:, :1, :1].expand_as(plain)  # the 28×28 digits are padded to 32 with black
    shifts = [_shifted(plain, dy, dx, fill) for dy in range(-4, 5) for dx in range(-4, 5)]
    torch.manual_seed(0)
    samples = [ds.train[0][0] for _ in range(60)]
    assert all(any(torch.allclose(x, s) for s in shifts) for x in samples)
    assert not any(torch.allclose(x.flip(-1), s) for x in samples for s in shifts)
    assert any(not torch.equal(x, plain) for x in samples)


# --------------------------------------------------------------------------------------------------- loaders
def test_make_loaders_shapes_and_determinism() -> None:
    cfg = small_synthetic(image_size=16, batch_size=16, eval_batch_size=8)
    ds = build_image_datasets(cfg, seed=0)
    train, test = make_loaders(ds, cfg, seed=0)
    batches = list(train)
    assert len(batches) == 2  # 40 items, batch 16, drop_last
    x, y = batches[0]
    assert x.shape == (16, 3, 16, 16) and y.shape == (16,) and y.dtype == torch.int64
    assert [len(b[1]) for b in test] == [8, 8, 4]
    assert torch.equal(next(iter(test))[1], ds.test.labels[:8])  # not shuffled
    again = [b[1] for b in make_loaders(ds, cfg, seed=0)[0]]
    other = [b[1] for b in make_loaders(ds, cfg, seed=1)[0]]
    assert all(torch.equal(a, b[1]) for a, b in zip(again, batches, strict=True))
    assert not all(torch.equal(a, b[1]) for a, b in zip(other, batches, strict=True))


def test_make_loaders_keeps_small_train_set() -> None:
    cfg = small_synthetic(batch_size=64)
    ds = build_image_datasets(cfg, seed=0)
    train, _ = make_loaders(ds, cfg, seed=0)
    assert [len(b[1]) for b in train] == [40]
