"""UCF101: ``classInd.txt`` and the split lists; videos at the split files' paths
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``)."""

from __future__ import annotations

from typing import Any

from distillkit.data.video.annotations import (
    AnnotationFormat,
    PathLike,
    VideoRecord,
    check_unique,
    class_index,
    entry_lines,
    nonempty,
    parse_int,
    register_format,
)
from distillkit.errors import DataError


def ucf101_classes(class_ind: PathLike) -> list[str]:
    """Class names from UCF101 ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based) in index order."""
    by_index: dict[int, str] = {}
    seen: dict[str, str] = {}
    last = ""
    for source, line in entry_lines(class_ind):
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{source}: expected 'index ClassName', got {line!r}")
        index = parse_int(parts[0], "class index", source)
        if index < 1:
            raise DataError(f"{source}: class index must be >= 1, got {index}")
        if index in by_index:
            raise DataError(f"{source}: duplicate class index {index}")
        check_unique(parts[1], seen, "class name", source)
        by_index[index] = parts[1]
        last = source
    if not by_index:
        raise DataError(f"{class_ind}: no entries")
    gaps = sorted(set(range(1, len(by_index) + 1)) - by_index.keys())
    if gaps:
        raise DataError(f"{last}: class indices must be 1..{len(by_index)}, index {gaps[0]} is missing")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def parse_ucf101(class_ind: PathLike, split_file: PathLike) -> list[VideoRecord]:
    """Parse a UCF101 train list (``Class/v_x.avi 1``, 1-based) or test list (``Class/v_x.avi``: class from folder)."""
    classes = ucf101_classes(class_ind)
    index = {name: i for i, name in enumerate(classes)}
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in entry_lines(split_file):
        parts = line.split()
        if len(parts) > 2:
            raise DataError(f"{source}: expected 'Class/video.avi [label]', got {line!r}")
        path = parts[0]
        folder = path.split("/")[0] if "/" in path else None
        if len(parts) == 2:
            number = parse_int(parts[1], "label", source)
            if not 1 <= number <= len(classes):
                raise DataError(f"{source}: label {number} out of range (1..{len(classes)} in {class_ind})")
            label = number - 1
            if folder is not None and folder != classes[label]:
                raise DataError(
                    f"{source}: label {number} is {classes[label]!r} but the folder is {folder!r}"
                )
        elif folder is None:
            raise DataError(f"{source}: no label and no class folder in {path!r}")
        else:
            label = class_index(folder, index, source)
        check_unique(path, seen, "video", source)
        records.append(VideoRecord(path, label, None, source))
    return nonempty(records, split_file)


@register_format
class UCF101(AnnotationFormat):
    """UCF101: ``classInd.txt`` and a train or test split list."""

    name = "ucf101"
    inputs = ("classInd.txt", "split list")

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        return parse_ucf101(*inputs, **options)

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str]:
        return ucf101_classes(inputs[0])
