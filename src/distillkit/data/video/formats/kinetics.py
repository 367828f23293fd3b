"""Kinetics CSVs ``label,youtube_id,time_start,time_end[,split]``; videos ``{label}/{clip_id}.mp4`` with
``clip_id = {youtube_id}_{time_start:06d}_{time_end:06d}``, the layout of the ActivityNet/mmaction2 download
scripts (one folder per class); pass `path_format` for another layout.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    check_class_list,
    check_path_format,
    check_unique,
    class_index,
    nonempty,
    parse_int,
    read_text,
    register_format,
)
from distillkit.errors import DataError

_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
PATH_FORMAT = "{label}/{clip_id}.mp4"
"""Where Kinetics clips are after the ActivityNet/mmaction2 download scripts."""
PATH_FIELDS = {
    "label": "a b",
    "label_": "a_b",
    "youtube_id": "x",
    "clip_id": "x_000001_000002",
    "split": "train",
}
"""The fields a Kinetics path format may use (with sample values)."""


def _csv_rows(reader: csv.DictReader, path: PathLike) -> Iterator[dict[str, Any]]:
    """The reader's rows, with a `DataError` naming the file and line for malformed CSV."""
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.reader.line_num}: invalid CSV ({exc})") from None
        yield row


def _kinetics_rows(path: PathLike) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.reader.line_num}: invalid CSV header ({exc})") from None
    missing = [c for c in _KINETICS_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: Kinetics CSV header must have {','.join(_KINETICS_COLUMNS)}[,split], got {','.join(header)!r}"
        )
    for row in _csv_rows(reader, path):
        source = f"{path}:{reader.line_num}"
        if None in row or any(row[c] is None for c in _KINETICS_COLUMNS):
            raise DataError(f"{source}: expected {len(header)} comma-separated fields")
        yield source, {k: (v or "").strip() for k, v in row.items()}


def kinetics_classes(csv_path: PathLike) -> list[str]:
    """Class names of a Kinetics CSV, sorted by name."""
    names = set()
    for source, row in _kinetics_rows(csv_path):
        if not row["label"]:
            raise DataError(f"{source}: empty label")
        names.add(row["label"])
    if not names:
        raise DataError(f"{csv_path}: no entries")
    return sorted(names)


def parse_kinetics_csv(
    csv_path: PathLike, classes: Sequence[str] | None = None, path_format: str = PATH_FORMAT
) -> list[VideoRecord]:
    """Parse a Kinetics CSV ``label,youtube_id,time_start,time_end[,split]``.

    Classes are the sorted names in this file unless `classes` is given (pass the training classes when parsing
    a validation split). `path_format` may use ``{label}``, ``{label_}`` (spaces as underscores),
    ``{youtube_id}``, ``{clip_id}`` and ``{split}``.
    """
    check_path_format(path_format, PATH_FIELDS)
    if classes is not None:
        check_class_list(classes, csv_path)
    index = {name: i for i, name in enumerate(classes if classes is not None else kinetics_classes(csv_path))}
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, row in _kinetics_rows(csv_path):
        start = parse_int(row["time_start"], "time_start", source)
        end = parse_int(row["time_end"], "time_end", source)
        if not row["youtube_id"]:
            raise DataError(f"{source}: empty youtube_id")
        label = class_index(row["label"], index, source)
        clip_id = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        check_unique(clip_id, seen, "clip", source)
        fields = {
            "label": row["label"],
            "label_": row["label"].replace(" ", "_"),
            "youtube_id": row["youtube_id"],
            "clip_id": clip_id,
            "split": row.get("split") or "",
        }
        records.append(VideoRecord(path_format.format(**fields), label, None, source))
    return nonempty(records, csv_path)


@register_format
class Kinetics(AnnotationFormat):
    """A Kinetics CSV; its classes are the sorted names in it unless ``classes`` (the training ones) are given."""

    name = "kinetics"
    inputs = ("CSV",)
    options = ("classes", "path_format")
    path_format = PATH_FORMAT

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_kinetics_csv(*inputs, **options)

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str]:
        return kinetics_classes(inputs[0])
