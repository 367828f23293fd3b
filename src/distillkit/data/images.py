"""Image classification data sets from an `ImageDataConfig`: synthetic, MNIST-family, CIFAR, ImageFolder.

Normalisation: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 use the standard fixed per-channel mean/std of
their full training sets (below), so a model's inputs do not depend on `train_subset`. The synthetic task and
ImageFolder data use the per-channel mean/std computed once from the (subset) training images; the test split
always reuses the training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from distillkit.config import ImageDataConfig
from distillkit.data.image_formats import cifar_class_names, load_cifar, load_idx_dataset, load_image_folder
from distillkit.data.synthetic_images import SHAPE_NAMES, make_synthetic_images
from distillkit.errors import ConfigError, DataError

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

# Standard per-channel (mean, std) of the full training sets, pixel values in [0, 1].
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

Images = np.ndarray | list[np.ndarray]


class ArrayImageDataset(Dataset):
    """In-memory image classification set returning `(float tensor C×S×S, int label)`.

    At construction the uint8 HWC images are converted once to a single normalised float tensor of size
    `image_size` (zero-padded centrally when `pad` is true, else bilinearly resized; padding happens before
    normalisation, so it is black). With `augment`, `__getitem__` applies a random crop with 4-pixel (black)
    padding and, if `flip`, a random horizontal flip, drawing from torch's global RNG (seeded per worker).
    """

    def __init__(
        self,
        images: Images,
        labels: np.ndarray,
        image_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        *,
        pad: bool = False,
        augment: bool = False,
        flip: bool = True,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.image_size = image_size
        self.augment = augment
        self.flip = flip
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.images = _to_tensor(images, image_size, pad, mean_t, std_t)
        # The value of a black pixel after normalisation, used to pad random crops.
        self._fill = (-mean_t / std_t).expand(-1, image_size, image_size).contiguous()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index]
        if self.augment:
            x = self._random_crop(x, 4)
            if self.flip and torch.rand(()) < 0.5:
                x = x.flip(-1)
        return x, int(self.labels[index])

    def _random_crop(self, x: torch.Tensor, padding: int) -> torch.Tensor:
        dy, dx = torch.randint(-padding, padding + 1, (2,)).tolist()
        if dy == 0 and dx == 0:
            return x
        size = self.image_size
        out = self._fill.clone()
        out[:, max(-dy, 0) : size - max(dy, 0), max(-dx, 0) : size - max(dx, 0)] = x[
            :, max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)
        ]
        return out


def _to_tensor(images: Images, size: int, pad: bool, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 HWC images → one normalised float tensor (N, C, size, size), converted in chunks."""
    if isinstance(images, np.ndarray):
        chunks = [images[i : i + 2048] for i in range(0, len(images), 2048)]
    else:
        chunks = [im[None] for im in images]
    out = []
    for chunk in chunks:
        x = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float().div_(255)
        h, w = x.shape[-2:]
        if (h, w) != (size, size):
            if pad and h <= size and w <= size:
                top, left = (size - h) // 2, (size - w) // 2
                x = F.pad(x, (left, size - w - left, top, size - h - top))
            else:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(x.sub_(mean).div_(std))
    return torch.cat(out) if out else torch.empty(0, len(mean), size, size)


@dataclass
class ImageDatasets:
    """Train and test sets of one image classification task, with what a model needs to know about them."""

    train: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    class_names: list[str]


def _derived_seed(seed: int, tag: int) -> int:
    return int(np.random.SeedSequence([seed, tag]).generate_state(1)[0])


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a deterministic random subset of `size` items, class-balanced as far as possible."""
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    shuffled = labels[order]
    # Rank of each item among the shuffled items of its class; taking ranks 0, 1, 2, ... balances classes.
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.searchsorted(shuffled[by_class], shuffled[by_class], side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_class] = np.arange(len(labels)) - starts
    chosen = order[np.lexsort((np.arange(len(labels)), rank))[:size]]
    return np.sort(chosen)


def _take(images: Images, labels: np.ndarray, size: int | None, seed: int) -> tuple[Images, np.ndarray]:
    if size is None or size >= len(labels):
        return images, labels
    idx = stratified_subset(labels, size, seed)
    if isinstance(images, np.ndarray):
        return images[idx], labels[idx]
    return [images[i] for i in idx], labels[idx]


def channel_stats(images: Images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 HWC images, in [0, 1] units."""
    arrays = [images] if isinstance(images, np.ndarray) else images
    channels = arrays[0].shape[-1]
    total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
    for a in arrays:
        flat = a.reshape(-1, channels).astype(np.float64) / 255
        total += flat.sum(0)
        total_sq += (flat**2).sum(0)
        count += len(flat)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(max(s, 1e-3)) for s in std)


def _root(cfg: ImageDataConfig, key: str) -> Path:
    root = cfg.root
    if root is None and cfg.name == "fashion_mnist":
        root = FASHION_MNIST_ROOT
    if root is None:
        raise ConfigError(f"{key}.root: must be set for {key}.name={cfg.name}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{key}.root: {root} does not exist (or is not a directory)")
    return root


@dataclass
class ImageArrays:
    """uint8 HWC images (one array, or a list for ImageFolder) and int64 labels of both splits, subsets taken."""

    train_x: Images
    train_y: np.ndarray
    test_x: Images
    test_y: np.ndarray
    class_names: list[str]


def load_image_arrays(cfg: ImageDataConfig, seed: int, key: str = "data") -> ImageArrays:
    """Load (or generate) the images named by `cfg.name` and take the subsets; `key` prefixes error messages."""
    if cfg.name == "synthetic":
        syn = cfg.synthetic
        train_x, train_y = make_synthetic_images(
            syn.num_classes, syn.train_per_class, cfg.image_size, syn.channels, seed=_derived_seed(seed, 0)
        )
        test_x, test_y = make_synthetic_images(
            syn.num_classes, syn.test_per_class, cfg.image_size, syn.channels, seed=_derived_seed(seed, 1)
        )
        class_names = list(SHAPE_NAMES[: syn.num_classes])
    elif cfg.name in ("mnist", "fashion_mnist"):
        root = _root(cfg, key)
        train_x, train_y = load_idx_dataset(root, train=True)
        test_x, test_y = load_idx_dataset(root, train=False)
        class_names = FASHION_MNIST_CLASSES if cfg.name == "fashion_mnist" else [str(i) for i in range(10)]
    elif cfg.name in ("cifar10", "cifar100"):
        root = _root(cfg, key)
        num_classes = 10 if cfg.name == "cifar10" else 100
        train_x, train_y = load_cifar(root, train=True, num_classes=num_classes)
        test_x, test_y = load_cifar(root, train=False, num_classes=num_classes)
        class_names = cifar_class_names(root, num_classes)
    elif cfg.name == "imagefolder":
        root = _root(cfg, key)
        train_x, train_y, class_names = load_image_folder(root, train=True)
        test_x, test_y, _ = load_image_folder(root, train=False)
    else:
        raise DataError(f"{key}.name: unknown data set '{cfg.name}'")
    num_classes = len(class_names)
    for split, labels in (("train", train_y), ("test", test_y)):
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(f"{key}.name={cfg.name}: {split} labels outside 0..{num_classes - 1}")
    train_x, train_y = _take(train_x, train_y, cfg.train_subset, _derived_seed(seed, 2))
    test_x, test_y = _take(test_x, test_y, cfg.test_subset, _derived_seed(seed, 3))
    return ImageArrays(train_x, train_y, test_x, test_y, list(class_names))


def build_image_datasets(cfg: ImageDataConfig, seed: int) -> ImageDatasets:
    """Load (or generate) the data set named by `cfg.name`, take subsets, and wrap both splits as tensors."""
    arrays = load_image_arrays(cfg, seed)
    train_x, train_y, test_x, test_y = arrays.train_x, arrays.train_y, arrays.test_x, arrays.test_y
    class_names, num_classes = arrays.class_names, len(arrays.class_names)
    pad = cfg.name in ("mnist", "fashion_mnist") and cfg.image_size == 32
    mean, std = DATASET_STATS[cfg.name] if cfg.name in DATASET_STATS else channel_stats(train_x)
    flip = cfg.name not in ("mnist", "fashion_mnist")
    common = {"image_size": cfg.image_size, "mean": mean, "std": std, "pad": pad}
    train = ArrayImageDataset(train_x, train_y, augment=cfg.augment, flip=flip, **common)
    test = ArrayImageDataset(test_x, test_y, augment=False, **common)
    return ImageDatasets(
        train=train,
        test=test,
        num_classes=num_classes,
        in_channels=int(train.images.shape[1]),
        image_size=cfg.image_size,
        class_names=list(class_names),
    )


def make_loaders(
    ds: ImageDatasets, cfg: ImageDataConfig, seed: int, distributed: bool = False
) -> tuple[DataLoader, DataLoader]:
    """Train loader (seeded shuffle, drop_last when the set exceeds one batch) and unshuffled test loader.

    `distributed` (under torchrun): `cfg.batch_size` is the global batch; this process's loaders take its share
    of each batch from a `DistributedSampler` and its block of the test set (`engine.distributed.shard`).
    """
    workers = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
    if distributed:
        from distillkit.engine.distributed import per_process_batch, shard, train_sampler

        train = DataLoader(
            ds.train,
            batch_size=per_process_batch(cfg.batch_size, "data.batch_size"),
            sampler=train_sampler(ds.train, seed),
            drop_last=len(ds.train) > cfg.batch_size,
            **workers,
        )
        return train, DataLoader(shard(ds.test), batch_size=cfg.eval_batch_size, shuffle=False, **workers)
    train = DataLoader(
        ds.train,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(ds.train) > cfg.batch_size,
        **workers,
    )
    test = DataLoader(ds.test, batch_size=cfg.eval_batch_size, shuffle=False, **workers)
    return train, test
