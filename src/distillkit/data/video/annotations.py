"""Video annotations: the record every format parses into, the helpers format modules parse with, list files,
and the registry of annotation formats that `distillkit data convert` reads.

Every parser returns a list of `VideoRecord` (label as a 0-based class index) and raises `DataError` naming the
file and line of the first bad entry. Class names, where a format has them, come from the format's class-name
reader so that train and test splits of one data set share one class order.

A format is a subclass of `AnnotationFormat` decorated with `register_format`, in a module of
`distillkit.data.video.formats` (one file each, every module there imported with the package: list files,
rawframe lists, Something-Something V2, Kinetics, UCF101, HMDB51). Layouts on disk are described there.

In list files blank lines and lines starting with ``#`` are skipped (a ``#`` inside a path is kept).
"""

from __future__ import annotations

import difflib
import json
import re
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from distillkit.engine.progress import progress_bar
from distillkit.errors import ConfigError, DataError, read_text_file

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


# ----------------------------------------------------------------------------------- helpers of the parsers
_READ_REASONS: dict[type[OSError], str] = {
    FileNotFoundError: "file not found",
    IsADirectoryError: "is a directory, expected an annotation file",
}


def read_text(path: PathLike) -> str:
    return read_text_file(Path(path), DataError, reasons=_READ_REASONS)


def entry_lines(path: PathLike) -> Iterator[tuple[str, str]]:
    """(source ``file:line``, stripped text) of each line that is not blank or a ``#`` comment."""
    for number, raw in enumerate(read_text(path).splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield f"{path}:{number}", line


_INT = re.compile(r"[+-]?\d+")


def parse_int(text: str, what: str, source: str) -> int:
    if not _INT.fullmatch(text):
        raise DataError(f"{source}: {what} must be an integer, got {text!r}")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise DataError(f"{source}: {what} is too large ({len(text)} digits)") from None


def check_label(label: int, num_classes: int | None, source: str) -> int:
    if label < 0 or (num_classes is not None and label >= num_classes):
        valid = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise DataError(f"{source}: label {label} out of range ({valid})")
    return label


def check_unique(key: str, seen: dict[str, str], what: str, source: str) -> None:
    if key in seen:
        raise DataError(f"{source}: duplicate {what} {key!r} (first at {seen[key]})")
    seen[key] = source


def class_index(name: str, index: dict[str, int], source: str) -> int:
    if name not in index:
        close = difflib.get_close_matches(name, list(index), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{source}: unknown class name {name!r}{hint}")
    return index[name]


def check_class_list(names: Sequence[str], path: PathLike) -> None:
    """A class list passed in by the caller names each class once (else a label would stand for two)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: the class list names {name!r} twice")
        seen.add(name)


def nonempty(records: list[VideoRecord], path: PathLike) -> list[VideoRecord]:
    if not records:
        raise DataError(f"{path}: no entries")
    return records


def json_entries(path: PathLike) -> tuple[str, list[tuple[int, Any, Any]]]:
    """Top-level entries of a JSON list or object as (line, key or None, value), and the container kind."""
    text = read_text(path)
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


# ------------------------------------------------------------------------------------------------- the registry
class AnnotationFormat:
    """One annotation format: what its inputs are, how they parse into records, where its class names come from.

    Subclass it, set the class attributes, implement `parse` (and `class_names` when the format names its
    classes), and decorate the class with `register_format`."""

    name: ClassVar[str] = ""
    """The name `distillkit data convert` (and, with `list_source`, `data.name`) knows the format by."""
    inputs: ClassVar[tuple[str, ...]] = ()
    """What each input is, in order (e.g. ``("labels JSON", "split JSON")``)."""
    options: ClassVar[tuple[str, ...]] = ()
    """The options `distillkit data convert` may pass to `parse` (of ``split``, ``subset``, ``classes``,
    ``path_format``)."""
    folders: ClassVar[bool] = False
    """The records are rawframe folders with frame counts (written as a rawframe list, checked as folders)."""
    list_source: ClassVar[bool] = False
    """`data.name` may name the format: `data.train_list` and `data.test_list` are files in it, read with
    ``parse(path, num_classes=...)``."""
    path_format: ClassVar[str | None] = None
    """The default path of a video, for formats that build it from fields (``--path-format``)."""

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        """The records of `inputs` (as many as `inputs` names), with the format's `options`."""
        raise NotImplementedError

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str] | None:
        """The class names in label order, or None when the format has none."""
        return None

    def missing_hint(self, first: Path, path_format: str | None) -> str:
        """What to pass when a listed video (`first`, the first missing one) is not where the list says."""
        hint = "pass --root, the folder the listed paths are relative to"
        if self.path_format is not None:
            hint += f", or --path-format (now '{path_format or self.path_format}')"
        return hint


FORMATS: dict[str, AnnotationFormat] = {}
"""Every registered annotation format by name."""

F = TypeVar("F", bound=type[AnnotationFormat])


def register_format(cls: F) -> F:
    """Class decorator adding a format to `FORMATS` under `cls.name`."""
    if not cls.name or cls.name in FORMATS:
        raise ValueError(f"annotation format name {cls.name!r} is empty or already registered")
    FORMATS[cls.name] = cls()
    return cls


def format_names(*, list_source: bool = False) -> list[str]:
    """The registered formats (only those `data.name` may name, with `list_source`), sorted."""
    return sorted(name for name, fmt in FORMATS.items() if fmt.list_source or not list_source)


def get_format(name: str) -> AnnotationFormat:
    """The format registered as `name`; a `DataError` listing the registered ones otherwise."""
    if name not in FORMATS:
        raise DataError(f"unknown annotation format {name!r} (valid: {', '.join(format_names())})")
    return FORMATS[name]


# -------------------------------------------------------------------------------------- list files, convert
def read_list(
    path: PathLike, num_classes: int | None = None, *, with_frames: bool = False
) -> list[VideoRecord]:
    """Parse a ``path label`` list, or a ``dir num_frames label`` rawframe list (`with_frames`), split from the
    right so that the path may contain spaces; labels are checked against `num_classes`."""
    fields, count = ("dir num_frames label", 3) if with_frames else ("path label", 2)
    records: list[VideoRecord] = []
    seen: dict[str, str] = {}
    for source, line in entry_lines(path):
        parts = line.rsplit(None, count - 1)
        if len(parts) != count:
            raise DataError(f"{source}: expected '{fields}', got {line!r}")
        num_frames = None
        if with_frames:
            num_frames = parse_int(parts[1], "frame count", source)
            if num_frames < 1:
                raise DataError(f"{source}: frame count must be >= 1, got {num_frames}")
        label = check_label(parse_int(parts[-1], "label", source), num_classes, source)
        check_unique(parts[0], seen, "folder" if with_frames else "path", source)
        records.append(VideoRecord(parts[0], label, num_frames, source))
    return nonempty(records, path)


def _one_line(text: str) -> bool:
    """`text` reads back unchanged as one stripped line of a UTF-8 file (see `entry_lines` and `read_text`)."""
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


def _check_files(
    fmt: AnnotationFormat, records: list[VideoRecord], root: PathLike, path_format: str | None
) -> None:
    """A `DataError` naming the first listed file missing under `root`, how many are, and what to pass."""
    missing = missing_files(records, root, folders=fmt.folders)
    if not missing:
        return
    first = Path(root) / missing[0].path
    raise DataError(
        f"{first}: listed video not found ({missing[0].source}; {len(missing)} of {len(records)} listed "
        f"missing under {root}); {fmt.missing_hint(first, path_format)}, or --no-check to write the list anyway"
    )


def convert(
    fmt: str,
    *inputs: PathLike,
    out: PathLike,
    classes_out: PathLike | None = None,
    root: PathLike | None = None,
    **options: Any,
) -> list[VideoRecord]:
    """Parse annotations in format `fmt` and write them as a list file `out` (a rawframe list for formats of
    rawframe folders).

    Inputs per format: as many as its `inputs` says (``list``/``rawframes``: the list; ``ssv2``: labels JSON,
    split JSON; ``kinetics``: CSV; ``ucf101``: classInd.txt, split list; ``hmdb51``: split folder). `options`
    go to the parser (for example ``classes`` for Kinetics, ``split``/``subset`` for HMDB51). `classes_out`
    receives the class names, one a line in label order (``classes``, when given, are those the labels index).
    With `root`, every listed file (rawframes: folder) must exist under it, else nothing is written and a
    `DataError` names the first missing one. Returns the records written.
    """
    form = get_format(fmt)
    if len(inputs) != len(form.inputs):
        raise DataError(
            f"format {fmt!r} needs {len(form.inputs)} input(s) ({', '.join(form.inputs)}), got {len(inputs)}"
        )
    records = form.parse(*inputs, **options)
    if root is not None:
        _check_files(form, records, root, options.get("path_format"))
    write_list(records, out, with_frames=form.folders)
    if classes_out is not None:
        if options.get("classes") is not None:  # the labels index these
            class_names = list(options["classes"])
        else:
            found = form.class_names(*inputs, **options)
            if found is None:
                raise DataError(f"format {fmt!r} has no class names to write")
            class_names = found
        for name in class_names:
            if not _one_line(name):
                raise DataError(f"{inputs[0]}: class name {name!r} cannot be written to a class list")
        Path(classes_out).write_text("".join(f"{n}\n" for n in class_names), encoding="utf-8")
    return records
