"""distillkit: knowledge distillation for vision.

The jobs as Python functions live in `distillkit.api` (`api.train`, `api.compress`, `api.incremental`; not bound
here, where `train`, `compress` and `incremental` name the subpackages). The loaders and result types are
re-exported here, imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = (
    "ClassifierFigures",
    "CompressResult",
    "IncrementalResult",
    "TrainResult",
    "load_incremental_model",
    "load_model",
    "load_student",
)
__all__ = ["api", *_API]


def __getattr__(name: str):
    if name in _API or name == "api":
        import importlib

        api = importlib.import_module("distillkit.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'distillkit' has no attribute {name!r}")
