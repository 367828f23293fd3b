"""distillkit: knowledge distillation for vision."""

__version__ = "0.1.0"
