"""Errors distillkit raises on bad input: each carries a one-line, user-facing cause."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class DistillkitError(Exception):
    """Base class: the CLI prints these as a single line and exits with status 2."""


class ConfigError(DistillkitError):
    """A config file or override is invalid (unknown key, wrong type, bad value)."""


class DataError(DistillkitError):
    """A dataset path, file or annotation line cannot be used."""


class CheckpointError(DistillkitError):
    """A checkpoint is missing or does not match the model it is loaded into."""


class SplitError(DistillkitError):
    """A model cannot be cut into blocks at the requested boundaries."""


def read_text_file(
    path: Path,
    error: type[DistillkitError],
    encoding: str = "utf-8-sig",
    reasons: Mapping[type[OSError], str] | None = None,
) -> str:
    """The text of `path`, else an `error` starting with the path: `reasons` give the cause of some kinds of
    `OSError` (``{FileNotFoundError: "file not found"}``), the others say what the system said."""
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        for kind, reason in (reasons or {}).items():
            if isinstance(exc, kind):
                raise error(f"{path}: {reason}") from None
        raise error(f"{path}: cannot read ({exc.__class__.__name__}: {exc.strerror})") from None
