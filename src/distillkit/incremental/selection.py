"""Exemplar selection: which videos of a class to keep (coarse) and which of their frames (fine).

Coarse selection orders a class's videos by priority (`herding`, `random_order`); `allocate` says how many of
them each class may keep under a frame budget. Fine selection is a `FrameSelector`: given per-frame and clip
features it returns the sorted time positions to keep. The memory only ever receives those positions, so a new
frame selector needs no change to it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from distillkit.errors import ConfigError


def greedy_mean_match(features: torch.Tensor, target: torch.Tensor, m: int) -> list[int]:
    """`m` row indices of `features` (n, D), picked one at a time so that the mean of the picked rows comes as
    close as possible (Euclidean) to `target` (D,); ties go to the lowest index; `m` is clipped to n."""
    if m < 0:
        raise ValueError(f"greedy selection: m must be >= 0, got {m}")
    x = torch.as_tensor(features).detach().to(device="cpu", dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"greedy selection: expected features of shape (n, D), got {tuple(x.shape)}")
    mu = torch.as_tensor(target).detach().to(device="cpu", dtype=torch.float64)
    available = torch.ones(len(x), dtype=torch.bool)
    total = torch.zeros_like(mu)
    picked: list[int] = []
    for k in range(1, min(m, len(x)) + 1):
        dist = ((total + x) / k - mu).square().sum(1)
        dist[~available] = torch.inf
        i = int(dist.argmin())
        picked.append(i)
        available[i] = False
        total += x[i]
    return picked


def herding(features: torch.Tensor, m: int) -> list[int]:
    """iCaRL herding (Rebuffi et al., 2017): `m` row indices of `features` (n, D) in pick order.

    Rows are L2-normalised and mu is their mean. Each pick adds the unpicked row that brings the mean of the
    picked rows closest to mu (ties: the lowest index), so the first pick is the row closest to mu. `m` is
    clipped to n.
    """
    x = torch.as_tensor(features).detach().to(device="cpu", dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"herding: expected features of shape (n, D), got {tuple(x.shape)}")
    x = F.normalize(x, dim=1)
    return greedy_mean_match(x, x.mean(0), m)


def random_order(n: int, m: int, generator: np.random.Generator) -> list[int]:
    """`m` distinct indices of ``range(n)`` in random order (`m` clipped to n)."""
    if n < 0 or m < 0:
        raise ValueError(f"random_order: n and m must be >= 0, got n={n}, m={m}")
    return [int(i) for i in generator.permutation(n)[: min(m, n)]]


def allocate(budget_frames: int, classes: list[int], frames_per_exemplar: int) -> dict[int, int]:
    """Exemplars each class may keep: an equal share of `budget_frames`, floored, so the total fits the budget.

    Raises `ConfigError` when the budget cannot hold one exemplar of `frames_per_exemplar` frames per class.
    """
    if frames_per_exemplar < 1:
        raise ConfigError(f"memory: frames per exemplar must be >= 1, got {frames_per_exemplar}")
    if budget_frames < 0:
        raise ConfigError(f"memory: budget must be >= 0 frames, got {budget_frames}")
    if not classes:
        return {}
    per_class = budget_frames // (len(classes) * frames_per_exemplar)
    if per_class < 1:
        need = len(classes) * frames_per_exemplar
        raise ConfigError(
            f"memory budget of {budget_frames} frames cannot hold one exemplar per class for {len(classes)} "
            f"classes at {frames_per_exemplar} frames per exemplar (needs at least {need} frames)"
        )
    return {int(c): per_class for c in classes}


class FrameSelector(Protocol):
    """Fine selection: which time positions of one clip to keep."""

    def __call__(self, frame_features: torch.Tensor, clip_feature: torch.Tensor, k: int) -> list[int]:
        """Sorted time positions (at most `k`) from per-frame features (T, D) and the clip feature (D,)."""
        ...


def all_frames(frame_features: torch.Tensor, clip_feature: torch.Tensor, k: int) -> list[int]:
    """Keep every frame (no fine selection): ``0 .. T-1``; `k` is ignored."""
    return list(range(len(frame_features)))


def key_frames(frame_features: torch.Tensor, clip_feature: torch.Tensor, k: int) -> list[int]:
    """Dual-granularity fine selection: `k` time positions whose mean frame feature comes closest to the clip
    feature (greedy, as herding but inside one video), returned sorted."""
    if k < 1:
        raise ValueError(f"key_frames: k must be >= 1, got {k}")
    return sorted(greedy_mean_match(frame_features, clip_feature, k))


def uniform_key_frames(num_frames: int, k: int) -> list[int]:
    """`k` evenly spaced time positions of `num_frames`, from the first (``floor(i · T / k)``): replayed by
    nearest-position filling (ties to the earlier frame), each kept frame stands for the next T / k positions:
    the clip at an even, lower frame rate, where greedy positions can leave long holds and jumps."""
    if not 1 <= k <= num_frames:
        raise ValueError(f"uniform key-frames: k must be in 1..{num_frames}, got {k}")
    return [i * num_frames // k for i in range(k)]
