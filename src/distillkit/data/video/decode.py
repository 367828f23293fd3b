"""Frame readers: video files through PyAV, rawframe folders of JPEGs through PIL, behind one interface.

A reader knows its `num_frames` and returns the frames at any indices as one uint8 array (T, H, W, 3), RGB, in
the order asked (indices may repeat). Anything wrong with the file on disk raises `DataError` naming it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from distillkit.data.video.annotations import VideoRecord
from distillkit.errors import DataError


@runtime_checkable
class VideoReader(Protocol):
    """Random access to the frames of one video."""

    @property
    def num_frames(self) -> int:
        """Number of frames (at least 1)."""
        ...

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as a uint8 array (len(indices), H, W, 3)."""
        ...


def _check_indices(indices: Sequence[int], num_frames: int, name: object) -> list[int]:
    idx = [int(i) for i in np.asarray(indices).ravel()]
    if not idx:
        raise ValueError("read() needs at least one frame index")
    bad = [i for i in idx if not 0 <= i < num_frames]
    if bad:
        raise IndexError(f"{name}: frame index {bad[0]} outside 0..{num_frames - 1}")
    return idx


def _pyav():  # imported on first use: parsing annotations does not need PyAV
    import av

    return av


@functools.cache
def one_thread_conversion() -> dict[str, int]:
    """Options of `VideoFrame.to_ndarray` that keep the colour conversion on the calling thread (PyAV 17 and
    later thread it; earlier versions do not). Code that converts frames itself, as the loader benchmark does, uses
    this rather than writing the option again."""
    return {"threads": 1} if int(_pyav().__version__.split(".")[0]) >= 17 else {}


def _av_message(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(f"PyAV {exc.__class__.__name__}: {text}".split())


class PyAVReader:
    """Frames of a video file decoded with PyAV.

    The frame count is the container's when it declares one, else the number of video packets found by
    demuxing the whole file (no decoding; WebM/MKV declare none). `read` decodes sequentially from the start in
    one pass, without seeking, up to the largest index asked. A file whose frames run out before that index
    (truncated or corrupt) raises `DataError`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._container = None  # kept open from probing for the first `read` (saves one open per clip)
        container = self._open()
        stream = container.streams.video[0]
        count = int(stream.frames or 0)
        if count > 0:
            self._container = container
        else:
            with container:
                try:
                    count = sum(1 for p in container.demux(stream) if p.size > 0 and not p.is_discard)
                except _pyav().FFmpegError as exc:
                    raise DataError(f"{self.path}: cannot read video packets ({_av_message(exc)})") from None
        if count <= 0:
            self.close()
            raise DataError(f"{self.path}: video has no frames")
        self._num_frames = count

    def close(self) -> None:
        """Release the file kept open since probing (a later `read` reopens it)."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __del__(self) -> None:
        self.close()

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _open(self):  # -> av.container.InputContainer
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file not found")
        try:
            container = _pyav().open(str(self.path))
        except (_pyav().FFmpegError, OSError) as exc:
            raise DataError(f"{self.path}: cannot open video ({_av_message(exc)})") from None
        if not container.streams.video:
            container.close()
            raise DataError(f"{self.path}: no video stream")
        return container

    def read(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(indices, self._num_frames, self.path)
        wanted, last = set(idx), max(idx)
        frames: dict[int, np.ndarray] = {}
        decoded = 0
        container, self._container = self._container or self._open(), None
        stream = container.streams.video[0]
        # FFmpeg decodes and converts on this thread: its thread pools would outlive a read in this process, and a
        # DataLoader worker forked from it could wait forever on a pool whose threads the fork did not copy (the
        # test suite hung so); on clips this small they also cost more than they save
        stream.thread_count = 1
        with container:
            try:
                for frame in container.decode(stream):
                    if decoded in wanted:
                        frames[decoded] = frame.to_ndarray(format="rgb24", **one_thread_conversion())
                    decoded += 1
                    if decoded > last:
                        break
            except _pyav().FFmpegError as exc:
                raise DataError(
                    f"{self.path}: decoding failed after {decoded} of {self._num_frames} frames ({_av_message(exc)})"
                ) from None
        if decoded <= last:
            raise DataError(
                f"{self.path}: truncated or corrupt: frame {last} requested but only {decoded} of "
                f"{self._num_frames} frames could be decoded"
            )
        shapes = {a.shape for a in frames.values()}
        if len(shapes) > 1:
            raise DataError(f"{self.path}: frame size changes within the video ({sorted(shapes)})")
        return np.stack([frames[i] for i in idx])


class RawFramesReader:
    """Frames of a rawframe folder: one image per frame named ``template.format(start_index + i)``.

    Without `num_frames` the count is the number of consecutive files from `start_index` on.
    """

    def __init__(
        self,
        directory: str | Path,
        template: str = "img_{:05d}.jpg",
        start_index: int = 1,
        num_frames: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.template = template
        self.start_index = start_index
        if not self.directory.is_dir():
            raise DataError(f"{self.directory}: rawframe folder not found")
        if num_frames is None:
            names = set(os.listdir(self.directory))
            num_frames = 0
            while template.format(start_index + num_frames) in names:
                num_frames += 1
        if num_frames <= 0:
            raise DataError(f"{self.directory}: no frames (looked for {template.format(start_index)})")
        self._num_frames = num_frames

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def read(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        idx = _check_indices(indices, self._num_frames, self.directory)
        frames: dict[int, np.ndarray] = {}
        for i in sorted(set(idx)):
            path = self.directory / self.template.format(self.start_index + i)
            try:
                with Image.open(path) as image:
                    frames[i] = np.asarray(image.convert("RGB"))
            except FileNotFoundError:
                raise DataError(f"{path}: frame {i} of {self._num_frames} missing") from None
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{path}: cannot read frame ({exc.__class__.__name__}: {exc})") from None
        shapes = {a.shape for a in frames.values()}
        if len(shapes) > 1:
            raise DataError(f"{self.directory}: frames differ in size ({sorted(shapes)})")
        return np.stack([frames[i] for i in idx])


def probe_video_file(path: str | Path) -> str | None:
    """Why the video file at `path` cannot be used, read from its container header alone (no frame decoded, no
    packet demuxed): it cannot be opened, holds no video stream, or declares 0 frames. None when it opens."""
    try:
        container = _pyav().open(str(path))
    except (_pyav().FFmpegError, OSError) as exc:
        return f"cannot open video ({_av_message(exc)})"
    with container:
        if not container.streams.video:
            return "no video stream"
        stream = container.streams.video[0]
        if stream.frames == 0 and stream.duration is not None and stream.duration <= 0:
            return "video has no frames"
    return None


def open_video(
    record: VideoRecord,
    root: str | Path | None = None,
    *,
    template: str = "img_{:05d}.jpg",
    start_index: int = 1,
) -> VideoReader:
    """A `RawFramesReader` when ``root / record.path`` is a folder, else a `PyAVReader`."""
    path = Path(root) / record.path if root is not None else Path(record.path)
    if path.is_dir():
        return RawFramesReader(path, template, start_index, record.num_frames)
    if not path.exists():
        raise DataError(f"{path}: video not found")
    return PyAVReader(path)
