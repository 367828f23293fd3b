"""The sections several jobs share (optimiser, training length, speed options, models) and `JobConfig`, the base
of every job's config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from distillkit.config.core import Section
from distillkit.errors import ConfigError


def _check_device(v: str) -> str:
    if v not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", v):
        raise ValueError("device must be 'auto', 'cpu' or 'cuda[:N]'")
    return v


Device = Annotated[str, AfterValidator(_check_device)]


def _check_backbone(name: str, task: Literal["image", "video"]) -> str:
    from distillkit.models import get_backbone  # imports torch: only once a config names a backbone

    try:
        get_backbone(name, task)
    except ConfigError as exc:  # its text as pydantic's message, without a "Value error," prefix
        raise PydanticCustomError("unknown_backbone", "{message}", {"message": str(exc)}) from None
    return name


def _image_backbone(name: str) -> str:
    return _check_backbone(name, "image")


def _video_backbone(name: str) -> str:
    return _check_backbone(name, "video")


ImageArch = Annotated[str, AfterValidator(_image_backbone)]
"""The name of a backbone registered for images (`distillkit.models.register_backbone`)."""
VideoArch = Annotated[str, AfterValidator(_video_backbone)]
"""The name of a backbone registered for videos (`distillkit.models.register_backbone`)."""


class OptimConfig(Section):
    """Optimiser and schedule for one training run (SGD with momentum or AdamW, cosine decay)."""

    name: Literal["sgd", "adamw"] = "sgd"
    """Optimiser: SGD with Nesterov momentum, or AdamW."""
    lr: float = Field(0.05, gt=0)
    """Base learning rate."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum."""
    weight_decay: float = Field(5e-4, ge=0)
    """Weight decay (L2 for SGD, decoupled for AdamW)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule over the run, after warm-up."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up steps."""


MAX_EPOCHS, MAX_STEPS = 10**6, 10**9  # far beyond any real run; larger values are typos (or `inf`)


class BudgetConfig(Section):
    """Length of a training run: `epochs` (may be fractional) or `steps`; steps wins when both are set."""

    epochs: float | None = Field(None, gt=0, le=MAX_EPOCHS)
    """Length in passes over the training set (fractions allowed; at most a million)."""
    steps: int | None = Field(None, gt=0, le=MAX_STEPS)
    """Length in optimiser steps; overrides `epochs` (at most a billion)."""

    def num_steps(self, batches_per_epoch: int) -> int:
        if self.steps is not None:
            return self.steps
        if self.epochs is None:
            raise ConfigError("a training budget needs 'epochs' or 'steps'")
        return max(1, round(self.epochs * batches_per_epoch))


class PerformanceConfig(Section):
    """Speed options of the training loop (`engine.loop.fit`), for every training run of a job. All off by
    default: plain fp32 training, bit for bit as without this section. They change training steps only;
    evaluation, feature extraction, profiling and export run as before."""

    precision: Literal["fp32", "bf16", "fp16", "fp64"] = "fp32"
    """Autocast of each training step's forward pass and loss: `fp32` (none), `bf16` (CPU, or a CUDA GPU that
    supports it) or `fp16` (CUDA only, with a gradient scaler that skips steps whose gradients overflow; refused on
    CPU). Weights, gradients and optimiser state stay fp32; losses differ from fp32 by rounding. `fp64` is not a
    speed option but a checking one: the whole job (models, inputs, evaluation, optimiser state) computes in
    float64, several times slower. Use it to check that a change of process count or summation order changes
    results by rounding only: in float32 that rounding can flip a ReLU or max-pool decision that sits at a tie,
    and which ties flip depends on the CPU's kernels."""
    channels_last: bool = False
    """Store the trained 4-D (convolution) weights and every 4-D input batch channels-last (NHWC), which GPU
    tensor cores convolve fastest. 5-D video clips are passed on as they are: their frames become channels-last at
    the first convolution, whose weights are. Values do not change, only their layout; the weights stay
    channels-last after training (checkpoints load into any model). A CUDA option: on CPU it is slower, as its
    training steps run without oneDNN, whose channels-last backward of some strided 1×1 convolutions is broken
    (oneDNN issue 6035)."""
    compile: bool = False
    """`torch.compile` each training step's forward pass and loss (the objective's loss, the model's forward
    included). Every training run compiles anew, so its first steps are slow (tens of seconds, more on CPU);
    when torch cannot compile here, the run warns once and trains uncompiled. On CPU its steps run without oneDNN
    too (the compiled code may make activations channels-last)."""


class ModelConfig(Section):
    """A classification network built by the toolkit (see `distillkit.models.build_model`)."""

    arch: ImageArch = "vgg16"
    """Architecture: vgg11/13/16/19 (batch norm), resnet18/34/50 (torchvision), resnet20/32/44/56 (the CIFAR
    ResNets of He et al., 3 stages; `small_input` does not apply), or any other backbone registered for images
    (`distillkit.models.register_backbone`)."""
    width: float = Field(1.0, gt=0)
    """Channel width multiplier."""
    checkpoint: Path | None = None
    """Local state dict to load (weights_only); when set, no training is done."""
    small_input: bool = True
    """CIFAR-style network for small inputs (3×3 stem / global-pool head) instead of ImageNet-style."""


# ------------------------------------------------------------------------------------------------- compress job
class TeacherConfig(ModelConfig):
    """The teacher: loaded from `checkpoint` if given, else trained with `train` first."""

    train: BudgetConfig = BudgetConfig(epochs=5)
    """Training length when no checkpoint is given."""
    optim: OptimConfig = OptimConfig()
    """Optimiser for training it."""


class VideoModelConfig(Section):
    """A TSM (temporal shift) or TSN (no shift) ResNet for clips (images are one-frame clips)."""

    arch: VideoArch = "resnet18"
    """torchvision ResNet (resnet18/34/50), CIFAR ResNet of He et al. with 3 stages (resnet20/32/44/56: the
    backbone of image class-incremental papers; `small_input` does not apply), or any other backbone registered
    for videos (`distillkit.models.register_backbone`)."""
    width: float = Field(1.0, gt=0)
    """Channel width multiplier (1.0: torchvision's ResNet)."""
    shift: bool = True
    """Temporal shift in every residual branch (TSM); false gives TSN with frame averaging."""
    shift_div: int = Field(8, ge=2)
    """1/shift_div of the channels shift forward in time, as many backward."""
    small_input: bool = True
    """3×3 stride-1 stem without max-pool, for small frames; false: torchvision's 7×7 stem (ImageNet weights)."""
    pretrained: Path | None = None
    """Local torchvision ResNet state dict to start the backbone from (e.g. ImageNet weights)."""
    checkpoint: Path | None = None
    """A trained video model to load instead of training (its `model.pt`)."""


class JobConfig(Section):
    """What every job's config holds besides its own sections: seed, device, speed options, TensorBoard."""

    seed: int = 0
    """Seed of initialisation, data order, sampling and subsets."""
    device: Device = "auto"
    """`auto` (CUDA when present, else CPU), `cpu` or `cuda[:N]`."""
    perf: PerformanceConfig = PerformanceConfig()
    """Mixed precision, channels-last and `torch.compile` for every training run of the job (default: all off)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to OUT/tensorboard (training losses and learning rate of every
    training run, and the job's accuracies); needs the `tensorboard` package (`distillkit[tensorboard]`)."""
