"""Exemplar memory on disk: key-frames of old-class videos as JPEG folders, listed in a JSON manifest.

Layout under the memory folder ``root``::

    manifest.json                    {"version": 1, "budget_frames", "num_segments", "classes": {...}}
    <label>/<video_id>/img_00001.jpg the kept frames of one exemplar, in time order

``classes`` maps each label (as a string) to its exemplars in priority order, each
``{"video_id", "label", "frames": [kept time positions, sorted, in 0..num_segments-1], "dir": "<label>/<video_id>"}``;
the manifest also records ``per_class_frames``, ``jpeg_quality`` and ``jpeg_subsampling`` (the chroma resolution).
It is plain JSON (never pickle), replaced atomically on every change, and checked on `ExemplarMemory.load`, first
against its model (`_Manifest`: strict types, no unknown keys, bounds) and then on disk: a path that leaves the folder or any malformed entry raises
`CheckpointError` naming the manifest and the key, and so does an exemplar folder or frame file that is a symlink
(even one pointing inside the folder). The budget counts stored frames.

A memory may store its frames smaller than the videos' (``frame_scale`` s < 1, a fraction of each side): each
exemplar then records the frame size it is shown at (``size``), and `MemoryDataset` scales its frames back up.
Such a frame holds at most s² of a full frame's pixels, so a budget of B full frames holds ⌊B / s²⌋ of them
(`stored_frames`); a memory at full size writes the same manifest as before the option existed. An exemplar of
such a memory may still be kept at full size (no ``size``): its n frames then count ⌈n / s²⌉ stored frames
against the budget (`full_size_cost`), never fewer than the pixels they hold.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from torch.utils.data import Dataset

from distillkit.config import Section
from distillkit.data.video.annotations import VideoRecord
from distillkit.data.video.decode import RawFramesReader
from distillkit.data.video.transforms import Compose, clip_to_tensor
from distillkit.errors import CheckpointError, ConfigError, DistillkitError, read_text_file
from distillkit.incremental.replay import Replay, fill_positions, replay_frames


def _video_id_problem(video_id: object) -> str | None:
    """Why `video_id` cannot name a folder, or None when it can."""
    if not isinstance(video_id, str) or not video_id:
        return "must be a non-empty string"
    if any(c in video_id for c in "/\\\0"):
        return "must not contain '/', '\\' or NUL"
    if video_id.startswith("."):
        return "must not start with '.'"
    if len(video_id.encode()) > 200:
        return "must be at most 200 bytes"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------------ manifest
MANIFEST_VERSION = 1


def _entry_error(key: str, problem: str) -> PydanticCustomError:
    """A manifest error about `key` (dotted, as `classes.3[0].frames`), raised where pydantic's location would
    not name the entry (checks across fields)."""
    return PydanticCustomError("manifest", "{key}: {problem}", {"key": key, "problem": problem})


def _check_video_id(video_id: str) -> str:
    problem = _video_id_problem(video_id)
    if problem:
        raise PydanticCustomError(
            "video_id", "{name} {problem}", {"name": repr(video_id), "problem": problem}
        )
    return video_id


def _check_frames(frames: tuple[int, ...]) -> tuple[int, ...]:
    if not frames:
        raise PydanticCustomError("frames", "must not be empty")
    if list(frames) != sorted(set(frames)):
        raise PydanticCustomError(
            "frames", "time positions must be strictly increasing, got {frames}", {"frames": list(frames)}
        )
    return frames


def _check_relative(directory: str) -> str:
    """Refuse a folder that is absolute or has '..' (where it resolves to is checked on disk, by `load`)."""
    if Path(directory).is_absolute() or directory.startswith(("/", "\\")) or ".." in Path(directory).parts:
        raise PydanticCustomError(
            "dir",
            "{directory} escapes the memory folder (absolute or '..' path)",
            {"directory": repr(directory)},
        )
    return directory


def _check_label_key(key: str) -> str:
    if not (key.isdigit() and key.isascii() and str(int(key)) == key):
        raise PydanticCustomError("class_key", "class keys must be labels (integers >= 0 written in decimal)")
    return key


_Position = Annotated[int, Strict(), Field(ge=0)]
_Side = Annotated[int, Strict(), Field(ge=1)]
"""A time position of the clip (its upper bound, ``num_segments - 1``, is the manifest's)."""


JpegSubsampling = Literal["4:4:4", "4:2:0"]
JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:0": 2}
"""PIL's `subsampling` argument for each chroma subsampling."""


class Exemplar(Section):
    """One stored video of one class, as listed in the manifest."""

    model_config = ConfigDict(strict=True, frozen=True)

    video_id: Annotated[str, AfterValidator(_check_video_id)]
    """Name of the video: a non-empty file name of at most 200 bytes, not hidden."""
    label: int = Field(ge=0)
    """Class of the video."""
    frames: Annotated[tuple[_Position, ...], Field(strict=False), AfterValidator(_check_frames)]
    """Kept time positions, sorted, in ``0 .. num_segments - 1``; frame k of the folder is position frames[k].
    (A JSON list; not strict so that the list becomes the tuple, while each position stays a strict int.)"""
    dir: Annotated[str, AfterValidator(_check_relative)]
    """Folder of the frames relative to the memory root, ``<label>/<video_id>``."""
    size: Annotated[tuple[_Side, _Side], Field(strict=False)] | None = None
    """(height, width) the frames are shown at, the video's, when the memory stores them smaller (null: stored
    at that size, full size)."""


class _Manifest(Section):
    """``manifest.json``: the memory's settings and its exemplars, class by class in the order they were added.
    Written in the order of these fields (a manifest of the same memory is the same bytes)."""

    model_config = ConfigDict(strict=True, frozen=True)

    version: int
    """Format version (only `MANIFEST_VERSION`)."""
    budget_frames: int = Field(ge=0)
    """Most frames the memory may hold."""
    num_segments: int = Field(ge=1)
    """Time positions of a clip."""
    per_class_frames: int | None = Field(None, ge=1)
    """Most frames of one class (none when null or absent)."""
    jpeg_quality: int = Field(90, ge=1, le=100)
    """Quality of the stored JPEG frames (90 when absent)."""
    jpeg_subsampling: JpegSubsampling = "4:2:0"
    """Chroma subsampling of the stored JPEG frames (4:2:0, what memories were written with before the option,
    when absent)."""
    frame_scale: float = Field(1.0, gt=0, le=1)
    """Side of a stored frame as a fraction of the video's (1 when absent)."""
    classes: dict[Annotated[str, AfterValidator(_check_label_key)], list[Exemplar]]
    """Each label (as a string) and its exemplars in priority order; a label with no exemplars is ignored."""

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != MANIFEST_VERSION:
            raise PydanticCustomError(
                "version",
                "unsupported manifest version {version} (expected {expected})",
                {"version": version, "expected": MANIFEST_VERSION},
            )
        return version

    @model_validator(mode="after")
    def _entries_fit_their_class(self) -> _Manifest:
        """Each exemplar is listed under its own label, in its own folder, once, with positions of the clip."""
        for key, entries in self.classes.items():
            seen: set[str] = set()
            for i, exemplar in enumerate(entries):
                where = f"classes.{key}[{i}]"
                if exemplar.label != int(key):
                    raise _entry_error(
                        f"{where}.label", f"is {exemplar.label} but the exemplar is listed under class {key}"
                    )
                for k, t in enumerate(exemplar.frames):
                    if t >= self.num_segments:
                        raise _entry_error(
                            f"{where}.frames[{k}]",
                            f"must be an integer in 0..{self.num_segments - 1}, got {t}",
                        )
                if exemplar.dir != f"{key}/{exemplar.video_id}":
                    raise _entry_error(
                        f"{where}.dir",
                        f"is {exemplar.dir!r}, expected '{key}/{exemplar.video_id}' (<label>/<video_id>)",
                    )
                if exemplar.video_id in seen:
                    raise _entry_error(f"{where}.video_id", f"duplicate video id {exemplar.video_id!r}")
                seen.add(exemplar.video_id)
        return self


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
}


def _first_error(exc: ValidationError) -> str:
    """The first error of `exc` in one line, ``<dotted key>: <problem>``, and how many more there are."""
    errors = exc.errors()
    error = errors[0]
    ctx = error.get("ctx", {})
    kind, value = error["type"], error["input"]
    if kind == "manifest":
        key, problem = ctx["key"], ctx["problem"]
    else:
        key = _dotted(error["loc"])
        if kind == "missing":
            problem = "missing"
        elif kind in _EXPECTED:
            got = "null" if value is None else f"{type(value).__name__} {value!r:.60}"
            problem = f"must be {_EXPECTED[kind]}, got {got}"
        elif kind == "greater_than_equal":
            problem = f"must be >= {ctx['ge']}, got {value!r:.60}"
        elif kind == "less_than_equal":
            problem = f"must be <= {ctx['le']}, got {value!r:.60}"
        elif kind == "extra_forbidden":
            valid = _Manifest.model_fields if len(error["loc"]) == 1 else Exemplar.model_fields
            problem = f"unknown key; valid keys here: {', '.join(valid)}"
        else:
            problem = error["msg"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{key}: {problem}{more}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``('classes', '3', 0, 'frames', 1)`` as ``classes.3[0].frames[1]`` (a dict key's own error ends in '[key]',
    left out)."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part != "[key]":
            key += f".{part}" if key else part
    return key


class ExemplarMemory:
    """Exemplars of old classes stored on disk under `root`, within a budget of `budget_frames` frames.

    `per_class_frames` optionally caps the frames of any one class. Each exemplar keeps some of the
    `num_segments` time positions of a clip (all of them, or key-frames chosen by a `FrameSelector`). Create a
    new memory with the constructor (the folder must not hold one yet) and reopen it with `load`.
    """

    MANIFEST = "manifest.json"
    TEMPLATE = "img_{:05d}.jpg"
    VERSION = MANIFEST_VERSION

    def __init__(
        self,
        root: str | Path,
        budget_frames: int,
        num_segments: int,
        per_class_frames: int | None = None,
        jpeg_quality: int = 90,
        frame_scale: float = 1.0,
        jpeg_subsampling: JpegSubsampling = "4:4:4",
    ) -> None:
        try:
            settings = _Manifest(
                version=self.VERSION,
                budget_frames=budget_frames,
                num_segments=num_segments,
                per_class_frames=per_class_frames,
                jpeg_quality=jpeg_quality,
                jpeg_subsampling=jpeg_subsampling,
                frame_scale=frame_scale,
                classes={},
            )
        except ValidationError as exc:
            raise ConfigError(f"memory {_first_error(exc)}") from None
        self._open(root, settings)
        if self.manifest_path.exists():
            raise CheckpointError(
                f"{self.manifest_path}: this folder already holds an exemplar memory; reopen it with "
                "ExemplarMemory.load or use an empty folder"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_manifest()

    def _open(self, root: str | Path, manifest: _Manifest) -> None:
        self.root = Path(root)
        self.budget_frames = manifest.budget_frames
        self.num_segments = manifest.num_segments
        self.per_class_frames = manifest.per_class_frames
        self.jpeg_quality = manifest.jpeg_quality
        self.jpeg_subsampling = manifest.jpeg_subsampling
        self.frame_scale = manifest.frame_scale
        self._classes: dict[int, list[Exemplar]] = {
            int(key): list(entries) for key, entries in manifest.classes.items() if entries
        }

    # ------------------------------------------------------------------------------------------ load / save
    @classmethod
    def load(cls, root: str | Path) -> ExemplarMemory:
        """Reopen the memory saved under `root`, checking every entry of its manifest and its frame files."""
        path = Path(root) / cls.MANIFEST
        data = _read_json(path)
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object at the top level")
        try:
            manifest = _Manifest.model_validate(data)
        except ValidationError as exc:
            raise CheckpointError(f"{path}: {_first_error(exc)}") from None
        memory = cls.__new__(cls)
        memory._open(root, manifest)
        for key, entries in manifest.classes.items():
            for i, exemplar in enumerate(entries):
                memory._check_files(f"classes.{key}[{i}]", exemplar)
        try:
            memory.check_budget()
        except DistillkitError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        return memory

    def _check_files(self, key: str, exemplar: Exemplar) -> None:
        """The exemplar's folder resolves inside the root, it and its frame files exist, and none is a symlink
        (one could point anywhere: the memory writes real folders and files, hard-linked at most)."""

        def fail(field: str, problem: str) -> CheckpointError:
            return CheckpointError(f"{self.manifest_path}: {key}.{field}: {problem}")

        root, folder = self.root.resolve(), self.root / exemplar.dir
        target = folder.resolve()
        if target == root or not target.is_relative_to(root):
            raise fail("dir", f"{exemplar.dir!r} resolves to {target}, outside the memory folder {root}")
        for link in (folder.parent, folder):
            if link.is_symlink():
                raise fail("dir", f"{link} is a symlink; exemplar folders must be real folders in the memory")
        if not folder.is_dir():
            raise fail("dir", f"folder {folder} not found")
        for k in range(1, len(exemplar.frames) + 1):
            frame = folder / self.TEMPLATE.format(k)
            if frame.is_symlink():
                raise fail(
                    "frames", f"frame file {frame} is a symlink; frames must be real files in the memory"
                )
            if not frame.is_file():
                raise fail("frames", f"frame file {frame} not found")

    @property
    def manifest_path(self) -> Path:
        return self.root / self.MANIFEST

    def _write_manifest(self) -> None:
        manifest = _Manifest(
            version=self.VERSION,
            budget_frames=self.budget_frames,
            num_segments=self.num_segments,
            per_class_frames=self.per_class_frames,
            jpeg_quality=self.jpeg_quality,
            jpeg_subsampling=self.jpeg_subsampling,
            frame_scale=self.frame_scale,
            classes={str(c): entries for c, entries in self._classes.items()},
        )
        data = manifest.model_dump()
        if self.jpeg_subsampling == "4:2:0":  # the manifest of before the option
            del data["jpeg_subsampling"]
        if self.frame_scale == 1:  # full size: the manifest of before the option
            del data["frame_scale"]
            for entries in data["classes"].values():
                for entry in entries:
                    del entry["size"]
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.manifest_path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def fork(self, root: str | Path) -> ExemplarMemory:
        """A copy of this memory in the empty folder `root`, frames hard-linked (copied across file systems).

        The stream runner keeps one memory folder per finished step, so a run killed while a step changes its
        memory resumes from the previous step's folder intact.
        """
        other = ExemplarMemory(
            root,
            self.budget_frames,
            self.num_segments,
            self.per_class_frames,
            self.jpeg_quality,
            self.frame_scale,
            self.jpeg_subsampling,
        )
        for label, entries in self._classes.items():
            for exemplar in entries:
                source, target = self.root / exemplar.dir, other.root / exemplar.dir
                target.mkdir(parents=True)
                for name in os.listdir(source):
                    try:
                        os.link(source / name, target / name)
                    except OSError:
                        shutil.copy2(source / name, target / name)
            other._classes[label] = list(entries)
        other._write_manifest()
        return other

    # ------------------------------------------------------------------------------------------ add / reduce
    def add_class(
        self,
        label: int,
        exemplars: Sequence[tuple[str, torch.Tensor | np.ndarray, Sequence[int]]],
        full_size: Collection[str] = (),
    ) -> None:
        """Store the exemplars of a new class in priority order: ``(video_id, clip uint8 (T, H, W, 3), positions)``.

        Only the frames at `positions` (time positions of the clip, ``T = num_segments``) are written; in a memory
        of smaller frames, the videos named in `full_size` keep their frames at full size (at their `cost`). Raises
        `DistillkitError` when the class would put the memory over its budget: `reduce` the old classes first.
        """
        if not _is_int(label) or label < 0:
            raise ValueError(f"memory: label must be an integer >= 0, got {label!r}")
        if label in self._classes:
            raise ValueError(
                f"memory: class {label} is already stored; reduce() it instead of adding it again"
            )
        unknown = set(full_size) - {video_id for video_id, _, _ in exemplars}
        if unknown:
            raise ValueError(f"memory: class {label}: full_size names videos not given: {sorted(unknown)}")
        prepared: list[tuple[Exemplar, np.ndarray]] = []
        seen: set[str] = set()
        for video_id, clip, positions in exemplars:
            problem = _video_id_problem(video_id)
            if problem:
                raise ValueError(f"memory: class {label}: video id {video_id!r} {problem}")
            if video_id in seen:
                raise ValueError(f"memory: class {label}: duplicate video id {video_id!r}")
            seen.add(video_id)
            kept = self._positions(positions, f"class {label}, video {video_id!r}")
            frames = self._clip(clip, f"class {label}, video {video_id!r}")
            size = frames.shape[1:3] if self.frame_scale < 1 and video_id not in full_size else None
            exemplar = Exemplar(
                video_id=video_id, label=label, frames=kept, dir=f"{label}/{video_id}", size=size
            )
            prepared.append((exemplar, frames[list(kept)]))
        if not prepared:
            return
        self._check_room(label, sum(self.cost(e) for e, _ in prepared), len(prepared))
        written: list[Exemplar] = []
        try:
            for exemplar, frames in prepared:
                self._write_frames(exemplar, frames)
                written.append(exemplar)
            self._classes[label] = written
            self._write_manifest()
        except BaseException:
            self._classes.pop(label, None)
            for exemplar in written:
                shutil.rmtree(self.root / exemplar.dir, ignore_errors=True)
            raise

    def _positions(self, positions: Sequence[int], what: str) -> tuple[int, ...]:
        values = [int(t) for t in np.asarray(positions).ravel()]
        if not values:
            raise ValueError(f"memory: {what}: no time positions to keep")
        bad = [t for t in values if not 0 <= t < self.num_segments]
        if bad:
            raise ValueError(f"memory: {what}: time position {bad[0]} outside 0..{self.num_segments - 1}")
        if len(set(values)) != len(values):
            raise ValueError(f"memory: {what}: repeated time positions {values}")
        return tuple(sorted(values))

    def _clip(self, clip: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
        frames = clip.detach().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"memory: {what}: expected a uint8 clip (T, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        if len(frames) != self.num_segments:
            raise ValueError(
                f"memory: {what}: clip has {len(frames)} frames, expected num_segments={self.num_segments}"
            )
        return frames

    def _check_room(self, label: int, frames: int, videos: int) -> None:
        total = self.frames + frames
        if total > self.budget_frames:
            raise DistillkitError(
                f"memory: adding class {label} ({videos} videos, {frames} frames) would hold {total} frames, "
                f"{total - self.budget_frames} over the budget of {self.budget_frames}; reduce() old classes first"
            )
        if self.per_class_frames is not None and frames > self.per_class_frames:
            raise DistillkitError(
                f"memory: class {label} has {frames} frames, {frames - self.per_class_frames} over the "
                f"per-class limit of {self.per_class_frames}"
            )

    def _write_frames(self, exemplar: Exemplar, frames: np.ndarray) -> None:
        """Write JPEGs into a hidden folder, then move it into place (a crash leaves no half exemplar)."""
        from PIL import Image

        final = self.root / exemplar.dir
        tmp = final.parent / f".{exemplar.video_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for k, frame in enumerate(frames, 1):
            image = Image.fromarray(frame)
            if exemplar.size is not None:
                image = shrunk_image(image, self.frame_scale)
            image.save(
                tmp / self.TEMPLATE.format(k),
                quality=self.jpeg_quality,
                subsampling=JPEG_SUBSAMPLING[self.jpeg_subsampling],
            )
        if final.exists():  # left by an interrupted run; not in the manifest
            shutil.rmtree(final)
        os.replace(tmp, final)

    def reduce(self, max_frames_per_class: dict[int, int] | int) -> list[Exemplar]:
        """Drop exemplars from the end of each class's priority list until it holds at most its frame limit.

        An int limits every class; a dict limits the classes it names. A class left empty is removed. Returns
        the dropped exemplars, whose folders are deleted after the manifest no longer lists them.
        """
        if isinstance(max_frames_per_class, dict):
            limits = dict(max_frames_per_class)
        else:
            limits = dict.fromkeys(self._classes, max_frames_per_class)
        bad = {c: v for c, v in limits.items() if not _is_int(v) or v < 0}
        if bad:
            raise ValueError(f"memory: frame limits must be integers >= 0, got {bad}")
        kept: dict[int, list[Exemplar]] = {}
        dropped: list[Exemplar] = []
        for label, entries in self._classes.items():
            keep = list(entries)
            total = sum(self.cost(e) for e in keep)
            while keep and label in limits and total > limits[label]:
                total -= self.cost(keep[-1])
                dropped.append(keep.pop())
            if keep:
                kept[label] = keep
        if not dropped:
            return []
        self._classes = kept
        self._write_manifest()
        for exemplar in dropped:
            shutil.rmtree(self.root / exemplar.dir, ignore_errors=True)
            with suppress(OSError):  # only when empty
                (self.root / str(exemplar.label)).rmdir()
        return dropped

    # ------------------------------------------------------------------------------------------ queries
    @property
    def classes(self) -> list[int]:
        """Stored classes, in the order they were added."""
        return list(self._classes)

    def exemplars(self, label: int) -> list[Exemplar]:
        """Exemplars of class `label` in priority order."""
        if label not in self._classes:
            raise KeyError(f"memory holds no exemplars of class {label} (classes: {self.classes})")
        return list(self._classes[label])

    def cost(self, exemplar: Exemplar) -> int:
        """What `exemplar` counts against the budget: its frames, or ⌈frames / s²⌉ for one kept at full size in a
        memory of frames at scale s < 1 (`full_size_cost`)."""
        if self.frame_scale == 1 or exemplar.size is not None:
            return len(exemplar.frames)
        return full_size_cost(len(exemplar.frames), self.frame_scale)

    def frames_per_class(self) -> dict[int, int]:
        """What each class counts against the budget (`cost` of its exemplars)."""
        return {c: sum(self.cost(e) for e in entries) for c, entries in self._classes.items()}

    @property
    def frames(self) -> int:
        """What the budget counts: stored frames, a full-size exemplar of a memory of smaller frames at its
        `cost`."""
        return sum(self.frames_per_class().values())

    @property
    def full_frames(self) -> float:
        """The pixels held, in frames of the videos' size: a smaller frame counts s² (at most what it holds)."""
        small = float(Fraction(str(self.frame_scale)) ** 2)
        return sum(
            len(e.frames) * (small if e.size is not None else 1.0)
            for entries in self._classes.values()
            for e in entries
        )

    @property
    def full_size_videos(self) -> int:
        """Exemplars kept at the videos' size (all of them in a memory at full size)."""
        return sum(e.size is None for entries in self._classes.values() for e in entries)

    @property
    def videos(self) -> int:
        return sum(len(entries) for entries in self._classes.values())

    def bytes_on_disk(self) -> int:
        """Size of every file under the root (frames and manifest), in bytes."""
        total = 0
        for folder, _, files in os.walk(self.root):
            total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
        return total

    def check_budget(self) -> None:
        """Raise `DistillkitError` naming the excess when the memory holds more frames than allowed."""
        if self.frames > self.budget_frames:
            raise DistillkitError(
                f"exemplar memory {self.root} holds {self.frames} frames, {self.frames - self.budget_frames} "
                f"over its budget of {self.budget_frames}"
            )
        if self.per_class_frames is not None:
            for label, n in self.frames_per_class().items():
                if n > self.per_class_frames:
                    raise DistillkitError(
                        f"exemplar memory {self.root}: class {label} holds {n} frames, "
                        f"{n - self.per_class_frames} over the per-class limit of {self.per_class_frames}"
                    )

    def records(self) -> list[VideoRecord]:
        """One rawframe `VideoRecord` per exemplar (absolute folder, label, number of stored frames)."""
        root = self.root.absolute()
        return [
            VideoRecord(str(root / e.dir), e.label, len(e.frames), f"{self.manifest_path}:classes.{c}[{i}]")
            for c, entries in self._classes.items()
            for i, e in enumerate(entries)
        ]

    def __repr__(self) -> str:
        return (
            f"ExemplarMemory({str(self.root)!r}, classes={len(self._classes)}, videos={self.videos}, "
            f"frames={self.frames}/{self.budget_frames})"
        )


def _read_json(path: Path) -> Any:
    text = read_text_file(
        path,
        CheckpointError,
        encoding="utf-8",
        reasons={FileNotFoundError: "no exemplar memory manifest here"},
    )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


class MemoryDataset(Dataset):
    """The exemplars of a memory as ``(clip float (T, C, H, W), label)`` with ``T = num_segments``.

    A clip of fewer key-frames is replayed to T frames by `replay` (`incremental.replay`: `hold` shows at each
    position the nearest stored frame, `interpolate` blends the two stored frames around it), so a whole stored
    clip reads back as stored (up to JPEG). `transform` follows `VideoDataset`: ``transform(frames uint8
    (T, H, W, 3), label, rng) -> (clip, label)`` with a numpy generator seeded by ``(seed, epoch, index)``. The
    exemplars are those stored when the dataset is built.
    """

    def __init__(
        self,
        memory: ExemplarMemory,
        transform: Callable | None = None,
        seed: int = 0,
        replay: Replay = "hold",
    ) -> None:
        self.root = memory.root
        self.num_segments = memory.num_segments
        self.items = [e for label in memory.classes for e in memory.exemplars(label)]
        if transform is not None and not getattr(transform, "takes_label", False):
            transform = Compose([transform])
        self.transform = transform
        self.seed = seed
        self.replay = replay
        self.epoch = 0

    @property
    def labels(self) -> list[int]:
        return [e.label for e in self.items]

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws of the transforms."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        exemplar = self.items[index]
        reader = RawFramesReader(
            self.root / exemplar.dir, ExemplarMemory.TEMPLATE, start_index=1, num_frames=len(exemplar.frames)
        )
        if self.replay == "hold" or len(exemplar.frames) == self.num_segments:
            frames = reader.read(fill_positions(exemplar.frames, self.num_segments))
        else:
            frames = replay_frames(
                reader.read(range(len(exemplar.frames))), exemplar.frames, self.num_segments, self.replay
            )
        if exemplar.size is not None:
            frames = resized(frames, exemplar.size)
        if self.transform is None:
            return clip_to_tensor(frames), exemplar.label
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.transform(frames, exemplar.label, rng)


def stored_frames(budget: int, frame_scale: float) -> int:
    """How many frames of side `frame_scale` (a fraction of the video's) fit a budget of `budget` full frames,
    counted by pixels: ⌊budget / frame_scale²⌋ (with the scale as written in decimal, exactly)."""
    return math.floor(Fraction(budget) / Fraction(str(frame_scale)) ** 2)


def full_size_cost(frames: int, frame_scale: float) -> int:
    """Stored frames of side `frame_scale` that `frames` full-size frames count as: ⌈frames / frame_scale²⌉, so
    that a memory keeping some exemplars at full size never holds more pixels than its budget."""
    return math.ceil(Fraction(frames) / Fraction(str(frame_scale)) ** 2)


def shrunk_image(image: Any, frame_scale: float) -> Any:
    """The PIL image down-sampled by area (box filter) to `scaled_size` of its size: what a memory of smaller
    frames stores."""
    from PIL import Image

    return image.resize(scaled_size((image.height, image.width), frame_scale)[::-1], Image.Resampling.BOX)


def at_stored_scale(frames: np.ndarray, frame_scale: float) -> np.ndarray:
    """uint8 frames (T, H, W, 3) as a memory of frames at `frame_scale` gives them back (up to JPEG): shrunk
    (`shrunk_image`) and resized back to (H, W) bilinearly."""
    from PIL import Image

    if frame_scale == 1:
        return frames
    small = np.stack([np.asarray(shrunk_image(Image.fromarray(f), frame_scale)) for f in frames])
    return resized(small, frames.shape[1:3])


def at_scale(clips: torch.Tensor, scale: float) -> torch.Tensor:
    """Float clips (..., C, H, W) at the resolution of frames stored at `scale`: down-sampled by area to
    `scaled_size` and back up bilinearly (the tensor counterpart of `at_stored_scale`, for clips as trained on)."""
    h, w = clips.shape[-2:]
    frames = clips.reshape(-1, *clips.shape[-3:])
    small = torch.nn.functional.interpolate(frames, size=scaled_size((h, w), scale), mode="area")
    back = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return back.view(clips.shape)


def scaled_size(size: tuple[int, int], frame_scale: float) -> tuple[int, int]:
    """(height, width) of a frame of `size` stored at `frame_scale`: each side rounded down (at least 1), so that
    it never holds more than frame_scale² of the pixels."""
    scale = Fraction(str(frame_scale))
    return max(1, math.floor(size[0] * scale)), max(1, math.floor(size[1] * scale))


def resized(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames (T, h, w, 3) resized bilinearly to `size` (height, width)."""
    from PIL import Image

    if frames.shape[1:3] == tuple(size):
        return frames
    width_height = (size[1], size[0])
    return np.stack(
        [np.asarray(Image.fromarray(f).resize(width_height, Image.Resampling.BILINEAR)) for f in frames]
    )
