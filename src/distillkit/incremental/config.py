"""`distillkit incremental`'s config: data, backbone, scenario, memory, training per step, the method."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from distillkit.config import (
    BudgetConfig,
    JobConfig,
    OptimConfig,
    Section,
    VideoDataConfig,
    VideoModelConfig,
)


class ScenarioConfig(Section):
    """Which classes arrive when: B base classes, then steps of K classes, in an order drawn from a seed."""

    preset: str | None = None
    """A named protocol (`tcd_ucf101`, `tcd_hmdb51`, `tcd_ssv2`, `vclimb_*`, `synthetic_motion`); overrides
    base/increment/num_steps."""
    base: int = Field(4, ge=1)
    """Classes of the first (base) step."""
    increment: int = Field(4, ge=1)
    """New classes per incremental step."""
    num_steps: int | None = Field(None, ge=0)
    """Incremental steps after the base one (None: as many as the data allows)."""
    order_seed: int | None = 1993
    """Seed of the class order (PyCIL's 1993 by default; null: classes in label order)."""
    order: list[int] | None = None
    """An explicit class order (original labels); overrides `order_seed`."""


class MemoryConfig(Section):
    """Exemplar memory: a total budget counted in frames, filled with herding or random picks."""

    budget_frames: int = Field(0, ge=0)
    """Total frames the memory may hold (0: no memory), at the videos' size: a method that stores smaller frames
    (civc's `exemplar_scale` s) holds ⌊budget / s²⌋ of them, counted by their pixels."""
    per_class_frames: int | None = Field(None, ge=1)
    """Optional cap per class, in frames."""
    selection: Literal["herding", "random"] = "herding"
    """How exemplar videos are picked per class."""
    jpeg_quality: int = Field(90, ge=1, le=100)
    """JPEG quality of stored frames."""
    jpeg_subsampling: Literal["4:4:4", "4:2:0"] = "4:4:4"
    """Chroma subsampling of stored frames. 4:4:4 (the default) keeps colour at every pixel; 4:2:0, JPEG's
    usual setting and this memory's before the option, halves colour resolution each way, which at the benchmark's
    32×32 frames cost the base model 1.7 points on its classes' test clips of the appearance videos at full size
    and 4.3 at exemplar_scale 0.7 (22×22), for 6–11 % fewer bytes (docs/results.md)."""
    replay: Literal["hold", "interpolate"] = "hold"
    """How an exemplar of fewer key-frames than `data.num_segments` is replayed as a clip: `hold` shows at each
    position the nearest stored frame (the object holds still, then jumps); `interpolate` blends the two stored
    frames around it. Used for training replay, class-balanced fine-tuning and class means alike."""


class TemporalConsistencyConfig(Section):
    """Temporal consistency (TC, after vCLIMB, Villa et al., CVPR 2022): cross-entropy also on down-sampled copies
    of the new classes' clips, replayed as the memory replays key-frames, so that a sparse clip is not a cue for
    "old class". Usable with any method; one forward pass over the batch and its copies."""

    weight: float = Field(0.0, ge=0)
    """Weight of the cross-entropy on the down-sampled copies (0: off; vCLIMB uses 0.5)."""
    frames: int | None = Field(None, ge=1)
    """Frames each copy keeps, evenly spaced with a random phase (None: the method's key-frames per exemplar, or
    half of `data.num_segments` when it stores whole clips)."""


class StepTrainingConfig(Section):
    """How long and how each step trains."""

    base: BudgetConfig = BudgetConfig(epochs=10)
    """Training length of the base step."""
    step: BudgetConfig = BudgetConfig(epochs=10)
    """Training length of every incremental step."""
    optim: OptimConfig = OptimConfig(lr=0.01, weight_decay=1e-4)
    """Optimiser of the base step."""
    step_optim: OptimConfig | None = None
    """Optimiser of incremental steps (None: the same as `optim`)."""
    temporal_consistency: TemporalConsistencyConfig = TemporalConsistencyConfig()
    """Cross-entropy on down-sampled copies of new clips in incremental steps (off by default)."""
    base_model: Path | None = None
    """Reuse the base-step model of another run (its folder) instead of training one, so that methods compared
    side by side start from the same model. That run must have the same data, model, scenario, seed, base
    training and head type (linear or cosine); the memory and evaluation of the base step are still this run's."""


class MethodConfig(Section):
    """The class-incremental method, by registered name, and its own options (checked by the method)."""

    name: str = "finetune"
    """Registered method: finetune, joint, lwf, icarl, lucir, podnet, civc (`distillkit methods`; their options:
    `distillkit methods --options`, docs/methods.md)."""
    options: dict[str, Any] = {}
    """The method's options; each method documents and validates its own."""


class EvalConfig(Section):
    """Evaluation after every step."""

    nme: bool | None = None
    """Also evaluate the nearest-mean-of-exemplars classifier (None: when the method keeps a memory)."""


class IncrementalConfig(JobConfig):
    """`distillkit incremental`: learn classes step by step, evaluating all classes seen after each step."""

    data: VideoDataConfig = VideoDataConfig()
    """Video data set (all classes; the scenario picks them step by step)."""
    model: VideoModelConfig = VideoModelConfig()
    """Backbone (TSM or TSN ResNet)."""
    scenario: ScenarioConfig = ScenarioConfig()
    """Class order and steps."""
    memory: MemoryConfig = MemoryConfig()
    """Exemplar memory."""
    train: StepTrainingConfig = StepTrainingConfig()
    """Training per step."""
    method: MethodConfig = MethodConfig()
    """The method."""
    eval: EvalConfig = EvalConfig()
    """Evaluation."""
