"""How a clip of a few stored frames is replayed as a clip of `num_segments` frames, and down-sampled copies of
whole clips made the same way (temporal consistency, after vCLIMB; docs/design.md, "Replay of key-frames").

`hold`: time position t shows the stored frame nearest to t (ties: the earlier one), so the replayed object holds
still and then jumps. `interpolate`: t between two stored positions a < t < b shows the blend
``(1 - w) · frame_a + w · frame_b`` with ``w = (t - a) / (b - a)``; before the first and after the last stored
position the end frame is held. Both give a stored frame back unchanged at its own position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

Replay = Literal["hold", "interpolate"]


def fill_positions(stored: Sequence[int], num_segments: int) -> list[int]:
    """For each time position t of a clip, the index in `stored` (sorted positions) of the nearest one.

    Ties go to the earlier stored position, so stored positions map to themselves and gaps are filled in time
    order.
    """
    if len(stored) == 0:
        raise ValueError("fill_positions: no stored positions")
    gap = np.abs(np.arange(num_segments)[:, None] - np.asarray(stored)[None, :])
    return [int(i) for i in gap.argmin(axis=1)]


def blend_weights(stored: Sequence[int], num_segments: int, replay: Replay) -> np.ndarray:
    """(num_segments, len(stored)) weights: clip frame t = sum over k of weights[t, k] · stored frame k. Each row
    sums to 1; `hold` rows are one-hot (`fill_positions`)."""
    k = len(stored)
    weights = np.zeros((num_segments, k))
    if replay == "hold":
        weights[np.arange(num_segments), fill_positions(stored, num_segments)] = 1.0
        return weights
    if k == 0:
        raise ValueError("blend_weights: no stored positions")
    pos = np.asarray(stored, dtype=float)
    for t in range(num_segments):
        if t <= pos[0]:
            weights[t, 0] = 1.0
        elif t >= pos[-1]:
            weights[t, k - 1] = 1.0
        else:
            j = int(np.searchsorted(pos, t, side="right"))  # pos[j - 1] <= t < pos[j]
            w = (t - pos[j - 1]) / (pos[j] - pos[j - 1])
            weights[t, j - 1], weights[t, j] = 1.0 - w, w
    return weights


def replay_frames(frames: np.ndarray, stored: Sequence[int], num_segments: int, replay: Replay) -> np.ndarray:
    """The `num_segments` frames replayed from `frames` (K, H, W, C) uint8 stored at positions `stored`."""
    if replay == "hold":
        return frames[fill_positions(stored, num_segments)]
    weights = blend_weights(stored, num_segments, replay)
    mixed = np.tensordot(weights, frames.astype(np.float64), axes=(1, 0))
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def even_positions(num_segments: int, k: int, phase: int = 0) -> list[int]:
    """`k` evenly spaced positions of `num_segments` starting at `phase` (< the spacing): those a memory of `k`
    evenly spaced key-frames keeps, shifted."""
    k = min(k, num_segments)
    step = num_segments / k
    return [min(num_segments - 1, int(phase + i * step)) for i in range(k)]


def downsample_clips(clips: torch.Tensor, k: int, replay: Replay, generator: torch.Generator | None = None):
    """Copies of `clips` (N, T, C, H, W) keeping `k` evenly spaced frames (a random phase per clip) and replayed
    to T frames as the memory replays key-frames: the clips a memory of `k` frames per video would give back."""
    n, t = clips.shape[:2]
    if k >= t:
        return clips
    spacing = t // k
    phases = torch.randint(0, max(1, spacing), (n,), generator=generator).tolist()
    out = []
    for i, phase in enumerate(phases):
        stored = even_positions(t, k, phase)
        weights = torch.as_tensor(blend_weights(stored, t, replay), dtype=clips.dtype, device=clips.device)
        out.append(torch.einsum("tk,k...->t...", weights, clips[i, stored]))
    return torch.stack(out)


def faithful(
    whole: torch.Tensor, replayed: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, tolerance: float
) -> torch.Tensor:
    """(N,) bool: which replays stand for their videos: the replay's `logits` (N, K) pick the video's label and
    its clip feature `replayed` (N, D) is within `tolerance` cosine distance of the whole clip's `whole` (N, D)."""
    distance = 1 - torch.nn.functional.cosine_similarity(replayed, whole, dim=1)
    return (logits.argmax(1) == labels) & (distance <= tolerance)
