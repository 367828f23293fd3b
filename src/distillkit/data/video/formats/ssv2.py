"""Something-Something V2: a labels JSON ``{class name: label}`` and split JSONs; videos ``{id}.webm``."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    check_label,
    check_path_format,
    check_unique,
    class_index,
    json_entries,
    nonempty,
    parse_int,
    register_format,
)
from distillkit.errors import DataError

PATH_FORMAT = "{id}.webm"
"""Where SSv2 videos are, as distributed."""
PATH_FIELDS = {"id": "0"}
"""The fields an SSv2 path format may use (with sample values)."""


def ssv2_classes(labels_json: PathLike) -> list[str]:
    """Class names of SSv2 indexed by label, from ``{"Holding something": "0", ...}``."""
    kind, entries = json_entries(labels_json)
    if kind != "object":
        raise DataError(f"{labels_json}: expected a JSON object {{class name: label}}")
    by_label: dict[int, str] = {}
    seen: dict[str, str] = {}
    for line, name, value in entries:
        source = f"{labels_json}:{line}"
        check_unique(name, seen, "class name", source)
        label = parse_int(str(value), f"label of {name!r}", source)
        check_label(label, len(entries), source)
        if label in by_label:
            raise DataError(f"{source}: label {label} given to both {by_label[label]!r} and {name!r}")
        by_label[label] = name
    if not by_label:
        raise DataError(f"{labels_json}: no classes")
    return [by_label[i] for i in range(len(by_label))]


def parse_ssv2(
    labels_json: PathLike, split_json: PathLike, path_format: str = PATH_FORMAT
) -> list[VideoRecord]:
    """Parse an SSv2 train/validation split: the template without brackets is the class name, the path
    `path_format` (``{id}.webm`` as distributed; ``{id}.mp4`` for the synthetic set, ``{id}`` for rawframes).

    The test split (entries without ``template``) has no labels and is not supported.
    """
    check_path_format(path_format, PATH_FIELDS)
    index = {name: i for i, name in enumerate(ssv2_classes(labels_json))}
    kind, entries = json_entries(split_json)
    if kind != "list":
        raise DataError(f"{split_json}: expected a JSON list of {{'id': ..., 'template': ...}} entries")
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for line, _, entry in entries:
        source = f"{split_json}:{line}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise DataError(f"{source}: expected an object with 'id' and 'template', got {str(entry)[:60]!r}")
        video_id = str(entry["id"])
        if "template" not in entry:
            raise DataError(
                f"{source}: entry {video_id!r} has no 'template' (an SSv2 test split without labels is not supported)"
            )
        name = str(entry["template"]).replace("[", "").replace("]", "")
        label = class_index(name, index, f"{source}: id {video_id}")
        check_unique(video_id, seen, "id", source)
        records.append(VideoRecord(path_format.format(id=video_id), label, None, source))
    return nonempty(records, split_json)


@register_format
class SSv2(AnnotationFormat):
    """Something-Something V2: labels JSON and a train or validation split JSON."""

    name = "ssv2"
    inputs = ("labels JSON", "split JSON")
    options = ("path_format",)
    path_format = PATH_FORMAT

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_ssv2(*inputs, **options)

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str]:
        return ssv2_classes(inputs[0])

    def missing_hint(self, first: Path, path_format: str | None) -> str:
        """Names the extension of the file that is there instead (``1.mp4`` for ``1.webm``), if one is."""
        try:
            others = sorted(p.name for p in first.parent.glob(f"{glob.escape(first.stem)}.*") if p != first)
        except OSError:
            others = []
        current = path_format or self.path_format or ""
        if others and current.endswith(first.suffix) and first.suffix:
            guess = current[: -len(first.suffix)] + Path(others[0]).suffix
            return f"{first.parent} holds {others[0]}: pass --path-format '{guess}'"
        return super().missing_hint(first, path_format)
