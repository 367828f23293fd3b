"""HMDB51: a folder of split files ``<class>_test_split<k>.txt``; videos ``{class}/{video}``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    check_class_list,
    check_unique,
    entry_lines,
    nonempty,
    parse_int,
    register_format,
)
from distillkit.errors import DataError


def _hmdb51_files(split_dir: PathLike, split: int) -> dict[str, Path]:
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found")
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in split_dir.iterdir() if p.name.endswith(suffix)}
    if not files:
        raise DataError(f"{split_dir}: no HMDB51 split files '*{suffix}'")
    if "" in files:  # its videos would get absolute paths '/video.avi'
        raise DataError(f"{files['']}: no class name before '{suffix}'")
    return dict(sorted(files.items()))


def hmdb51_classes(split_dir: PathLike, split: int = 1) -> list[str]:
    """Class names of HMDB51, sorted, from the ``<class>_test_split<k>.txt`` file names."""
    return list(_hmdb51_files(split_dir, split))


def parse_hmdb51(
    split_dir: PathLike,
    split: int = 1,
    subset: Literal["train", "test"] = "train",
    classes: Sequence[str] | None = None,
) -> list[VideoRecord]:
    """Parse HMDB51 split files ``<class>_test_split<k>.txt`` (``video.avi 1``: 1 train, 2 test, 0 unused)."""
    if subset not in ("train", "test"):
        raise DataError(f"HMDB51 subset must be 'train' or 'test', got {subset!r}")
    files = _hmdb51_files(split_dir, split)
    names = list(classes) if classes is not None else list(files)
    check_class_list(names, split_dir)
    missing = [c for c in names if c not in files]
    if missing:
        raise DataError(
            f"{split_dir}: no split file for class {missing[0]!r} ({missing[0]}_test_split{split}.txt)"
        )
    wanted = 1 if subset == "train" else 2
    records: list[VideoRecord] = []
    for label, name in enumerate(names):
        seen: dict[str, str] = {}
        for source, line in entry_lines(files[name]):
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{source}: expected 'video.avi 0|1|2', got {line!r}")
            flag = parse_int(parts[1], "split id", source)
            if flag not in (0, 1, 2):
                raise DataError(f"{source}: split id must be 0 (unused), 1 (train) or 2 (test), got {flag}")
            check_unique(parts[0], seen, "video", source)
            if flag == wanted:
                records.append(VideoRecord(f"{name}/{parts[0]}", label, None, source))
    return nonempty(records, split_dir)


@register_format
class HMDB51(AnnotationFormat):
    """HMDB51: the folder of split files; ``split`` (1-3) and ``subset`` (train or test) choose the videos."""

    name = "hmdb51"
    inputs = ("split folder",)
    options = ("split", "subset")

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_hmdb51(*inputs, **options)

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str]:
        return hmdb51_classes(inputs[0], options.get("split", 1))
