"""`distillkit compress`'s config: the teacher, the student design, PBKD, baselines, cost measurement."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from distillkit.config.common import BudgetConfig, JobConfig, OptimConfig, TeacherConfig
from distillkit.config.core import Section, load_task_config
from distillkit.config.data import ImageDataConfig, VideoDataConfig


class StudentConfig(Section):
    """How student blocks are designed from teacher blocks (receptive field is always preserved)."""

    design: Literal["thin", "depthwise"] = "thin"
    """Student block design: `thin` (same convs, fewer filters) or `depthwise` (depthwise k×k + pointwise)."""
    ratio: float = Field(0.5, gt=0, le=1)
    """Fraction of the teacher's filters kept in each thinned conv. With `plain: internal` (the default) a block's
    last conv keeps all of them, so a block of one conv is not thinned (it becomes a copy) and the student saves
    fewer MACs than with `restore` at the same ratio: `macs_reduction` asks for the saving instead."""
    macs_reduction: float | None = Field(None, gt=1, le=1e6)
    """Ask for this many times fewer MACs than the teacher instead of a ratio: the ratio becomes the largest
    k/64 whose student meets it (recorded in report.json as `student_ratio`); an unreachable target fails
    before the teacher trains."""
    init: Literal["auto", "random", "inherit"] = "auto"
    """`inherit`: start each thinned conv from the teacher's filters of largest L1 norm (thin design only);
    `random`: fresh initialisation; `auto`: inherit for the thin design, random for depthwise."""
    residual: Literal["internal", "branch"] = "internal"
    """Residual units (ResNet BasicBlock/Bottleneck): `internal` thins only the branch's internal channels, its
    last conv keeping the unit's width (no conv added; Li et al., ICLR 2017); `branch` thins every conv of the
    branch and appends ReLU + a 1×1 conv + BN back to the unit's width."""
    copy_if_costlier: bool = True
    """A block whose student would have no fewer MACs than the teacher block (a block of one conv with `plain:
    internal`; with `restore`, a ResNet stem on grey images, whose thin conv plus the 1×1 restore cost more than
    the teacher's conv) gets a copy of the teacher block instead (its weights with `inherit`, fresh ones with
    `random`)."""
    plain: Literal["restore", "internal"] = "internal"
    """How a block's output width comes back outside residual units: `internal` (the default), the block's last
    conv keeps the teacher's width, reading the thinned channels (no conv added; with `inherit` the student block
    starts as the teacher block without its weakest internal filters); `restore`, a final 1×1 conv + BN + ReLU
    (the paper's design; the 1×1 starts random). At equal MACs `internal` was better on both VGG configs measured
    (docs/results.md)."""
    fast_pool: bool = True
    """Max-pooling layers whose windows tile their input (kernel = stride) run, when no gradient is asked for, as
    the maximum of strided views: the same values as PyTorch's NCHW CPU kernel, many times faster on small maps
    (`distillkit.models.pooling`). Training and gradients are unchanged."""
    channel_multiple: int = Field(1, ge=1, le=1024)
    """Thinned convs wider than this keep a whole multiple of it (rounded down, at least one) rather than `ratio` ×
    their filters rounded; narrower convs thin as before. CPU conv kernels compute output channels in blocks (16
    with AVX-512 oneDNN), so a width between two multiples takes the time of the larger one: 16 trades a little
    of the MACs saving at a ratio for time (`macs_reduction` finds the ratio as usual). 1: off."""


class FinetuneConfig(Section):
    """Optional last stage: the whole student trained with KD from the teacher."""

    enabled: bool = False
    """Run the final whole-student KD fine-tune."""
    budget: BudgetConfig = BudgetConfig(epochs=1)
    """Fine-tune length."""
    optim: OptimConfig = OptimConfig(lr=0.01)
    """Fine-tune optimiser."""
    alpha: float = Field(0.5, ge=0, le=1)
    """Weight of the KD term: (1 − α)·CE + α·KD."""
    temperature: float = Field(4.0, gt=0)
    """KD temperature."""


class PBKDConfig(Section):
    """Progressive blockwise distillation (Wang et al., IJCAI 2018)."""

    order: Literal["bottom_up", "top_down"] | list[int] = "bottom_up"
    """Order in which blocks are replaced, or an explicit list of block indices."""
    stage: BudgetConfig = BudgetConfig(epochs=1.5)
    """Length of each stage (the paper reports about 1.5 epochs)."""
    optim: OptimConfig = OptimConfig()
    """Optimiser of each stage."""
    local_weight: float = Field(1.0, ge=0)
    """λ of the local loss λ·½·mean((S_k(h) − T_k(h))²)."""
    kd_weight: float = Field(0.0, ge=0)
    """Weight w of a logit-KD term in every stage's loss, CE + λ·local + w·KD(Aᵏ(x), teacher(x)) at
    `kd_temperature` (costs a teacher forward pass per sample); 0: none, the paper's stage loss."""
    kd_temperature: float = Field(4.0, gt=0)
    """Temperature of the stage KD term."""
    stage_norm: Literal["batch", "precise"] = "batch"
    """Batch-norm statistics of the block a stage trains. `batch`: the running averages kept while it trains;
    `precise`: estimated afresh after the stage on `stage_norm_batches` training batches, with the weights the
    block ends with (precise BN, Wu & Johnson 2021), so that they match the block that is evaluated."""
    stage_norm_batches: int = Field(20, ge=1)
    """Training batches that estimate the block's batch-norm statistics with `stage_norm: precise`."""
    copies: Literal["train", "keep"] = "train"
    """A student block that is its teacher block exactly (`student.copy_if_costlier` with inherited weights):
    `train` gives it its stage like any other block; `keep` keeps it as it is and skips its stage (it has
    nothing to imitate), so PBKD, and the baselines with it, train that many steps fewer."""
    finetune: FinetuneConfig = FinetuneConfig()
    """Optional final KD fine-tune of the whole student."""


class BaselineConfig(Section):
    """Baselines trained on the same student architecture with the same number of steps as PBKD."""

    methods: list[Literal["scratch", "kd", "kd_inherit", "fitnets", "at"]] = []
    """Baselines to train on the same student architecture with PBKD's number of steps; each starts from fresh
    weights, except `kd_inherit`: KD from PBKD's own starting student (`student.init`), which separates the
    blockwise stages from the inherited weights."""
    optim: OptimConfig = OptimConfig()
    """Optimiser of the baselines."""
    kd_alpha: float = Field(0.9, ge=0, le=1)
    """KD baseline: weight of the KD term."""
    kd_temperature: float = Field(4.0, gt=0)
    """KD baseline: temperature."""
    fitnets_weight: float = Field(1.0, ge=0)
    """FitNets baseline: weight of the hint (MSE at the middle block)."""
    at_weight: float = Field(1000.0, ge=0)
    """AT baseline: β of the attention-transfer term (Zagoruyko & Komodakis use 1000)."""


class ProfileConfig(Section):
    """Cost measurement of teacher and student."""

    latency_batches: list[int] = [1, 64]
    """Batch sizes at which latency is measured."""
    latency_repeats: int = Field(30, ge=1)
    """Timed runs per latency measurement (the median is reported)."""
    latency_threads: int | None = Field(None, ge=1)
    """CPU threads for latency (default: torch's current setting)."""


class CompressConfig(JobConfig):
    """`distillkit compress`: teacher → student by PBKD, with optional baselines."""

    task: Literal["image"] = "image"
    """`image` for this schema; a config with `task: video` is a `VideoCompressConfig`."""
    data: ImageDataConfig = ImageDataConfig()
    """Image data set."""
    teacher: TeacherConfig = TeacherConfig()
    """The network to compress."""
    blocks: Literal["auto"] | list[str] = "auto"
    """Block boundaries: `auto` (VGG: after each max-pool; ResNet: stem, layer1..4; CIFAR ResNet: stem,
    layer1..3) or module names, each ending a block."""
    student: StudentConfig = StudentConfig()
    """Student block design."""
    recorded_defaults: ClassVar[dict[str, Any]] = {"student.plain": "restore"}
    """Runs recorded before `student.plain` existed built their plain blocks with the 1×1 restore."""
    pbkd: PBKDConfig = PBKDConfig()
    """Progressive training."""
    baselines: BaselineConfig = BaselineConfig()
    """Baselines on the same student."""
    profile: ProfileConfig = ProfileConfig()
    """Cost measurement."""
    export_onnx: bool = True
    """Write student.onnx (checked with onnxruntime)."""


VIDEO_OPTIM = OptimConfig(name="adamw", lr=0.002, weight_decay=1e-4)
"""The video sections' default optimiser: AdamW at lr 0.002, as the video train and incremental presets use."""


class VideoFinetuneConfig(FinetuneConfig):
    """Optional last stage: the whole student trained with KD from the teacher (AdamW by default)."""

    optim: OptimConfig = VIDEO_OPTIM
    """Fine-tune optimiser."""


class VideoPBKDConfig(PBKDConfig):
    """Progressive blockwise distillation of a video network (AdamW by default)."""

    optim: OptimConfig = VIDEO_OPTIM
    """Optimiser of each stage."""
    finetune: VideoFinetuneConfig = VideoFinetuneConfig()
    """Optional final KD fine-tune of the whole student."""


class VideoBaselineConfig(BaselineConfig):
    """Baselines on the same student with PBKD's number of steps (AdamW by default; `at`: attention maps of each
    frame)."""

    optim: OptimConfig = VIDEO_OPTIM
    """Optimiser of the baselines."""


class VideoTeacherConfig(Section):
    """The video network to compress: the trained model of a finished run."""

    from_run: Path
    """The --out folder of a finished `distillkit train` run with `task: video` (its model.pt), or of a finished
    `distillkit incremental` run (the model after its last step, classifying all the classes it has seen)."""
    train_on: Literal["all", "memory"] = "all"
    """What the student trains on when the teacher is an incremental run's: `all` (every training video of the
    classes it has seen) or `memory` (only the exemplars of the run's memory after its last step, replayed as the
    run replays them: the data the class-incremental setting keeps). A train run's teacher takes `all`."""


class VideoCompressConfig(JobConfig):
    """`distillkit compress` with `task: video`: a TSM/TSN video classifier → student by PBKD, with optional baselines."""

    task: Literal["video"] = "video"
    """Must be `video`."""
    data: VideoDataConfig = VideoDataConfig()
    """Video data set: the teacher run's (its classes and `num_segments`). With an incremental teacher, the
    student is tested on all the videos of the classes that run has seen, labels in its class order, and trains on
    them or on the run's memory (`teacher.train_on`)."""
    teacher: VideoTeacherConfig
    """The network to compress."""
    blocks: Literal["auto"] | list[str] = "auto"
    """Block boundaries in the video network's 2D part: `auto` (the stem, then each stage `layer1`..) or module
    names, each ending a block: a stem layer, a stage or a residual unit (`layer2.0`)."""
    student: StudentConfig = StudentConfig()
    """Student block design (per frame; the temporal shift is kept)."""
    recorded_defaults: ClassVar[dict[str, Any]] = {"student.plain": "restore"}
    """Runs recorded before `student.plain` existed built their plain blocks with the 1×1 restore."""
    pbkd: VideoPBKDConfig = VideoPBKDConfig()
    """Progressive training."""
    baselines: VideoBaselineConfig = VideoBaselineConfig()
    """Baselines on the same student."""
    profile: ProfileConfig = ProfileConfig(latency_batches=[16], latency_repeats=10)
    """Cost measurement (per clip; clips/s = batch / latency, on the CPU, for every batch in `latency_batches`)."""
    export_onnx: bool = True
    """Write student.onnx (clips (N, T, C, H, W) in, checked with onnxruntime)."""


def load_compress_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> CompressConfig | VideoCompressConfig:
    """`distillkit compress`'s config: a `VideoCompressConfig` when its `task` (or a `task=` override) is `video`."""
    return load_task_config(path, overrides, CompressConfig, VideoCompressConfig)
