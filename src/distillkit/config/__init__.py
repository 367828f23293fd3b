"""Typed configs: YAML in, `--set a.b=c` overrides, validated by pydantic with one-line errors.

The loader and `Section` (core.py), the sections several jobs share and `JobConfig`, the base of every job's
config (common.py), the data sets' sections (data.py), and one module per job's schema (compress.py, train.py;
the class-incremental job's is `distillkit.incremental.config`). Every name is importable from here.
"""

from distillkit.config.common import (
    MAX_EPOCHS,
    MAX_STEPS,
    BudgetConfig,
    Device,
    ImageArch,
    JobConfig,
    ModelConfig,
    OptimConfig,
    PerformanceConfig,
    TeacherConfig,
    VideoArch,
    VideoModelConfig,
)
from distillkit.config.compress import (
    BaselineConfig,
    CompressConfig,
    FinetuneConfig,
    PBKDConfig,
    ProfileConfig,
    StudentConfig,
)
from distillkit.config.core import (
    BASE_KEY,
    Section,
    _diff_keys,
    _section_type,
    apply_overrides,
    build_config,
    check_resumable,
    current_config,
    dump_config,
    load_config,
    merge_trees,
    parse_override,
    read_config,
    validate,
)
from distillkit.config.data import (
    ImageDataConfig,
    SyntheticImagesConfig,
    SyntheticVideosConfig,
    VideoDataConfig,
    VideoSourceName,
)
from distillkit.config.train import TrainConfig, VideoTrainConfig, load_train_config

__all__ = [
    "BASE_KEY",
    "MAX_EPOCHS",
    "MAX_STEPS",
    "BaselineConfig",
    "BudgetConfig",
    "CompressConfig",
    "Device",
    "FinetuneConfig",
    "ImageArch",
    "ImageDataConfig",
    "JobConfig",
    "ModelConfig",
    "OptimConfig",
    "PBKDConfig",
    "PerformanceConfig",
    "ProfileConfig",
    "Section",
    "StudentConfig",
    "SyntheticImagesConfig",
    "SyntheticVideosConfig",
    "TeacherConfig",
    "TrainConfig",
    "VideoArch",
    "VideoDataConfig",
    "VideoModelConfig",
    "VideoSourceName",
    "VideoTrainConfig",
    "_diff_keys",
    "_section_type",
    "apply_overrides",
    "build_config",
    "check_resumable",
    "current_config",
    "dump_config",
    "load_config",
    "load_train_config",
    "merge_trees",
    "parse_override",
    "read_config",
    "validate",
]
