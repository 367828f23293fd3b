"""Rawframe lists ``dir num_frames label``: split from the right, so the folder may contain spaces."""

from __future__ import annotations

from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    check_label,
    check_unique,
    entry_lines,
    nonempty,
    parse_int,
    register_format,
)
from distillkit.errors import DataError


def parse_rawframe_list(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``dir num_frames label`` rawframe list (split from the right)."""
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in entry_lines(path):
        parts = line.rsplit(None, 2)
        if len(parts) != 3:
            raise DataError(f"{source}: expected 'dir num_frames label', got {line!r}")
        num_frames = parse_int(parts[1], "frame count", source)
        if num_frames < 1:
            raise DataError(f"{source}: frame count must be >= 1, got {num_frames}")
        label = check_label(parse_int(parts[2], "label", source), num_classes, source)
        check_unique(parts[0], seen, "folder", source)
        records.append(VideoRecord(parts[0], label, num_frames, source))
    return nonempty(records, path)


@register_format
class Rawframes(AnnotationFormat):
    """``dir num_frames label`` lines of rawframe folders: the format `data.name: rawframes` reads."""

    name = "rawframes"
    inputs = ("rawframe list",)
    folders = True
    list_source = True

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_rawframe_list(*inputs, **options)
