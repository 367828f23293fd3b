"""The config loader: YAML in (with `_base_` files), `--set a.b=c` overrides, validated by pydantic into a
`Section` with one-line errors; and how a job's config is recorded and compared when a run resumes.

Every config section is a `Section` (pydantic model that forbids unknown keys). `load_config` reads a YAML file,
applies overrides and validates; a mistyped key fails before any work, naming the key and the valid ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from distillkit.errors import ConfigError, read_text_file

T = TypeVar("T", bound="Section")
U = TypeVar("U", bound="Section")


class Section(BaseModel):
    """Base of every config block: unknown keys are errors, assignments are validated, floats must be finite
    (``.inf`` and ``.nan`` are refused naming the key)."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True, allow_inf_nan=False
    )
    recorded_defaults: ClassVar[dict[str, Any]] = {}
    """Keys (dotted) whose default changed after they existed: the value a recorded config that lacks the key was
    run with (it was recorded before the key existed, when the code did what this value does now)."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` → (['a', 'b'], value) with the value parsed as YAML (so numbers, lists and null work)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = _load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({_yaml_problem(exc)})") from None
    return parts, value


# PyYAML's constructors let Python errors escape on some malformed scalars (`!!int abc`, `2001-02-30`,
# `!!bool x`, `!!float ''`, an out-of-range timestamp); these are the exception types they raise.
_CONSTRUCTOR_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names one key twice (PyYAML would silently keep the last value)."""


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose scalar constructors fail with a `ConstructorError` marking the bad value, and whose
    mappings refuse a key given twice (`_DuplicateKey`; keys brought in by a ``<<`` merge may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # an unhashable key: the base constructor refuses it
                    continue
                if seen:
                    raise _DuplicateKey(
                        None,
                        None,
                        f"duplicate key {str(key)[:60]!r} (first on line {first[key] + 1}); keep one of them",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except _CONSTRUCTOR_ERRORS as exc:
            value = node.value if isinstance(node, yaml.ScalarNode) else node.id
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            why = f" ({exc})" if type(exc) is ValueError else ""  # the others' messages say nothing useful
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {tag} value {str(value)[:60]!r}{why}", node.start_mark
            ) from None


def _load_yaml(text: str) -> Any:
    """`yaml.safe_load`, with every failure a `yaml.YAMLError` (too deep nesting included)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    except _CONSTRUCTOR_ERRORS as exc:  # raised outside `construct_object` (none known): still a YAML error
        raise yaml.YAMLError(f"{exc.__class__.__name__}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying what is wrong (PyYAML's own messages span several lines)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return f"{exc.reason}: {char} at character {exc.position}"
    text = getattr(exc, "problem", None) or str(exc) or exc.__class__.__name__
    return text.splitlines()[0] if text.strip() else exc.__class__.__name__


def _read_yaml(path: Path) -> Any:
    """The YAML document in `path`; a `ConfigError` starting with the path when it cannot be read or parsed."""
    text = read_text_file(path, ConfigError)
    try:
        return _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, _DuplicateKey):
            raise ConfigError(f"{path}{where}: {_yaml_problem(exc)}") from None
        raise ConfigError(f"{path}{where}: not valid YAML ({_yaml_problem(exc)})") from None


def _check_plain(tree: dict, source: str) -> None:
    """Refuse what YAML can build but no JSON report can record: a value that contains itself through an alias
    (`&a [*a]`) and `!!binary` bytes (e.g. in free-form `method.options`)."""
    open_, done = set(), set()  # containers being walked / walked (aliases share them: each is walked once)

    def walk(node: Any, key: str) -> None:
        if isinstance(node, bytes):
            raise ConfigError(f"{source}: '{key}' is a !!binary value; give text instead")
        if not isinstance(node, dict | list) or id(node) in done:
            return
        if id(node) in open_:
            raise ConfigError(f"{source}: '{key}' contains itself (a recursive YAML alias)")
        open_.add(id(node))
        for k, v in node.items() if isinstance(node, dict) else enumerate(node):
            walk(v, f"{key}.{k}" if key else str(k))
        open_.discard(id(node))
        done.add(id(node))

    walk(tree, "")


def apply_overrides(tree: dict, overrides: list[str], schema: type[Section]) -> dict:
    """Set each `a.b=c` in the raw config tree, checking every key against the schema on the way down."""
    for text in overrides:
        parts, value = parse_override(text)
        node, model = tree, schema
        for depth, part in enumerate(parts):
            fields = model.model_fields if model is not None else None
            if fields is not None and part not in fields:
                _unknown_key(".".join(parts[: depth + 1]), part, list(fields))
            if depth == len(parts) - 1:
                node[part] = value
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
            model = _section_type(fields[part].annotation) if fields is not None else None
    return tree


BASE_KEY = "_base_"
"""Top-level key of a config file naming the file(s) it starts from (see `read_config`)."""


def read_config(path: str | Path) -> dict:
    """The raw config tree of YAML file `path`, with the files it inherits from merged in.

    A file may name base files with a top-level `_base_: other.yaml` (or a list of names, merged in order),
    each relative to the file that names it; bases may have bases of their own. The file's mappings are merged
    key by key over its bases' (recursively); any other value (a number, a string, a list) replaces the base's.
    A missing base file, a cycle of bases, or a `_base_` that is not a name or a list of names is a `ConfigError`
    naming the file that says so."""
    return _read_with_bases(Path(path), ())


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict:
    """`read_config` of `path`, reached through the files of `chain` (each naming the next as a base)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    tree = _read_yaml(path)
    if tree is None:  # nothing but blank lines and comments: refuse rather than start a default job
        raise ConfigError(
            f"{path}: empty config (no keys); write the keys to set, or '{{}}' to run with every default"
        )
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    _check_plain(tree, str(path))  # before merging: a recursive alias would make the merge loop
    if BASE_KEY not in tree:
        return tree
    names = tree.pop(BASE_KEY)
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(
            f"{path}: '{BASE_KEY}' must be a file name or a list of file names, relative to this file; "
            f"got {repr(names)[:60]}"
        )
    chain = (*chain, path.resolve())
    merged: dict = {}
    for name in names:
        base = path.parent / name
        if not base.is_file():
            raise ConfigError(f"{path}: base file '{name}' not found (looked for {base})")
        if base.resolve() in chain:
            cycle = " -> ".join(str(p) for p in (*chain[chain.index(base.resolve()) :], base.resolve()))
            raise ConfigError(f"{path}: '{BASE_KEY}' makes a cycle: {cycle}")
        merged = merge_trees(merged, _read_with_bases(base, chain))
    return merge_trees(merged, tree)


def merge_trees(base: dict, over: dict) -> dict:
    """`base` updated by `over`: mappings present in both are merged key by key, any other value of `over`
    replaces `base`'s. Neither argument is changed."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        merged[key] = merge_trees(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def load_config(path: str | Path | None, schema: type[T], overrides: list[str] | None = None) -> T:
    """Read YAML `path` with its bases (or start from defaults when None), apply overrides, validate into
    `schema`."""
    tree = read_config(path) if path is not None else {}
    return build_config(tree, schema, overrides or [], str(path) if path is not None else "config")


def build_config(tree: dict, schema: type[T], overrides: list[str], source: str) -> T:
    """Apply `overrides` to the raw `tree` read from `source` and validate it into `schema`."""
    apply_overrides(tree, overrides, schema)
    _check_plain(tree, source)
    return validate(tree, schema, source=source)


def validate(tree: dict, schema: type[T], source: str = "config") -> T:
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, schema, source)) from None


def _format_validation(exc: ValidationError, schema: type[Section], source: str) -> str:
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(schema, loc[:-1])
            hint = difflib.get_close_matches(loc[-1], valid, n=1)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            messages.append(f"unknown key '{key}'{did}; valid keys here: {', '.join(valid)}")
        else:
            messages.append(f"'{key}': {err['msg']}")
    return f"{source}: " + "; ".join(messages)


def _unknown_key(key: str, part: str, valid: list[str]) -> None:
    hint = difflib.get_close_matches(part, valid, n=1)
    did = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise ConfigError(f"unknown key '{key}'{did}; valid keys here: {', '.join(valid)}")


def _section_type(annotation: Any) -> type[Section] | None:
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def _fields_at(schema: type[Section], loc: list[str]) -> list[str]:
    model: type[Section] | None = schema
    for part in loc:
        if model is None or part not in model.model_fields:
            return []
        model = _section_type(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def dump_config(cfg: Section) -> dict:
    """A JSON-safe dict of the config, as recorded in every report (and compared when a run resumes).

    A `perf` section left at its defaults, and `tensorboard` when off, are left out, so that runs recorded before
    they existed still compare equal to the same config today."""
    tree = cfg.model_dump(mode="json")
    perf = getattr(cfg, "perf", None)
    if isinstance(perf, Section) and perf == type(perf)():
        del tree["perf"]
    if tree.get("tensorboard") is False:
        del tree["tensorboard"]
    return tree


def as_recorded(saved: dict, schema: type[Section]) -> dict:
    """`saved` (a recorded config tree) with each of `schema.recorded_defaults` it lacks set to what the run used:
    a key added since then would otherwise take today's default, which may build something else."""
    tree = dict(saved)
    for key, value in schema.recorded_defaults.items():
        *parents, leaf = key.split(".")
        node = tree
        for name in parents:
            if not isinstance(node.get(name), dict):
                break
            node[name] = node = dict(node[name])
        else:
            node.setdefault(leaf, value)
    return tree


def current_config(saved: dict, schema: type[Section], source: str) -> dict:
    """A config that a run recorded (`dump_config`'s tree) as this version writes it: keys added since then take
    their defaults (or, for `schema.recorded_defaults`, what the run used), so that a run made before a new key
    existed still compares equal. A `ConfigError` naming `source` when it no longer validates (a key removed or
    renamed since)."""
    try:
        return dump_config(validate(as_recorded(saved, schema), schema, source=source))
    except ConfigError as e:
        raise ConfigError(f"{e} (it does not validate with this version of distillkit)") from None


def check_resumable(saved: dict, cfg: Section, out: Path) -> None:
    """A `ConfigError` naming the differing keys when the config recorded by the run in `out` (`saved`, as
    `dump_config` wrote it) is not `cfg`; turning TensorBoard logging on or off does not change a run."""
    saved = current_config(saved, type(cfg), f"the config recorded in {out}")
    saved, now = ({k: v for k, v in c.items() if k != "tensorboard"} for c in (saved, dump_config(cfg)))
    if saved != now:
        raise ConfigError(
            f"--resume: {out} was run with a different config (differs at: {', '.join(_diff_keys(saved, now))}); "
            "resume with the same config, or choose another --out"
        )


def _diff_keys(a: object, b: object, prefix: str = "") -> list[str]:
    """The dotted keys at which two nested dicts differ, sorted."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [k for key in keys for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def task_of(tree: dict, overrides: Sequence[str], path: str | Path | None) -> Literal["image", "video"]:
    """The `task` of a config tree (or of a `task=` override among `overrides`): `image` (the default) or `video`;
    a `ConfigError` naming the file otherwise."""
    task = tree.get("task", "image")
    for text in overrides:
        parts, value = parse_override(text)
        if parts == ["task"]:
            task = value
    if task not in ("image", "video"):
        raise ConfigError(f"{path or 'config'}: 'task' must be 'image' or 'video', got {task!r}")
    return task


def load_task_config(
    path: str | Path | None, overrides: list[str] | None, image: type[T], video: type[U]
) -> T | U:
    """A job's config from `path` and `overrides`, in the `video` schema when its `task` is `video`, else `image`."""
    tree = read_config(path) if path is not None else {}
    schema = video if task_of(tree, overrides or [], path) == "video" else image
    return build_config(tree, schema, overrides or [], str(path) if path is not None else "config")
