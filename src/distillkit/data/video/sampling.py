"""TSN segment sampling: one frame from each of `num_segments` equal segments of a video."""

from __future__ import annotations

from typing import Literal

import numpy as np

from distillkit.errors import DataError


def segment_indices(
    num_frames: int,
    num_segments: int,
    train: bool,
    rng: np.random.Generator | None = None,
    clips: int = 1,
    *,
    short: Literal["loop", "error"] = "loop",
    source: str = "video",
) -> np.ndarray:
    """Frame indices of a TSN clip.

    The video is cut into `num_segments` equal segments, segment k covering frames
    ``[floor(k·L), floor((k+1)·L))`` with ``L = num_frames / num_segments``. Training takes a uniformly random
    frame inside each segment (from `rng`; a fresh generator when None); testing takes each segment's centre
    ``floor(k·L + L/2)``. With ``clips > 1`` testing returns `clips` evenly shifted views (offset
    ``L·(c + 0.5)/clips`` inside each segment) and training `clips` independent draws, shape
    (clips, num_segments); with one clip the shape is (num_segments,).

    A video shorter than `num_segments` frames loops (``k mod num_frames``) when `short` is ``"loop"`` and raises
    `DataError` naming `source` when it is ``"error"``.
    """
    if num_segments < 1 or clips < 1:
        raise ValueError(f"num_segments and clips must be >= 1, got {num_segments} and {clips}")
    if short not in ("loop", "error"):
        raise ValueError(f"short must be 'loop' or 'error', got {short!r}")
    if num_frames < 1:
        raise DataError(f"{source}: video has no frames")
    k = np.arange(num_segments)
    if num_frames < num_segments:
        if short == "error":
            raise DataError(
                f"{source}: video has {num_frames} frames, fewer than num_segments={num_segments}"
            )
        out = np.tile(k % num_frames, (clips, 1))
    elif train:
        rng = rng if rng is not None else np.random.default_rng()
        starts = k * num_frames // num_segments
        ends = (k + 1) * num_frames // num_segments
        out = rng.integers(starts, ends, size=(clips, num_segments))
    else:
        # floor(k·L + L·(c + 0.5)/clips) in integers: no rounding error at segment borders.
        c = np.arange(clips)[:, None]
        out = (2 * clips * k * num_frames + (2 * c + 1) * num_frames) // (2 * clips * num_segments)
    out = np.minimum(out.astype(np.int64), num_frames - 1)
    return out[0] if clips == 1 else out
