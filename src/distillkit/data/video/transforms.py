"""Clip transforms: the same spatial operation on every frame of a clip.

Each transform takes a uint8 clip (T, H, W, C) as a numpy array or tensor, or a float clip (T, C, H, W) in
[0, 1] returned by another transform, and returns a float clip (T, C, H, W). Random transforms draw from the
`generator` passed at call time (a `torch.Generator` or a `numpy.random.Generator`; torch's global RNG when
None), so a clip is reproducible from its seed. `Compose` threads `(clip, label)` through them, because a
horizontal flip can change the label (see `RandomHorizontalFlip`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Clip = torch.Tensor | np.ndarray
Generator = torch.Generator | np.random.Generator | None


def clip_to_tensor(clip: Clip) -> torch.Tensor:
    """uint8 (T, H, W, C) array/tensor → float (T, C, H, W) in [0, 1]; a float tensor is returned as is."""
    x = torch.from_numpy(np.ascontiguousarray(clip)) if isinstance(clip, np.ndarray) else clip
    if x.ndim != 4:
        raise ValueError(f"expected a 4-D clip, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.permute(0, 3, 1, 2).contiguous().float().div_(255)  # contiguous: 2× faster resizes
    if not x.is_floating_point():
        raise ValueError(f"expected a uint8 (T,H,W,C) or float (T,C,H,W) clip, got {x.dtype}")
    return x


def _uniform(generator: Generator, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(generator, np.random.Generator):
        u = float(generator.random())
    else:
        u = float(torch.rand((), generator=generator))
    return low + (high - low) * u


def _randint(generator: Generator, n: int) -> int:
    """Uniform integer in [0, n)."""
    return min(int(_uniform(generator) * n), n - 1)


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _resized_crop(
    x: torch.Tensor, top: int, left: int, h: int, w: int, size: tuple[int, int]
) -> torch.Tensor:
    x = x[..., top : top + h, left : left + w]
    if (h, w) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


class Resize:
    """Resize so that the shorter side is `short_side`, keeping the aspect ratio (bilinear, antialiased)."""

    def __init__(self, short_side: int) -> None:
        self.short_side = short_side

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        h, w = x.shape[-2:]
        scale = self.short_side / min(h, w)
        size = (self.short_side, round(w * scale)) if h <= w else (round(h * scale), self.short_side)
        return _resized_crop(x, 0, 0, h, w, size)


class CenterCrop:
    """Crop the centre `size` (int or (h, w)); a smaller clip is zero-padded first."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size(size)

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        th, tw = self.size
        h, w = x.shape[-2:]
        if h < th or w < tw:
            ph, pw = max(th - h, 0), max(tw - w, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            h, w = x.shape[-2:]
        top, left = (h - th) // 2, (w - tw) // 2
        return x[..., top : top + th, left : left + tw]


class RandomResizedCrop:
    """torchvision's RandomResizedCrop with one crop for the whole clip: random area in `scale`, aspect ratio in
    `ratio` (log-uniform), resized to `size`."""

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size = _size(size)
        self.scale = scale
        self.ratio = ratio

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        h, w = x.shape[-2:]
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * _uniform(generator, *self.scale)
            aspect = math.exp(_uniform(generator, *log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = _randint(generator, h - ch + 1), _randint(generator, w - cw + 1)
                return _resized_crop(x, top, left, ch, cw, self.size)
        # Fallback: central crop at the nearest allowed aspect ratio.
        aspect = w / h
        if aspect < self.ratio[0]:
            cw, ch = w, round(w / self.ratio[0])
        elif aspect > self.ratio[1]:
            ch, cw = h, round(h * self.ratio[1])
        else:
            cw, ch = w, h
        return _resized_crop(x, (h - ch) // 2, (w - cw) // 2, ch, cw, self.size)


class MultiScaleCrop:
    """TSN's multi-scale crop: one crop for the whole clip, resized to `size`.

    Crop height and width are each ``scale · min(H, W)`` for scales from `scales`, at most `max_distort` steps
    apart in the list; the position is one of 13 fixed ones (corners, centre, edge midpoints, quarter points)
    when `fix_crop`, else uniform.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        fix_crop: bool = True,
    ) -> None:
        self.size = _size(size)
        self.scales = tuple(scales)
        self.max_distort = max_distort
        self.fix_crop = fix_crop

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        h, w = x.shape[-2:]
        base = min(h, w)
        sides = [int(base * s) for s in self.scales]
        pairs = [
            (ch, cw)
            for i, ch in enumerate(sides)
            for j, cw in enumerate(sides)
            if abs(i - j) <= self.max_distort and ch > 0 and cw > 0
        ]
        ch, cw = pairs[_randint(generator, len(pairs))]
        if self.fix_crop:
            hs, ws = (h - ch) // 4, (w - cw) // 4
            offsets = [
                (0, 0), (0, 4 * ws), (4 * hs, 0), (4 * hs, 4 * ws), (2 * hs, 2 * ws),
                (2 * hs, 0), (2 * hs, 4 * ws), (4 * hs, 2 * ws), (0, 2 * ws),
                (hs, ws), (hs, 3 * ws), (3 * hs, ws), (3 * hs, 3 * ws),
            ]  # fmt: skip
            top, left = offsets[_randint(generator, len(offsets))]
        else:
            top, left = _randint(generator, h - ch + 1), _randint(generator, w - cw + 1)
        return _resized_crop(x, top, left, ch, cw, self.size)


class RandomPadCrop:
    """The CIFAR crop: zero-pad `padding` pixels on each side, then crop `size` at a random position (one for the
    whole clip). Padding is black when it comes before `Normalize`."""

    def __init__(self, size: int | Sequence[int], padding: int = 4) -> None:
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.size = _size(size)
        self.padding = padding

    def draw(self, h: int, w: int, generator: Generator = None) -> tuple[int, int]:
        """(top, left) of the crop in the padded (h + 2·padding, w + 2·padding) clip; top is drawn first."""
        th, tw = self.size
        rows, cols = h + 2 * self.padding - th + 1, w + 2 * self.padding - tw + 1
        if rows < 1 or cols < 1:
            raise ValueError(f"cannot crop {self.size} from a {h}×{w} clip padded by {self.padding}")
        return _randint(generator, rows), _randint(generator, cols)

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        h, w = x.shape[-2:]
        top, left = self.draw(h, w, generator)
        p = self.padding
        if p:
            x = F.pad(x, (p, p, p, p))
        return x[..., top : top + self.size[0], left : left + self.size[1]]


class RandomHorizontalFlip:
    """Flip the whole clip left-right with probability `p`, mapping its label through `flip_label_map`.

    Flipping changes the class of direction-dependent actions: in Something-Something V2, "Pushing something
    from left to right" becomes "Pushing something from right to left". Pass a map swapping such pairs (see
    `left_right_label_map`); labels not in the map are kept. Classes whose mirror image is no class should not
    be flipped at all: leave flipping off for such data sets.
    """

    takes_label = True

    def __init__(self, p: float = 0.5, flip_label_map: dict[int, int] | None = None) -> None:
        self.p = p
        self.flip_label_map = dict(flip_label_map or {})

    def __call__(self, clip: Clip, label: int, generator: Generator = None) -> tuple[torch.Tensor, int]:
        x = clip_to_tensor(clip)
        if _uniform(generator) < self.p:
            return x.flip(-1), self.flip_label_map.get(label, label)
        return x, label


def left_right_label_map(class_names: Sequence[str]) -> dict[int, int]:
    """Label map pairing class names that differ only by swapping the words "left" and "right".

    For SSv2 it pairs, e.g., "Pushing something from left to right" ↔ "Pushing something from right to left"
    and "Turning the camera left while filming something" ↔ "... right ...".
    """

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        other = "right" if word.lower() == "left" else "left"
        return other.capitalize() if word[0].isupper() else other

    index = {name: i for i, name in enumerate(class_names)}
    mapping = {}
    for i, name in enumerate(class_names):
        mirrored = re.sub(r"\b(left|right)\b", swap, name, flags=re.IGNORECASE)
        if mirrored != name and mirrored in index:
            mapping[i] = index[mirrored]
    return mapping


class Normalize:
    """Subtract the per-channel `mean` and divide by `std` (values in [0, 1] units)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, clip: Clip, generator: Generator = None) -> torch.Tensor:
        x = clip_to_tensor(clip)
        return (x - self.mean) / self.std


class Compose:
    """Apply transforms in order to ``(clip, label)``; returns a float clip (T, C, H, W) and the label."""

    takes_label = True

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, clip: Clip, label: int, generator: Generator = None) -> tuple[torch.Tensor, int]:
        x = clip_to_tensor(clip)
        for t in self.transforms:
            if getattr(t, "takes_label", False):
                x, label = t(x, label, generator)
            else:
                x = t(x, generator)
        return x, label

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({', '.join(t.__class__.__name__ for t in self.transforms)})"
