"""List files ``path label``: the path is everything before the last whitespace, so it may contain spaces."""

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


def parse_list_file(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``path label`` list (split on the last whitespace); labels are checked against `num_classes`."""
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in entry_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise DataError(f"{source}: expected 'path label', got {line!r}")
        label = check_label(parse_int(parts[1], "label", source), num_classes, source)
        check_unique(parts[0], seen, "path", source)
        records.append(VideoRecord(parts[0], label, None, source))
    return nonempty(records, path)


@register_format
class ListFile(AnnotationFormat):
    """``path label`` lines: the format `data.name: list` reads and `convert` writes."""

    name = "list"
    inputs = ("list file",)
    list_source = True

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_list_file(*inputs, **options)
