"""Rawframe lists ``dir num_frames label``: split from the right, so the folder may contain spaces."""

from __future__ import annotations

from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    read_list,
    register_format,
)


def parse_rawframe_list(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``dir num_frames label`` rawframe list (split from the right)."""
    return read_list(path, num_classes, with_frames=True)


@register_format
class Rawframes(AnnotationFormat):
    """``dir num_frames label`` lines of rawframe folders: the format `data.name: rawframes` reads."""

    name = "rawframes"
    inputs = ("rawframe list",)
    folders = True
    list_source = True

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_rawframe_list(*inputs, **options)
