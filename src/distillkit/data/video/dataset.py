"""`VideoDataset`: annotated videos → TSN clips (float T×C×H×W) and labels."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from distillkit.data.video.annotations import VideoRecord
from distillkit.data.video.decode import open_video
from distillkit.data.video.sampling import segment_indices
from distillkit.data.video.transforms import Compose, clip_to_tensor
from distillkit.errors import DataError

try:
    import fcntl
except ImportError:  # not POSIX: appends are not locked (entries may repeat; `read_skip_log` dedupes)
    fcntl = None  # type: ignore[assignment]


class VideoDataset(Dataset):
    """Video classification set returning ``(clip, label)``, the clip a float tensor (T, C, H, W).

    Each item samples `num_segments` frames with `segment_indices` (``T = clips · num_segments``), decodes them
    with `open_video` and applies `transform` (a `Compose`, or any clip transform) with a numpy generator
    seeded by ``(seed, epoch, index)``: items are reproducible and independent of worker processes; call
    `set_epoch` to draw new training samples each epoch.

    A video that cannot be read raises `DataError` prefixed with the record's ``file:line`` when `on_error` is
    ``"fail"``. With ``"skip"`` it is replaced by the next readable record, appended once to `skipped` as
    ``(source, reason)``, reported with a warning and, when `skip_log` is set, appended to that file as a JSON
    line (once per video, whichever worker meets it first: `append_skip_log`); with DataLoader workers each
    worker keeps its own `skipped` list, so jobs count skips from the log file (`read_skip_log`).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        root: str | Path | None,
        num_segments: int,
        train: bool,
        transform: Callable | None = None,
        on_error: Literal["fail", "skip"] = "fail",
        seed: int = 0,
        *,
        clips: int = 1,
        short: Literal["loop", "error"] = "loop",
        template: str = "img_{:05d}.jpg",
        start_index: int = 1,
    ) -> None:
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        if not records:
            raise DataError("video dataset: no records")
        self.records = list(records)
        self.root = Path(root) if root is not None else None
        self.num_segments = num_segments
        self.train = train
        if transform is not None and not getattr(transform, "takes_label", False):
            transform = Compose([transform])
        self.transform = transform
        self.on_error = on_error
        self.seed = seed
        self.clips = clips
        self.short = short
        self.template = template
        self.start_index = start_index
        self.epoch = 0
        self.skipped: list[tuple[str, str]] = []
        self.skip_log: Path | None = None
        self._bad: set[int] = set()

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws of every item (training sampling and random transforms)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.records)
        for step in range(n):
            i = (index + step) % n
            if i in self._bad:
                continue
            record = self.records[i]
            try:
                return self._load(i)
            except DataError as exc:
                reason = str(exc)
                if self.on_error == "fail":
                    if record.source and not reason.startswith(record.source):
                        reason = f"{record.source}: {reason}"
                    raise DataError(reason) from exc
                self._bad.add(i)
                self.skipped.append((record.source, reason))
                if self.skip_log is not None:
                    append_skip_log(self.skip_log, [{"source": record.source, "reason": reason}])
                warnings.warn(
                    f"skipped unreadable video {record.source}: {reason}", RuntimeWarning, stacklevel=2
                )
        raise DataError(f"video dataset: none of the {n} videos could be read (first: {self.skipped[0][1]})")

    def raw_clip(self, index: int) -> np.ndarray:
        """The uint8 frames (T, H, W, 3) of the test-time clip of video `index` (segment centres), untransformed."""
        record = self.records[index]
        reader = open_video(record, self.root, template=self.template, start_index=self.start_index)
        indices = segment_indices(
            reader.num_frames, self.num_segments, train=False, short=self.short, source=record.source
        )
        return np.asarray(reader.read(indices))

    def _load(self, i: int) -> tuple[torch.Tensor, int]:
        record = self.records[i]
        reader = open_video(record, self.root, template=self.template, start_index=self.start_index)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        indices = segment_indices(
            reader.num_frames,
            self.num_segments,
            self.train,
            rng,
            self.clips,
            short=self.short,
            source=record.source or record.path,
        )
        frames = reader.read(indices.ravel())
        if self.transform is None:
            return clip_to_tensor(frames), record.label
        return self.transform(frames, record.label, rng)


def append_skip_log(path: Path, entries: list[dict[str, str]]) -> None:
    """Append the entries whose ``source`` the log does not hold yet, one JSON line each. DataLoader workers (each
    with its own `skipped`) meet the same bad video: the file is locked while it is read and appended to, so that
    each video is listed once."""
    with open(path, "a+", encoding="utf-8") as log:
        if fcntl is not None:
            fcntl.flock(log, fcntl.LOCK_EX)  # released when the file closes
        log.seek(0)
        known = {json.loads(line)["source"] for line in log.read().splitlines() if line.strip()}
        log.seek(0, 2)
        for entry in entries:
            if entry["source"] not in known:
                known.add(entry["source"])
                log.write(json.dumps(entry) + "\n")


def read_skip_log(path: Path) -> list[dict[str, str]]:
    """Distinct videos skipped, as written to a `skip_log` (by any process), in first-skip order."""
    if not Path(path).is_file():
        return []
    seen: dict[str, dict[str, str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            seen.setdefault(entry["source"], entry)
    return list(seen.values())
