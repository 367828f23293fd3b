"""Errors distillkit raises on bad input: each carries a one-line, user-facing cause."""


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
