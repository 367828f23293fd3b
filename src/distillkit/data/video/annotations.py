"""Video annotation parsers: list files, rawframe lists, SSv2 JSON, Kinetics CSV, UCF101 / HMDB51 splits.

Every parser returns a list of `VideoRecord` (label as a 0-based class index) and raises `DataError` naming the
file and line of the first bad entry. Class names, where a format has them, come from the matching
`*_classes` function so that train and test splits of one data set share one class order.

Layouts on disk (paths are relative to the data root):

- list file ``path label``: the path is everything before the last whitespace, so it may contain spaces;
- rawframe list ``dir num_frames label``: split from the right, so the folder may contain spaces;
- Something-Something V2: ``{id}.webm``;
- Kinetics: ``{label}/{clip_id}.mp4`` with ``clip_id = {youtube_id}_{time_start:06d}_{time_end:06d}``, the layout
  of the ActivityNet/mmaction2 download scripts (one folder per class); pass `path_format` for another layout;
- UCF101: the split files' paths (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``);
- HMDB51: ``{class}/{video}``.

In list files blank lines and lines starting with ``#`` are skipped (a ``#`` inside a path is kept).
"""

from __future__ import annotations

import csv
import difflib
import glob
import io
import json
import re
import string
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from distillkit.engine.progress import progress_bar
from distillkit.errors import ConfigError, DataError

PathLike = str | Path


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: a file or rawframe folder, its class index and where it was declared."""

    path: str
    """Video file or rawframe folder, relative to the data root (or absolute)."""
    label: int
    """0-based class index."""
    num_frames: int | None = None
    """Frame count when the annotation gives it (rawframe lists), else None."""
    source: str = ""
    """Where the record comes from, ``file:line``, for error messages."""


# --------------------------------------------------------------------------------------------------- helpers
def _read_text(path: PathLike) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an annotation file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc.strerror})") from None


def _lines(path: PathLike) -> Iterator[tuple[str, str]]:
    """(source ``file:line``, stripped text) of each line that is not blank or a ``#`` comment."""
    for number, raw in enumerate(_read_text(path).splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield f"{path}:{number}", line


_INT = re.compile(r"[+-]?\d+")


def _int(text: str, what: str, source: str) -> int:
    if not _INT.fullmatch(text):
        raise DataError(f"{source}: {what} must be an integer, got {text!r}")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise DataError(f"{source}: {what} is too large ({len(text)} digits)") from None


def _check_label(label: int, num_classes: int | None, source: str) -> int:
    if label < 0 or (num_classes is not None and label >= num_classes):
        valid = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise DataError(f"{source}: label {label} out of range ({valid})")
    return label


def _check_unique(key: str, seen: dict[str, str], what: str, source: str) -> None:
    if key in seen:
        raise DataError(f"{source}: duplicate {what} {key!r} (first at {seen[key]})")
    seen[key] = source


def _class_index(name: str, index: dict[str, int], source: str) -> int:
    if name not in index:
        close = difflib.get_close_matches(name, list(index), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{source}: unknown class name {name!r}{hint}")
    return index[name]


def _check_class_list(names: Sequence[str], path: PathLike) -> None:
    """A class list passed in by the caller names each class once (else a label would stand for two)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: the class list names {name!r} twice")
        seen.add(name)


def _nonempty(records: list[VideoRecord], path: PathLike) -> list[VideoRecord]:
    if not records:
        raise DataError(f"{path}: no entries")
    return records


def _json_entries(path: PathLike) -> tuple[str, list[tuple[int, Any, Any]]]:
    """Top-level entries of a JSON list or object as (line, key or None, value), and the container kind."""
    text = _read_text(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: invalid JSON (nested too deeply)") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise DataError(
            f"{path}: invalid JSON (a number has more than {sys.get_int_max_str_digits()} digits)"
        ) from None
    decoder = json.JSONDecoder()
    space = re.compile(r"\s*")
    i = space.match(text).end()
    kind = {"[": "list", "{": "object"}.get(text[i : i + 1])
    if kind is None:
        raise DataError(f"{path}: expected a JSON list or object at the top level")
    i += 1
    line, counted = 1, 0
    entries: list[tuple[int, Any, Any]] = []
    while True:
        i = space.match(text, i).end()
        if text[i] in "]}":
            return kind, entries
        line += text.count("\n", counted, i)
        counted = i
        key = None
        if kind == "object":
            key, i = decoder.raw_decode(text, i)
            i = space.match(text, i).end() + 1  # past ':'
            i = space.match(text, i).end()
        value, i = decoder.raw_decode(text, i)
        entries.append((line, key, value))
        i = space.match(text, i).end()
        if text[i] == ",":
            i += 1


def check_path_format(path_format: str, fields: dict[str, str]) -> None:
    """A `ConfigError` when `path_format` uses a field not in `fields` (name → sample value), or cannot format."""
    allowed = ", ".join(f"{{{name}}}" for name in fields)
    try:
        used = [f for _, f, _, _ in string.Formatter().parse(path_format) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"path format {path_format!r}: {exc}; allowed fields: {allowed}") from None
    for field in used:
        if field not in fields:
            raise ConfigError(
                f"path format {path_format!r}: unknown field {{{field}}}; allowed fields: {allowed}"
            )
    try:
        path_format.format(**fields)
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        raise ConfigError(f"path format {path_format!r}: {exc}; allowed fields: {allowed}") from None


def missing_files(
    records: Sequence[VideoRecord], root: PathLike | None, folders: bool = False
) -> list[VideoRecord]:
    """The records whose file (or folder, for rawframes: `folders`) is not there under `root` (None: the current
    folder), in order."""
    base = Path(root) if root is not None else None

    def there(record: VideoRecord) -> bool:
        path = base / record.path if base is not None else Path(record.path)
        try:
            return path.is_dir() if folders else path.exists()
        except (OSError, ValueError):  # a name the file system refuses (too long, NUL)
            return False

    return [r for r in records if not there(r)]


# ------------------------------------------------------------------------------------------ list formats
def parse_list_file(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``path label`` list (split on the last whitespace); labels are checked against `num_classes`."""
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in _lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise DataError(f"{source}: expected 'path label', got {line!r}")
        label = _check_label(_int(parts[1], "label", source), num_classes, source)
        _check_unique(parts[0], seen, "path", source)
        records.append(VideoRecord(parts[0], label, None, source))
    return _nonempty(records, path)


def parse_rawframe_list(path: PathLike, num_classes: int | None = None) -> list[VideoRecord]:
    """Parse a ``dir num_frames label`` rawframe list (split from the right)."""
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in _lines(path):
        parts = line.rsplit(None, 2)
        if len(parts) != 3:
            raise DataError(f"{source}: expected 'dir num_frames label', got {line!r}")
        num_frames = _int(parts[1], "frame count", source)
        if num_frames < 1:
            raise DataError(f"{source}: frame count must be >= 1, got {num_frames}")
        label = _check_label(_int(parts[2], "label", source), num_classes, source)
        _check_unique(parts[0], seen, "folder", source)
        records.append(VideoRecord(parts[0], label, num_frames, source))
    return _nonempty(records, path)


# --------------------------------------------------------------------------------------- Something-Something
def ssv2_classes(labels_json: PathLike) -> list[str]:
    """Class names of SSv2 indexed by label, from ``{"Holding something": "0", ...}``."""
    kind, entries = _json_entries(labels_json)
    if kind != "object":
        raise DataError(f"{labels_json}: expected a JSON object {{class name: label}}")
    by_label: dict[int, str] = {}
    seen: dict[str, str] = {}
    for line, name, value in entries:
        source = f"{labels_json}:{line}"
        _check_unique(name, seen, "class name", source)
        label = _int(str(value), f"label of {name!r}", source)
        _check_label(label, len(entries), source)
        if label in by_label:
            raise DataError(f"{source}: label {label} given to both {by_label[label]!r} and {name!r}")
        by_label[label] = name
    if not by_label:
        raise DataError(f"{labels_json}: no classes")
    return [by_label[i] for i in range(len(by_label))]


def parse_ssv2(
    labels_json: PathLike, split_json: PathLike, path_format: str = "{id}.webm"
) -> list[VideoRecord]:
    """Parse an SSv2 train/validation split: the template without brackets is the class name, the path
    `path_format` (``{id}.webm`` as distributed; ``{id}.mp4`` for the synthetic set, ``{id}`` for rawframes).

    The test split (entries without ``template``) has no labels and is not supported.
    """
    check_path_format(path_format, {"id": "0"})
    index = {name: i for i, name in enumerate(ssv2_classes(labels_json))}
    kind, entries = _json_entries(split_json)
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
        label = _class_index(name, index, f"{source}: id {video_id}")
        _check_unique(video_id, seen, "id", source)
        records.append(VideoRecord(path_format.format(id=video_id), label, None, source))
    return _nonempty(records, split_json)


# -------------------------------------------------------------------------------------------------- Kinetics
_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


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
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
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
    csv_path: PathLike, classes: Sequence[str] | None = None, path_format: str = "{label}/{clip_id}.mp4"
) -> list[VideoRecord]:
    """Parse a Kinetics CSV ``label,youtube_id,time_start,time_end[,split]``.

    Classes are the sorted names in this file unless `classes` is given (pass the training classes when parsing
    a validation split). `path_format` may use ``{label}``, ``{label_}`` (spaces as underscores),
    ``{youtube_id}``, ``{clip_id}`` and ``{split}``.
    """
    check_path_format(
        path_format,
        {"label": "a b", "label_": "a_b", "youtube_id": "x", "clip_id": "x_000001_000002", "split": "train"},
    )
    if classes is not None:
        _check_class_list(classes, csv_path)
    index = {name: i for i, name in enumerate(classes if classes is not None else kinetics_classes(csv_path))}
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, row in _kinetics_rows(csv_path):
        start = _int(row["time_start"], "time_start", source)
        end = _int(row["time_end"], "time_end", source)
        if not row["youtube_id"]:
            raise DataError(f"{source}: empty youtube_id")
        label = _class_index(row["label"], index, source)
        clip_id = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        _check_unique(clip_id, seen, "clip", source)
        fields = {
            "label": row["label"],
            "label_": row["label"].replace(" ", "_"),
            "youtube_id": row["youtube_id"],
            "clip_id": clip_id,
            "split": row.get("split") or "",
        }
        records.append(VideoRecord(path_format.format(**fields), label, None, source))
    return _nonempty(records, csv_path)


# ------------------------------------------------------------------------------------------- UCF101 / HMDB51
def ucf101_classes(class_ind: PathLike) -> list[str]:
    """Class names from UCF101 ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based) in index order."""
    by_index: dict[int, str] = {}
    seen: dict[str, str] = {}
    last = ""
    for source, line in _lines(class_ind):
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{source}: expected 'index ClassName', got {line!r}")
        index = _int(parts[0], "class index", source)
        if index < 1:
            raise DataError(f"{source}: class index must be >= 1, got {index}")
        if index in by_index:
            raise DataError(f"{source}: duplicate class index {index}")
        _check_unique(parts[1], seen, "class name", source)
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
    for source, line in _lines(split_file):
        parts = line.split()
        if len(parts) > 2:
            raise DataError(f"{source}: expected 'Class/video.avi [label]', got {line!r}")
        path = parts[0]
        folder = path.split("/")[0] if "/" in path else None
        if len(parts) == 2:
            number = _int(parts[1], "label", source)
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
            label = _class_index(folder, index, source)
        _check_unique(path, seen, "video", source)
        records.append(VideoRecord(path, label, None, source))
    return _nonempty(records, split_file)


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
    _check_class_list(names, split_dir)
    missing = [c for c in names if c not in files]
    if missing:
        raise DataError(
            f"{split_dir}: no split file for class {missing[0]!r} ({missing[0]}_test_split{split}.txt)"
        )
    wanted = 1 if subset == "train" else 2
    records: list[VideoRecord] = []
    for label, name in enumerate(names):
        seen: dict[str, str] = {}
        for source, line in _lines(files[name]):
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{source}: expected 'video.avi 0|1|2', got {line!r}")
            flag = _int(parts[1], "split id", source)
            if flag not in (0, 1, 2):
                raise DataError(f"{source}: split id must be 0 (unused), 1 (train) or 2 (test), got {flag}")
            _check_unique(parts[0], seen, "video", source)
            if flag == wanted:
                records.append(VideoRecord(f"{name}/{parts[0]}", label, None, source))
    return _nonempty(records, split_dir)


# ------------------------------------------------------------------------------------------ writing, convert
def _one_line(text: str) -> bool:
    """`text` reads back unchanged as one stripped line of a UTF-8 file (see `_lines` and `_read_text`)."""
    if not text or text != text.strip() or text.splitlines() != [text] or text.startswith("\ufeff"):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        return False
    return True


def write_list(records: Sequence[VideoRecord], path: PathLike, *, with_frames: bool = False) -> None:
    """Write records as a ``path label`` list, or as a ``dir num_frames label`` rawframe list."""
    lines = []
    with progress_bar(f"writing {Path(path).name}", total=len(records)) as bar:
        for r in records:
            where = r.source or r.path
            if not _one_line(r.path) or r.path.startswith("#"):
                raise DataError(f"{where}: path {r.path!r} cannot be written to a list file")
            if with_frames:
                if r.num_frames is None:
                    raise DataError(f"{where}: no frame count for a rawframe list")
                lines.append(f"{r.path} {r.num_frames} {r.label}\n")
            else:
                lines.append(f"{r.path} {r.label}\n")
            bar.advance()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(lines), encoding="utf-8")


# format → (names of its inputs, parser, class-name reader)
_Format = tuple[tuple[str, ...], Callable[..., list[VideoRecord]], Callable[..., list[str]] | None]
_FORMATS: dict[str, _Format] = {
    "list": (("list file",), parse_list_file, None),
    "rawframes": (("rawframe list",), parse_rawframe_list, None),
    "ssv2": (("labels JSON", "split JSON"), parse_ssv2, ssv2_classes),
    "kinetics": (("CSV",), parse_kinetics_csv, None),
    "ucf101": (("classInd.txt", "split list"), parse_ucf101, ucf101_classes),
    "hmdb51": (("split folder",), parse_hmdb51, hmdb51_classes),
}


def _check_files(fmt: str, records: list[VideoRecord], root: PathLike, path_format: str | None) -> None:
    """A `DataError` naming the first listed file missing under `root`, how many are, and what to pass."""
    missing = missing_files(records, root, folders=fmt == "rawframes")
    if not missing:
        return
    first = Path(root) / missing[0].path
    hint = "pass --root, the folder the listed paths are relative to"
    if fmt in ("ssv2", "kinetics"):
        try:
            others = sorted(p.name for p in first.parent.glob(f"{glob.escape(first.stem)}.*") if p != first)
        except OSError:
            others = []
        default = "{id}.webm" if fmt == "ssv2" else "{label}/{clip_id}.mp4"
        current = path_format or default
        if others and fmt == "ssv2" and current.endswith(first.suffix) and first.suffix:
            guess = current[: -len(first.suffix)] + Path(others[0]).suffix
            hint = f"{first.parent} holds {others[0]}: pass --path-format '{guess}'"
        else:
            hint += f", or --path-format (now '{current}')"
    raise DataError(
        f"{first}: listed video not found ({missing[0].source}; {len(missing)} of {len(records)} listed "
        f"missing under {root}); {hint}, or --no-check to write the list anyway"
    )


def convert(
    fmt: str,
    *inputs: PathLike,
    out: PathLike,
    classes_out: PathLike | None = None,
    root: PathLike | None = None,
    **options: Any,
) -> list[VideoRecord]:
    """Parse annotations in format `fmt` and write them as a list file `out` (rawframe list for ``rawframes``).

    Inputs per format: ``list``/``rawframes``: the list; ``ssv2``: labels JSON, split JSON; ``kinetics``: CSV;
    ``ucf101``: classInd.txt, split list; ``hmdb51``: split folder. `options` go to the parser (for example
    ``classes`` for Kinetics, ``split``/``subset`` for HMDB51). `classes_out` receives the class names, one a
    line in label order. With `root`, every listed file (rawframes: folder) must exist under it, else nothing is
    written and a `DataError` names the first missing one. Returns the records written.
    """
    if fmt not in _FORMATS:
        raise DataError(f"unknown annotation format {fmt!r} (valid: {', '.join(_FORMATS)})")
    needs, parse, names = _FORMATS[fmt]
    if len(inputs) != len(needs):
        raise DataError(f"format {fmt!r} needs {len(needs)} input(s) ({', '.join(needs)}), got {len(inputs)}")
    records = parse(*inputs, **options)
    if root is not None:
        _check_files(fmt, records, root, options.get("path_format"))
    write_list(records, out, with_frames=fmt == "rawframes")
    if classes_out is not None:
        if options.get("classes") is not None:  # the labels index these (kinetics, hmdb51)
            class_names = list(options["classes"])
        elif fmt == "kinetics":
            class_names = kinetics_classes(inputs[0])
        elif names is not None:
            class_names = names(inputs[0], options["split"]) if "split" in options else names(inputs[0])
        else:
            raise DataError(f"format {fmt!r} has no class names to write")
        for name in class_names:
            if not _one_line(name):
                raise DataError(f"{inputs[0]}: class name {name!r} cannot be written to a class list")
        Path(classes_out).write_text("".join(f"{n}\n" for n in class_names), encoding="utf-8")
    return records
