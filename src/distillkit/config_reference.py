"""A Markdown reference of every config key, generated from the typed configs."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic_core import PydanticUndefined

from distillkit.config import JobConfig, Section, _section_type

BASE_NOTE = (
    "A config file may start from others: a top-level `_base_: base.yaml` (or a list of files, merged in order), "
    "relative to the file that names it; the file's mappings are merged key by key over its bases', any other value "
    "(a number, a string, a list) replaces the base's. Bases may have bases. `--set` applies after the merge "
    '(docs/running.md, "Configs").'
)
"""What every reference says of `_base_`, the one key of a config file that is not a config key."""


LAST = ("perf", "tensorboard")
"""Keys of every job's config (`JobConfig`) that its reference lists after the job's own sections."""


def reference(schema: type[Section]) -> str:
    """Rows `key | type | default | meaning` for every key, nested sections flattened with dots."""
    lines = [
        f"### `{schema.__name__}`",
        "",
        (schema.__doc__ or "").strip(),
        "",
        BASE_NOTE,
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    _rows(schema, "", lines)
    return "\n".join(lines) + "\n"


def method_options_reference() -> str:
    """The options of every registered class-incremental method (`method.options.*`), one table each."""
    from distillkit.incremental.methods import METHODS

    lines = ["# Class-incremental methods and their options", ""]
    for name, cls in METHODS.items():
        lines += [f"## `{name}`", "", inspect.cleandoc(cls.__doc__ or ""), ""]
        if not cls.Options.model_fields:
            lines += ["No options.", ""]
            continue
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        _rows(cls.Options, "method.options.", lines)
        lines.append("")
    return "\n".join(lines)


def _rows(schema: type[Section], prefix: str, lines: list[str], given: Section | None = None) -> None:
    """Rows of `schema`'s keys; `given`: the section's default value where its field sets one (whose values are
    the defaults, e.g. a fine-tune's `OptimConfig(lr=0.01)`), else its class's defaults."""
    fields = schema.model_fields
    for name in sorted(fields, key=lambda n: issubclass(schema, JobConfig) and n in LAST):
        field, key = fields[name], prefix + name
        section = _section_type(field.annotation)
        if section is not None and field.annotation is section:
            lines.append(f"| `{key}` | section | | {_cell(field.description or section.__doc__)} |")
            inner = getattr(given, name) if given is not None else field.default
            _rows(section, key + ".", lines, inner if isinstance(inner, Section) else None)
            continue
        default: Any = getattr(given, name) if given is not None else field.default
        if default is PydanticUndefined:
            default = "required"
        elif isinstance(default, Section):
            default = default.model_dump(mode="json")
        lines.append(
            f"| `{key}` | {_type_name(field.annotation)} | `{default}` | {_cell(field.description)} |"
        )


def _cell(text: str | None) -> str:
    """A docstring as one table cell: on one line (a line break would end the Markdown table row)."""
    return " ".join((text or "").split())


def _type_name(annotation: Any) -> str:
    """The annotation as written in a schema: classes by their bare name (`Path`, `OptimConfig`)."""
    text = re.sub(r"\b(typing|pathlib|distillkit(\.\w+)*)\.", "", str(annotation)).replace("|", "\\|")
    return text.replace("<class '", "").replace("'>", "")
