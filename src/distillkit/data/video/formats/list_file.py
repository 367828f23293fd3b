"""List files ``path label``: the path is everything before the last whitespace, so it may contain spaces."""

from __future__ import annotations

from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    read_list,
    register_format,
)


def parse_list_file(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``path label`` list (split on the last whitespace); labels are checked against `num_classes`."""
    return read_list(path, num_classes)


@register_format
class ListFile(AnnotationFormat):
    """``path label`` lines: the format `data.name: list` reads and `convert` writes."""

    name = "list"
    inputs = ("list file",)
    list_source = True

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_list_file(*inputs, **options)
