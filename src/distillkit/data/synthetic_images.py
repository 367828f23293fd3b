"""An embedded, deterministic image classification task: ten shape/texture families drawn in numpy.

Each class is a family (bars, stripes, ring, disc, ...) drawn at a random position, scale, small rotation and
colour over a noisy gradient background, so a small CNN needs a few epochs to separate them but can learn it.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = (
    "horizontal_bars",
    "vertical_bars",
    "diagonal_stripes",
    "ring",
    "disc",
    "cross",
    "checkerboard",
    "triangle",
    "two_blobs",
    "frame",
)


def _shape_masks(label: int, u: np.ndarray, v: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean (n, S, S) masks of family `label` in local coordinates u, v (shape fills |u|, |v| <= 1)."""
    box = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    r = np.sqrt(u**2 + v**2)
    freq = np.pi * p["bars"]  # 2 or 3 stripes over the box
    width = p["width"]
    if label == 0:
        return box & (np.cos(freq * v) > 0)
    if label == 1:
        return box & (np.cos(freq * u) > 0)
    if label == 2:
        return box & (np.cos(freq * (u + p["sign"] * v) / np.sqrt(2)) > 0)
    if label == 3:
        return np.abs(r - 0.75) < width
    if label == 4:
        return r < 1
    if label == 5:
        return box & ((np.abs(u) < width) | (np.abs(v) < width))
    if label == 6:
        return box & (np.cos(freq * u) * np.cos(freq * v) > 0)
    if label == 7:
        w = p["sign"] * v  # apex up or down
        return (w <= 1) & (np.abs(u) < (w + 1) / 2)
    if label == 8:
        dx, dy = 0.6 * np.cos(p["angle"]), 0.6 * np.sin(p["angle"])
        return (np.hypot(u - dx, v - dy) < 0.38) | (np.hypot(u + dx, v + dy) < 0.38)
    if label == 9:
        return box & ~((np.abs(u) < 1 - width) & (np.abs(v) < 1 - width))
    raise ValueError(f"no shape family {label}")


def make_synthetic_images(
    num_classes: int, per_class: int, size: int, channels: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Generate `num_classes * per_class` images: uint8 (N, size, size, channels) and int64 labels (N,).

    Deterministic: the same arguments give identical bytes. Classes are shuffled with the same seed.
    """
    if not 1 <= num_classes <= len(SHAPE_NAMES):
        raise ValueError(f"num_classes must be in 1..{len(SHAPE_NAMES)}, got {num_classes}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    rng = np.random.default_rng(seed)
    n = num_classes * per_class
    labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))

    # Per-image parameters, all drawn up front so the stream of random numbers does not depend on the labels.
    cx, cy = rng.uniform(-0.3, 0.3, (2, n))
    scale = rng.uniform(0.35, 0.65, n)
    theta = rng.uniform(-np.pi / 12, np.pi / 12, n)
    params = {
        "bars": rng.integers(2, 4, n).astype(np.float64),
        "width": rng.uniform(0.15, 0.3, n),
        "sign": rng.choice([-1.0, 1.0], n),
        "angle": rng.uniform(0, np.pi, n),
    }
    background = rng.uniform(0.0, 1.0, (n, channels))
    direction = np.where(background.mean(axis=1, keepdims=True) < 0.5, 1.0, -1.0)
    contrast = rng.uniform(0.25, 0.6, (n, 1))
    foreground = np.clip(background + direction * contrast + rng.uniform(-0.15, 0.15, (n, channels)), 0, 1)
    gradient = rng.uniform(-0.15, 0.15, (2, n))
    noise_std = rng.uniform(0.02, 0.12, n)
    noise = rng.standard_normal((n, size, size, channels), dtype=np.float32)

    coords = (np.arange(size) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(coords, coords, indexing="ij")
    mask = np.zeros((n, size, size), dtype=bool)
    for label in range(num_classes):
        idx = np.flatnonzero(labels == label)
        col = (slice(None), None, None)
        dx, dy = x - cx[idx][col], y - cy[idx][col]
        cos, sin, s = np.cos(theta[idx])[col], np.sin(theta[idx])[col], scale[idx][col]
        u = (dx * cos + dy * sin) / s
        v = (-dx * sin + dy * cos) / s
        mask[idx] = _shape_masks(label, u, v, {k: a[idx][col] for k, a in params.items()})

    # Compose in float32, in place: noise * std + (foreground where mask, else gradient background).
    f32 = np.float32
    ramp = gradient[0][:, None, None] * x + gradient[1][:, None, None] * y
    bg = background.astype(f32)[:, None, None, :] + ramp.astype(f32)[..., None]
    images = noise
    images *= noise_std.astype(f32)[:, None, None, None]
    images += np.where(mask[..., None], foreground.astype(f32)[:, None, None, :], bg)
    images *= 255
    np.clip(images, 0, 255, out=images)
    images = np.rint(images, out=images).astype(np.uint8)
    return images, labels
