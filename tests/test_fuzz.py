"""Fuzzing of the config loader and the video annotation parsers (hypothesis).

Whatever the input (random text, YAML of random structures, binary garbage, malformed overrides, annotation
files mixing valid and broken entries), loading gives either a result or the toolkit's own error naming the
file (and the line or key at fault): `ConfigError` for configs, `DataError` for annotations. Any other
exception escaping is a bug; each one found is kept below as an `@example`.

Each property runs 40 examples; `DISTILLKIT_FUZZ_EXAMPLES=2000` hunts longer. `--hypothesis-show-statistics`
shows how often each outcome (error or valid result) was reached.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from distillkit.config import (
    CompressConfig,
    Section,
    TrainConfig,
    VideoTrainConfig,
    _section_type,
    dump_config,
    load_config,
    load_train_config,
)
from distillkit.data.video import (
    convert,
    hmdb51_classes,
    kinetics_classes,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_rawframe_list,
    parse_ssv2,
    parse_ucf101,
    ssv2_classes,
    ucf101_classes,
)
from distillkit.errors import ConfigError, DataError
from distillkit.incremental.config import IncrementalConfig

FUZZ = settings(
    max_examples=int(os.environ.get("DISTILLKIT_FUZZ_EXAMPLES", "40")),  # raise it for a longer hunt
    deadline=None,
    database=None,  # no example database: each run stands on its own (regressions are the @examples)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCHEMAS: list[type[Section]] = [CompressConfig, TrainConfig, VideoTrainConfig, IncrementalConfig]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the whole module (hypothesis runs many examples per test function)."""
    return tmp_path_factory.mktemp("fuzz")


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


# ================================================================================================== configs
def _dotted_keys(schema: type[Section], prefix: str = "") -> list[str]:
    keys = []
    for name, field in schema.model_fields.items():
        key = f"{prefix}{name}"
        keys.append(key)
        sub = _section_type(field.annotation)
        if sub is not None:
            keys += _dotted_keys(sub, f"{key}.")
    return keys


ALL_KEYS = sorted({k for schema in SCHEMAS for k in _dotted_keys(schema)} | {"task"})
KEY_PARTS = sorted({part for key in ALL_KEYS for part in key.split(".")})

# scalars as YAML builds them, including the awkward ones (huge ints, nan/inf, dates, text with controls)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["auto", "cpu", "cuda:0", "sgd", "adamw", "video", "image", "synthetic", "list", "x"]),
    st.dates(),
    st.datetimes(),
)


def _plain(keys: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """Random nested dicts / lists / scalars (what a YAML document can hold)."""
    keys = st.text(max_size=10) if keys is None else keys
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys | SCALARS, inner, max_size=4),
        max_leaves=12,
    )


PLAIN = _plain()


def _tree_for(schema: type[Section], depth: int = 0) -> st.SearchStrategy[dict]:
    """Dicts shaped like `schema`: its keys with valid, default or wrong-typed values, plus unknown keys."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in schema.model_fields.items():
        choices = [SCALARS, PLAIN]
        if field.default is not None and not isinstance(field.default, Section):
            choices.append(st.just(field.default))
        sub = _section_type(field.annotation)
        if sub is not None and depth < 3:
            choices.append(_tree_for(sub, depth + 1))
        optional[name] = st.one_of(*choices)
    unknown = st.dictionaries(st.sampled_from(KEY_PARTS) | st.text(max_size=8), SCALARS, max_size=2)
    known = st.fixed_dictionaries({}, optional=optional)
    return st.tuples(known, unknown, st.booleans()).map(lambda t: {**t[1], **t[0]} if t[2] else t[0])


SHAPED = {schema: _tree_for(schema) for schema in SCHEMAS}  # built once: building them is the slow part


def _dump(tree: Any, flow: bool) -> str:
    return yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)


# text that is likely to upset a YAML parser or constructor
YAML_TOKENS = st.sampled_from(
    [":", ": ", "- ", " ", "  ", "\n", "\t", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ", "!!float ",
     "!!bool ", "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!str ", "!!map ", "!!seq ", "!!python/none ",
     "!custom ", "2001-02-30", "2001-01-01 00:00:00 +99:99", "0x_", "0b", "0o9", "1e999", ".nan", "~", "'", '"',
     "#", "?", "|", ">", "---", "...", "%YAML 1.1\n", "<<: ", "seed", "data", "model", "task", "video", "options",
     "method", "\x00", "\x07", "\ufeff", "\u2028", "\ud800", "é", "1" * 5000]
)  # fmt: skip
YAMLISH = st.lists(YAML_TOKENS, max_size=30).map("".join)

CONFIG_LOADERS: list[tuple[str, Callable[..., Any]]] = [
    *[(schema.__name__, lambda p, o=None, s=schema: load_config(p, s, o)) for schema in SCHEMAS],
    ("load_train_config", load_train_config),
]
LOADER_IDS = [name for name, _ in CONFIG_LOADERS]
LOADERS = [load for _, load in CONFIG_LOADERS]


def _check_config_file(load: Callable[..., Any], path: Path) -> None:
    """A config, or a `ConfigError` whose message starts with the file path; never anything else."""
    try:
        cfg = load(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}"), str(exc)
        event("ConfigError")  # --hypothesis-show-statistics gives how often each outcome was reached
        return
    event("valid config")
    assert isinstance(cfg, Section)
    json.dumps(dump_config(cfg))  # a valid config can always be recorded in a report


@pytest.mark.parametrize("load", LOADERS, ids=LOADER_IDS)
@FUZZ
@given(text=st.text(max_size=200) | YAMLISH)
@example(text="")
@example(text="seed: 2001-02-30")  # was ValueError from PyYAML's timestamp constructor
@example(text="seed: !!int abc")  # was ValueError
@example(text="seed: 0x_")  # was ValueError
@example(text="seed: !!bool x")  # was KeyError
@example(text="seed: !!float ''")  # was IndexError
@example(text="seed: !!timestamp x")  # was AttributeError
@example(text="seed: " + "1" * 5000)  # was ValueError (more digits than int() converts)
@example(text="[" * 1000)  # was RecursionError
@example(text="task: video\nmethod: {options: &a {x: *a}}")  # accepted, then dump_config failed (cycle)
@example(text="method: {options: {x: !!binary /w==}}")  # accepted, then dump_config: UnicodeDecodeError
@example(text="task: [video]")  # load_train_config: TypeError unhashable list
@example(text="task: {a: 1}")  # load_train_config: TypeError unhashable dict
@example(text="\x01")  # a character YAML refuses
def test_config_text(work: Path, load: Callable[..., Any], text: str) -> None:
    _check_config_file(load, _write(work / "config.yaml", text))


@pytest.mark.parametrize("load", LOADERS, ids=LOADER_IDS)
@FUZZ
@given(data=st.binary(max_size=200))
@example(data=b"")
@example(data=b"\xff\xfe seed: 1")  # was UnicodeDecodeError
@example(data=b"seed: 1\n\x80")  # was UnicodeDecodeError
@example(data=b"\xef\xbb\xbfseed: 1")  # a UTF-8 byte-order mark is fine
def test_config_binary(work: Path, load: Callable[..., Any], data: bytes) -> None:
    _check_config_file(load, _write(work / "config.yaml", data))


@pytest.mark.parametrize("load", LOADERS, ids=LOADER_IDS)
@FUZZ
@given(tree=_plain(st.sampled_from(KEY_PARTS) | st.text(max_size=8)), flow=st.booleans())
@example(tree={"task": ["video"]}, flow=False)
@example(tree={1: 2, None: 3, datetime.date(2001, 1, 1): 4}, flow=True)
def test_config_random_documents(work: Path, load: Callable[..., Any], tree: Any, flow: bool) -> None:
    _check_config_file(load, _write(work / "config.yaml", _dump(tree, flow)))


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.__name__ for s in SCHEMAS])
@FUZZ
@given(data=st.data(), flow=st.booleans(), train=st.booleans())
def test_config_schema_shaped_documents(
    work: Path, schema: type[Section], data: st.DataObject, flow: bool, train: bool
) -> None:
    tree = data.draw(SHAPED[schema])
    path = _write(work / "config.yaml", _dump(tree, flow))
    _check_config_file(lambda p: load_config(p, schema), path)
    if train and schema in (TrainConfig, VideoTrainConfig):
        _check_config_file(load_train_config, path)


# ------------------------------------------------------------------------------------------------ overrides
def _key() -> st.SearchStrategy[str]:
    known = st.sampled_from(ALL_KEYS)
    mutated = st.tuples(known, st.sampled_from(KEY_PARTS) | st.text(max_size=6)).map(
        lambda t: f"{t[0]}.{t[1]}"
    )
    odd = st.sampled_from(["", ".", "..", " ", "a..b", ".seed", "seed.", " seed ", "=", "data. name", "\n"])
    return st.one_of(known, mutated, odd, st.text(max_size=12))


def _value() -> st.SearchStrategy[str]:
    dumped = PLAIN.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())
    return st.one_of(SCALARS.map(str), dumped, YAMLISH, st.text(max_size=30))


OVERRIDE = st.one_of(
    st.tuples(_key(), st.sampled_from(["=", "==", " = ", ""]), _value()).map("".join),
    st.text(max_size=30),
)


@pytest.mark.parametrize("load", LOADERS, ids=LOADER_IDS)
@FUZZ
@given(overrides=st.lists(OVERRIDE, max_size=4))
@example(overrides=["task={a: 1}"])  # load_train_config: TypeError unhashable dict
@example(overrides=["task=[video]"])  # load_train_config: TypeError unhashable list
@example(overrides=["seed=2001-02-30"])  # was ValueError
@example(overrides=["seed=!!int x"])  # was ValueError
@example(overrides=["seed=" + "[" * 1000])  # was RecursionError
@example(overrides=["method.options.x=&a [*a]"])  # accepted, then dump_config failed (cycle)
@example(overrides=["method.options.x=!!binary /w=="])  # accepted, then dump_config failed (bytes)
@example(overrides=["seed", "=", "...=1", ".=", "seed=", "seed.x.y=1", "data=1", "data.name.x=1"])
def test_config_overrides(load: Callable[..., Any], overrides: list[str]) -> None:
    try:
        cfg = load(None, overrides)
    except ConfigError as exc:  # names the override, the unknown key, or the key whose value is wrong
        assert str(exc).startswith(("override '", "unknown key '", "config: '")), str(exc)
        event("ConfigError")
        return
    event("valid config")
    assert isinstance(cfg, Section)
    json.dumps(dump_config(cfg))


# ============================================================================================== annotations
LINE_RE = re.compile(r":(\d+): ")


def _check_data_error(exc: DataError, *files: Path, lines: int | None = None, stage: str = "parse") -> None:
    """The message starts with one of `files`; a line it names exists."""
    event(f"DataError ({stage})")  # --hypothesis-show-statistics gives how often each outcome was reached
    msg = str(exc)
    start = next((f for f in map(str, files) if msg.startswith(f)), None)
    assert start is not None, f"message names no input file: {msg}"
    found = LINE_RE.match(msg, len(start))
    if found is not None and lines is not None:
        assert 1 <= int(found.group(1)) <= max(lines, 1), msg


def _line_count(content: str | bytes) -> int:
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return len(text.splitlines()) or 1


# Inputs are mostly well-formed files with one or two entries broken (so that parsing, conversion and the
# round trip are all reached), and sometimes arbitrary text or bytes.
PLAIN_NAMES = ["a", "b", "Jump", "ApplyEyeMakeup", "brush_hair", "Push something", "x y", "é"]
TOKEN = st.sampled_from([n for n in PLAIN_NAMES if " " not in n]) | st.text(
    st.characters(exclude_characters="/#", exclude_categories=("Z", "C")), min_size=1, max_size=8
)  # one whitespace-free word
NAME = st.one_of(st.sampled_from(PLAIN_NAMES), TOKEN, st.text(max_size=8))  # any text: may hold line breaks
INT_TEXT = st.one_of(
    st.integers(-2, 6).map(str),
    st.sampled_from(["", "x", "1.0", "+1", "-0", "0x1", "١", "1" * 5000]),
    st.text(max_size=4),
)
JUNK_LINE = st.sampled_from(
    ["", "#comment", "   ", "\t", "\x0c", "\u2028", "\x00", "1" * 5000, "a b c d"]
) | st.text(max_size=12)


@st.composite
def _corrupt(draw: st.DrawFn, lines: list[str], bad: st.SearchStrategy[str], odds: int = 2) -> list[str]:
    """`lines` with blank lines and comments added and, one time in `odds`, one or two lines broken by `bad`."""
    lines = list(lines)
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "  ", "# comment", "#x 1"])))
    if draw(st.integers(1, odds)) == 1:
        for _ in range(draw(st.integers(1, 2))):
            i = draw(st.integers(0, len(lines)))
            if i < len(lines) and draw(st.booleans()):
                lines[i] = draw(bad)
            else:
                lines.insert(i, draw(bad))
    return lines


@st.composite
def _text_file(
    draw: st.DrawFn, lines: st.SearchStrategy[list[str]], bad: st.SearchStrategy[str], odds: int = 10
) -> str | bytes:
    """A line-based annotation file: `lines` with some broken by `bad` (one time in `odds` / 5), else (each one
    time in `odds`) random bytes, random text, or the file with an invalid UTF-8 byte inside."""
    kind = draw(st.integers(0, odds - 1))
    if kind == 0:
        return draw(st.binary(max_size=60))
    if kind == 1:
        return draw(st.text(max_size=60))
    body = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(
        draw(_corrupt(draw(lines), bad, max(1, odds // 5)))
    )
    text = draw(st.sampled_from(["", "\ufeff"])) + body + draw(st.sampled_from(["", "\n"]))
    if kind == 2:
        raw = text.encode("utf-8")
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + raw[at:]
    return text


LIST_PATH = st.one_of(
    st.tuples(TOKEN, TOKEN).map(lambda t: f"{t[0]}/{t[1]}.mp4"),
    st.sampled_from(["v.mp4", "with space.mp4", "a#b.mp4", "x\ty.mp4", "/abs/v.mp4"]),
    st.tuples(NAME, NAME).map(lambda t: f"{t[0]}/{t[1]}.mp4"),
)


def _list_lines(with_frames: bool) -> st.SearchStrategy[list[str]]:
    entry = st.tuples(LIST_PATH, st.sampled_from([" ", "\t", "  "]), st.integers(1, 40), st.integers(0, 4))
    return st.lists(entry, min_size=1, max_size=6, unique_by=lambda e: e[0]).map(
        lambda es: [sep.join([p, str(n), str(y)] if with_frames else [p, str(y)]) for p, sep, n, y in es]
    )


LIST_FILE = _text_file(_list_lines(False), JUNK_LINE | st.tuples(LIST_PATH, INT_TEXT).map(" ".join))
RAWFRAME_FILE = _text_file(
    _list_lines(True), JUNK_LINE | st.tuples(LIST_PATH, INT_TEXT, INT_TEXT).map(" ".join)
)


def _convert_round_trip(
    work: Path,
    fmt: str,
    inputs: list[Path],
    records: list,
    class_names: list[str] | None = None,
    **options: Any,
) -> None:
    """Converting parsed annotations writes a list that parses back to the same records, and the class names
    the labels index (`class_names`) as a class list that reads back the same; or it fails clearly."""
    out, classes_out = work / "out.txt", work / "classes.txt"
    classes_out.unlink(missing_ok=True)
    wants_classes = class_names is not None
    try:
        written = convert(
            fmt, *inputs, out=out, classes_out=classes_out if wants_classes else None, **options
        )
    except DataError as exc:
        _check_data_error(exc, *inputs, stage="convert")
        return
    event("parsed and converted")
    assert [(r.path, r.label) for r in written] == [(r.path, r.label) for r in records]
    back = (parse_rawframe_list if fmt == "rawframes" else parse_list_file)(out)
    assert [(r.path, r.label, r.num_frames) for r in back] == [
        (r.path, r.label, r.num_frames) for r in records
    ]
    if wants_classes:
        names = [x.strip() for x in classes_out.read_text(encoding="utf-8").splitlines() if x.strip()]
        assert names == class_names


def _check_list(work: Path, fmt: str, content: str | bytes, num_classes: int | None) -> None:
    """A list file (`fmt` ``list``, or ``rawframes`` with frame counts) parses to records of its lines with
    labels in range, that convert back, or fails naming the file and line."""
    path = _write(work / f"{fmt}.txt", content)
    try:
        records = (parse_rawframe_list if fmt == "rawframes" else parse_list_file)(path, num_classes)
    except DataError as exc:
        _check_data_error(exc, path, lines=_line_count(content))
        return
    assert records and all(r.source.startswith(f"{path}:") for r in records)
    assert all(0 <= r.label < (num_classes or 10**9) for r in records)
    if fmt == "rawframes":
        assert all(r.num_frames is not None and r.num_frames >= 1 for r in records)
    _convert_round_trip(work, fmt, [path], records)


@FUZZ
@given(content=LIST_FILE, num_classes=st.none() | st.integers(1, 6))
@example(content="a " + "1" * 5000, num_classes=None)  # was ValueError (int digit limit)
@example(content=b"a.mp4 1\n\xff 2", num_classes=None)
@example(content="\ufeffa.mp4 0\n", num_classes=2)
@example(content="#a.mp4 0\na#b.mp4 1\nwith space.mp4 1\n", num_classes=2)
def test_list_file(work: Path, content: str | bytes, num_classes: int | None) -> None:
    _check_list(work, "list", content, num_classes)


@FUZZ
@given(content=RAWFRAME_FILE, num_classes=st.none() | st.integers(1, 6))
@example(content="a 5 " + "1" * 5000, num_classes=None)  # was ValueError (int digit limit)
@example(content="dir with space 8 0\nb 0 1", num_classes=None)
def test_rawframe_list(work: Path, content: str | bytes, num_classes: int | None) -> None:
    _check_list(work, "rawframes", content, num_classes)


def _check_class_files(
    work: Path,
    fmt: str,
    files: dict[str, str | bytes],
    classes_of: Callable[[Path], list[str]],
    parse: Callable[..., list],
    **options: Any,
) -> None:
    """Annotation files (`files`: name → content) whose first names the classes parse to records of those
    classes (with `options`), that convert back; or fail naming a file and a line."""
    paths = [_write(work / name, content) for name, content in files.items()]
    try:
        classes = classes_of(paths[0])
        records = parse(*paths, **options)
    except DataError as exc:
        _check_data_error(exc, *paths, lines=max(_line_count(content) for content in files.values()))
        return
    assert all(0 <= r.label < len(classes) for r in records)
    _convert_round_trip(work, fmt, paths, records, classes, **options)


# ------------------------------------------------------------------------------------------------------ SSv2
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def _json_file(draw: st.DrawFn, value: Any) -> str | bytes:
    """`value` as JSON with a random layout; sometimes random text or bytes instead."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.binary(max_size=40))
    if kind == 1:
        return draw(
            st.text(max_size=40) | st.sampled_from(["", "[", "{", "[1,]", "NaN", "[" * 5000, "1" * 5000])
        )
    indent = draw(st.sampled_from([None, 0, 1, "\t"]))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :"), (",\n", ":\n")]))
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=draw(st.booleans()))
    return (
        draw(st.sampled_from(["", " ", "\n", "\r\n\t", "\ufeff"])) + text + draw(st.sampled_from(["", "\n"]))
    )


def _template(name: str) -> st.SearchStrategy[str]:
    """An SSv2 template of class `name`: brackets around a part (they are dropped when matching)."""
    words = name.split(" ")
    return st.integers(0, len(words)).map(
        lambda i: " ".join(f"[{w}]" if j == i else w for j, w in enumerate(words))
    )


@st.composite
def _ssv2_files(draw: st.DrawFn) -> tuple[str | bytes, str | bytes]:
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique=True))
    labels: Any = dict(draw(st.permutations([(n, str(i)) for i, n in enumerate(names)])))
    if draw(st.integers(0, 3)) == 0:  # a wrong label or an extra class
        key = draw(st.sampled_from(names) | NAME)
        labels[key] = draw(st.sampled_from(["-1", str(len(names)), "0", "1" * 5000, "x"]) | JSON_VALUES)
    ids = draw(st.lists(st.integers(0, 10**6).map(str) | TOKEN | NAME, min_size=1, max_size=6, unique=True))
    split: Any = [{"id": i, "template": draw(_template(draw(st.sampled_from(names))))} for i in ids]
    if draw(st.integers(0, 3)) == 0:  # a broken entry
        bad = st.one_of(
            JSON_VALUES,
            st.fixed_dictionaries({"id": JSON_VALUES}, optional={"template": NAME | JSON_VALUES}),
        )
        split.insert(draw(st.integers(0, len(split))), draw(bad))
    if draw(st.integers(0, 9)) == 0:
        labels = draw(JSON_VALUES)
    if draw(st.integers(0, 9)) == 0:
        split = draw(JSON_VALUES)
    return draw(_json_file(labels)), draw(_json_file(split))


@FUZZ
@given(files=_ssv2_files())
@example(files=("[" * 100000, "[]"))  # was RecursionError
@example(files=("1" * 5000, "[]"))  # was ValueError (int digit limit)
@example(files=('{"a": "' + "1" * 5000 + '"}', "[]"))  # was ValueError (int digit limit)
@example(files=('{"a": "0"}', '[{"id": "\\ud800", "template": "a"}]'))  # convert: UnicodeEncodeError
@example(files=('{"a": "0"}', '[{"id": "x\\u000by", "template": "a"}]'))  # list broke on read-back
@example(files=('{"a\\nb": "0"}', '[{"id": "1", "template": "a\\nb"}]'))  # class list broke on read-back
@example(files=('{"a": "0", "a": "1"}', "[]"))
def test_ssv2(work: Path, files: tuple[str | bytes, str | bytes]) -> None:
    labels, split = files
    inputs = {"labels.json": labels, "split.json": split}
    _check_class_files(work, "ssv2", inputs, ssv2_classes, parse_ssv2, path_format="{id}")


# -------------------------------------------------------------------------------------------------- Kinetics
CSV_FIELD = st.one_of(
    NAME,
    INT_TEXT,
    st.sampled_from(['"', '""', '"a,b"', "a\nb", "\r", ",", "\x00", "\ufeff", "x" * 140000]),
)
KINETICS_COLUMNS = ["label", "youtube_id", "time_start", "time_end"]


@st.composite
def _kinetics_file(draw: st.DrawFn) -> tuple[str | bytes, list[str] | None]:
    """A Kinetics CSV (well-formed, or hand-joined with unescaped quotes), and the `classes` to pass."""
    labels = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    classes = draw(
        st.sampled_from([None, None, sorted({x.strip() for x in labels})]) | st.lists(NAME, max_size=3)
    )
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=60)), classes
    optional = draw(st.lists(st.sampled_from(["split", "extra"]) | TOKEN, max_size=2, unique=True))
    header = draw(st.permutations(KINETICS_COLUMNS + [c for c in optional if c not in KINETICS_COLUMNS]))
    if draw(st.integers(0, 5)) == 0:  # a column missing, renamed or doubled
        header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(KINETICS_COLUMNS) | NAME)
    videos = draw(st.lists(TOKEN | NAME, min_size=1, max_size=5, unique=True))
    values = {
        "label": st.sampled_from(labels),
        "youtube_id": st.nothing(),
        "time_start": st.integers(0, 300).map(str),
        "time_end": st.integers(0, 300).map(str),
        "split": st.sampled_from(["train", "val", ""]),
    }
    rows = [[v if c == "youtube_id" else draw(values.get(c, NAME)) for c in header] for v in videos]
    if draw(st.booleans()):  # a broken field or row
        if draw(st.booleans()):
            row = draw(st.sampled_from(rows))
            row[draw(st.integers(0, len(row) - 1))] = draw(CSV_FIELD)
        else:
            width = st.integers(max(0, len(header) - 1), len(header) + 1)
            rows.insert(
                draw(st.integers(0, len(rows))),
                draw(width.flatmap(lambda n: st.lists(CSV_FIELD, min_size=n, max_size=n))),
            )
    if kind < 7:
        buf = io.StringIO()
        csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
        return buf.getvalue(), classes
    return "\n".join(
        ",".join(r) for r in [header, *rows]
    ), classes  # hand-joined: quotes and commas unescaped


@FUZZ
@given(kinetics=_kinetics_file())
@example(kinetics=('label,youtube_id,time_start,time_end\n"' + "a" * 140000 + '",b,1,2\n', None))  # csv.Error
@example(kinetics=("label,youtube_id,time_start,time_end\na,b," + "1" * 5000 + ",2\n", None))  # ValueError
@example(kinetics=('label,youtube_id,time_start,time_end\n"a\x0cb",y,1,2\n', None))  # list broke on read-back
@example(kinetics=('label,youtube_id,time_start,time_end\n"abc,b,1,2\n', None))
@example(kinetics=("label,youtube_id,time_start,time_end\na,b,1,2,extra\n", ["a"]))
@example(kinetics=("label,youtube_id,time_start,time_end\na,b,1,2\n", ["a", "a"]))
def test_kinetics(work: Path, kinetics: tuple[str | bytes, list[str] | None]) -> None:
    content, classes = kinetics
    path = _write(work / "kinetics.csv", content)
    try:
        records = parse_kinetics_csv(path, classes)
    except DataError as exc:
        _check_data_error(exc, path, lines=_line_count(content))
        return
    names = classes if classes is not None else kinetics_classes(path)
    _convert_round_trip(work, "kinetics", [path], records, names, classes=classes)


# ---------------------------------------------------------------------------------------------------- UCF101
@st.composite
def _ucf101_files(draw: st.DrawFn) -> tuple[str | bytes, str | bytes]:
    classes = draw(st.lists(TOKEN, min_size=1, max_size=5, unique=True))
    numbered = list(enumerate(classes, 1))
    ind_lines = draw(st.permutations([f"{i} {c}" for i, c in numbered]))
    videos = draw(st.lists(TOKEN, min_size=1, max_size=6, unique=True))
    labelled = draw(st.booleans())  # a train list (with labels) or a test list (class from the folder)
    split_lines = []
    for v in videos:
        i, c = draw(st.sampled_from(numbered))
        split_lines.append(f"{c}/v_{v}.avi {i}" if labelled else f"{c}/v_{v}.avi")
    bad_ind = JUNK_LINE | st.tuples(INT_TEXT, NAME).map(" ".join)
    bad_split = JUNK_LINE | st.tuples(NAME, NAME, INT_TEXT).map(lambda t: f"{t[0]}/{t[1]}.avi {t[2]}") | TOKEN
    class_ind = draw(_text_file(st.just(ind_lines), bad_ind))
    split = draw(_text_file(st.just(split_lines), bad_split))
    return class_ind, split


@FUZZ
@given(files=_ucf101_files())
@example(files=("1 A\n", "A/x.avi 1\nA/y.avi\n"))  # was TypeError: the label overwrote the class index
@example(files=("1 A\n" + "1" * 5000 + " B\n", "A/x.avi 1\n"))  # was ValueError (int digit limit)
@example(files=("1 A\n3 B\n", "A/x.avi\n"))
@example(files=("1 A\n2 B\n", "B/x.avi 1\n/y.avi\n"))
def test_ucf101(work: Path, files: tuple[str | bytes, str | bytes]) -> None:
    class_ind, split = files
    inputs = {"classInd.txt": class_ind, "trainlist.txt": split}
    _check_class_files(work, "ucf101", inputs, ucf101_classes, parse_ucf101)


# ---------------------------------------------------------------------------------------------------- HMDB51
FILE_NAME = st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), max_size=10)
SUFFIX = "_test_split1.txt"


@st.composite
def _hmdb51_folder(draw: st.DrawFn) -> tuple[list[tuple[str, str | bytes]], str, list[str] | None]:
    """(file name, content) of the split files, the subset to read and the `classes` to pass."""
    names = draw(st.lists(TOKEN | FILE_NAME, min_size=1, max_size=4, unique=True))
    files = []
    for name in names:
        videos = draw(st.lists(TOKEN, min_size=1, max_size=5, unique=True))
        lines = [f"{v}.avi {draw(st.integers(0, 2))}" for v in videos]
        bad = JUNK_LINE | st.tuples(NAME, INT_TEXT).map(lambda t: f"{t[0]}.avi {t[1]}")
        files.append((name + SUFFIX, draw(_text_file(st.just(lines), bad, odds=40))))
    if draw(st.integers(0, 4)) == 0:  # a stray file
        stray = st.tuples(FILE_NAME, st.sampled_from([SUFFIX, "_test_split2.txt", ".txt", ""]))
        files.append((draw(stray.map("".join)), draw(st.text(max_size=20) | st.binary(max_size=20))))
    subset = draw(st.sampled_from(["train", "test"]))
    classes = draw(
        st.sampled_from([None, None, sorted(names)]) | st.lists(st.sampled_from(names) | NAME, max_size=3)
    )
    return files, subset, classes


@FUZZ
@given(hmdb=_hmdb51_folder())
@example(hmdb=([(SUFFIX, "v.avi 1\n")], "train", None))  # was a record with the absolute path '/v.avi'
@example(hmdb=([("a\nb" + SUFFIX, "v.avi 1\n")], "train", None))  # class list broke on read-back
@example(hmdb=([("a" + SUFFIX, "v.avi 1\nv.avi 2\n")], "test", None))
@example(hmdb=([("x" + SUFFIX, "v.avi 1\n")], "train", ["x", "x"]))  # each video was listed twice
@example(hmdb=([("x" + SUFFIX, "v.avi 1\n"), ("y" + SUFFIX, "")], "train", ["x"]))  # wrong class list
@example(hmdb=([("a" + SUFFIX, "v.avi " + "1" * 5000)], "test", None))  # was ValueError (int digit limit)
def test_hmdb51(work: Path, hmdb: tuple[list[tuple[str, str | bytes]], str, list[str] | None]) -> None:
    files, subset, classes = hmdb
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        split_dir = Path(tmp)
        for file_name, content in files:
            if file_name in ("", ".", "..") or len(file_name.encode("utf-8")) > 200:
                continue
            _write(split_dir / file_name, content)
        try:
            records = parse_hmdb51(split_dir, 1, subset, classes)  # type: ignore[arg-type]
        except DataError as exc:
            _check_data_error(exc, split_dir)
            return
        assert all(not r.path.startswith("/") for r in records)
        names = classes if classes is not None else hmdb51_classes(split_dir)
        _convert_round_trip(work, "hmdb51", [split_dir], records, names, subset=subset, classes=classes)


# ========================================================================================================= CLI
# Random command lines for every subcommand, with random `--set key=value` pairs, run through `cli.main`: each
# ends in SystemExit (0, argparse's 2 with its usage, or 2 with one line of ours), never another exception and
# never a traceback. Work is never started: the job functions are replaced by one raising `_Validated`, reached
# only once the command line, the config and --out have passed every check.
CLI_FUZZ = settings(
    max_examples=int(os.environ.get("DISTILLKIT_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,  # reproducible: the same examples every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Validated(Exception):
    """Raised instead of starting a job: everything before it passed."""


def _validated(*args: Any, **kwargs: Any) -> None:
    raise _Validated


CLI_CONFIGS = {
    "train": "device: cpu\nmodel: {arch: vgg11, width: 0.125, train: {steps: 1}}\n"
    "data: {batch_size: 4, synthetic: {num_classes: 2, train_per_class: 2, test_per_class: 1}}\n",
    "compress": "device: cpu\nteacher: {arch: vgg11, width: 0.125, train: {steps: 1}}\npbkd: {stage: {steps: 1}}\n",
    "incremental": "device: cpu\ntrain: {base: {steps: 1}, step: {steps: 1}}\n",
    "empty": "# nothing\n",
    "dup": "seed: 1\nseed: 2\n",
}
SET_VALUES = st.one_of(
    st.integers(-3, 3).map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(str),
    st.sampled_from(["inf", "-inf", ".inf", "nan", ".nan", "1e309", "1e300", "0", "-1", "", "[]", "{}", "[1, 2]",
                     "null", "true", "cpu", "cuda", "cuda:7", "cudax", "sgd", "x", "{a: 1, a: 2}", "[", "'"]),
    st.text(max_size=10),
    st.lists(st.integers(-2, 5), max_size=3).map(str),
)  # fmt: skip
SET_KEYS = st.one_of(st.sampled_from(ALL_KEYS), st.sampled_from(KEY_PARTS), st.text(max_size=8))
SET_PAIR = st.tuples(SET_KEYS, SET_VALUES).flatmap(lambda kv: st.just(["--set", f"{kv[0]}={kv[1]}"]))
JUNK_ARG = st.one_of(
    st.sampled_from(["--resume", "--overwrite", "--set", "--out", "--bogus", "-x", "--", "", "-"]),
    st.text(max_size=8),
)


@st.composite
def _command_line(draw: st.DrawFn, files: dict[str, Path], out: Path) -> list[str]:
    command = draw(
        st.sampled_from(["train", "compress", "incremental", "compare", "data synth", "data convert", "demo",
                         "methods", "config"])
    )  # fmt: skip
    paths = [str(p) for p in files.values()] + [str(out), str(out / "x.md"), "", "nowhere.yaml"]
    argv = command.split()
    if command in ("train", "compress", "incremental"):
        config = draw(st.sampled_from([command, command, "empty", "dup", "missing", "train"]))
        argv += [str(files.get(config, out / "missing.yaml")), "--out", str(out / "run")]
        argv += [a for pair in draw(st.lists(SET_PAIR, max_size=4)) for a in pair]
    elif command == "compare":
        argv += draw(st.lists(st.sampled_from(paths), min_size=0, max_size=3))
        argv += draw(st.sampled_from([[], ["--out", str(out)], ["--out", str(out / "t.md")], ["--out", ""]]))
    elif command == "data synth":
        argv += ["--out", str(out / "synth")]
        for flag in draw(st.lists(st.sampled_from(["--num-classes", "--frames", "--size", "--fps", "--test-fraction",
                                                   "--videos-per-class", "--preset"]), max_size=3)):  # fmt: skip
            argv += [flag, draw(SET_VALUES)]
    elif command == "data convert":
        argv.append(draw(st.sampled_from(["list", "rawframes", "ssv2", "kinetics", "ucf101", "hmdb51", "x"])))
        argv += draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2))
        argv += ["--out", str(out / "list.txt")]
        if draw(st.booleans()):
            argv += [
                "--path-format",
                draw(st.sampled_from(["{id}.mp4", "{nope}", "{", "{id:d}", "{0}"]) | st.text(max_size=8)),
            ]
        argv += draw(
            st.sampled_from([[], ["--no-check"], ["--root", str(out)], ["--root", "", "--no-check"]])
        )
    elif command == "demo":
        argv += ["--out", str(out / "demo")]
    elif command == "config":
        argv.append(draw(st.sampled_from(["train", "compress", "incremental", "train-video", "x"])))
    elif command == "methods" and draw(st.booleans()):
        argv.append("--options")
    if draw(st.integers(0, 4)) == 0:  # mostly well-formed, so that validation is reached
        argv += draw(st.lists(JUNK_ARG, min_size=1, max_size=2))
    return argv


@pytest.fixture(scope="module")
def cli_files(work: Path) -> dict[str, Path]:
    folder = work / "cli"
    folder.mkdir()
    files = {name: _write(folder / f"{name}.yaml", text) for name, text in CLI_CONFIGS.items()}
    files["list"] = _write(folder / "list.txt", "videos/a.mp4 0\nvideos/b.mp4 1\n")
    files["labels"] = _write(folder / "labels.json", '{"a": "0"}')
    files["split"] = _write(folder / "split.json", '[{"id": "1", "template": "a"}]')
    return files


@CLI_FUZZ
@given(data=st.data())
def test_cli_command_lines(work: Path, cli_files: dict[str, Path], data: st.DataObject) -> None:
    from distillkit import cli

    with tempfile.TemporaryDirectory(dir=work) as tmp, pytest.MonkeyPatch.context() as mp:
        out = Path(tmp)
        argv = data.draw(_command_line(cli_files, out), label="argv")
        for target in ("distillkit.jobs.train.train_images", "distillkit.jobs.train.train_videos",
                       "distillkit.jobs.compress.CompressionRun",
                       "distillkit.jobs.incremental.run_incremental", "distillkit.jobs.incremental.run_incremental",
                       "distillkit.data.synthetic_video.write_synthetic_videos"):  # fmt: skip
            mp.setattr(target, _validated)
        stderr = io.StringIO()
        mp.setattr("sys.stderr", stderr)
        mp.setattr("sys.stdout", io.StringIO())
        try:
            cli.main(argv)
        except _Validated:
            event("validated")
            return
        except SystemExit as exc:
            err = stderr.getvalue()
            assert "Traceback" not in err, err
            if err.startswith("distillkit: error: "):
                assert exc.code == 2 and len(err.strip().splitlines()) == 1, err
                event("our error")
            else:
                event(f"exit {exc.code}")  # 0, or argparse's usage error (2)
            return
        raise AssertionError(f"cli.main returned instead of exiting: {argv}")
