"""Class-incremental methods, one module each, found by name in `METHODS`."""

from distillkit.incremental.methods import civc, finetune, icarl, joint, lucir, lwf, podnet, tcd  # noqa: F401
from distillkit.incremental.methods.base import (
    METHODS,
    Method,
    Outputs,
    StepContext,
    StepTools,
    VideoBackbone,
    build_method,
    register,
)

__all__ = [
    "METHODS", "Method", "Outputs", "StepContext", "StepTools", "VideoBackbone", "build_method", "register"
]  # fmt: skip
