"""Typed configs: YAML in, `--set a.b=c` overrides, validated by pydantic with one-line errors.

Every config section is a `Section` (pydantic model that forbids unknown keys). `load_config` reads a YAML file,
applies overrides and validates; a mistyped key fails before any work, naming the key and the valid ones.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from distillkit.errors import ConfigError

T = TypeVar("T", bound="Section")


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


def _video_source(name: str) -> str:
    from distillkit.data.videos import get_source  # imports torch: only once a config names a video source

    try:
        get_source(name)
    except ConfigError as exc:
        raise PydanticCustomError("unknown_video_source", "{message}", {"message": str(exc)}) from None
    return name


ImageArch = Annotated[str, AfterValidator(_image_backbone)]
"""The name of a backbone registered for images (`distillkit.models.register_backbone`)."""
VideoArch = Annotated[str, AfterValidator(_video_backbone)]
"""The name of a backbone registered for videos (`distillkit.models.register_backbone`)."""
VideoSourceName = Annotated[str, AfterValidator(_video_source)]
"""The name of a video source (`distillkit.data.videos.register_source`) or of an annotation format that lists
videos (`distillkit.data.video.register_format`, `list_source`)."""


class Section(BaseModel):
    """Base of every config block: unknown keys are errors, assignments are validated, floats must be finite
    (``.inf`` and ``.nan`` are refused naming the key)."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


# ----------------------------------------------------------------------------------------------- shared blocks
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


class SyntheticImagesConfig(Section):
    """The embedded synthetic image task (deterministic from `seed`)."""

    num_classes: int = Field(10, ge=2, le=10)
    """Number of shape classes (at most 10)."""
    train_per_class: int = Field(300, ge=1)
    """Training images per class."""
    test_per_class: int = Field(100, ge=1)
    """Test images per class."""
    channels: Literal[1, 3] = 3
    """Grey (1) or colour (3) images."""


class ImageDataConfig(Section):
    """An image classification data set and its loader."""

    name: Literal["synthetic", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagefolder"] = "synthetic"
    """Data set: embedded synthetic, MNIST-family IDX files, CIFAR python pickles or an ImageFolder tree."""
    root: Path | None = None
    """Folder of the data set files (fashion_mnist defaults to /usr/share/datasets/fashion-mnist)."""
    image_size: int = Field(32, ge=8)
    """Side of the square network input; 28×28 MNIST-family images are zero-padded to 32."""
    train_subset: int | None = Field(None, ge=1)
    """Use a class-balanced subset of this many training images."""
    test_subset: int | None = Field(None, ge=1)
    """Use a class-balanced subset of this many test images."""
    augment: bool = False
    """Random crop (4-pixel padding) and, except for MNIST-family, horizontal flip."""
    batch_size: int = Field(64, ge=1)
    """Training batch size."""
    eval_batch_size: int = Field(256, ge=1)
    """Evaluation batch size."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes."""
    synthetic: SyntheticImagesConfig = SyntheticImagesConfig()
    """Settings of the synthetic data set."""


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


class StudentConfig(Section):
    """How student blocks are designed from teacher blocks (receptive field is always preserved)."""

    design: Literal["thin", "depthwise"] = "thin"
    """Student block design: `thin` (same convs, fewer filters) or `depthwise` (depthwise k×k + pointwise)."""
    ratio: float = Field(0.5, gt=0, le=1)
    """Fraction of the teacher's filters kept in each student conv."""
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
    """A block whose student would have no fewer MACs than the teacher block (a ResNet stem on grey images: one
    thin conv plus the 1×1 restore cost more than the teacher's conv) gets a copy of the teacher block instead
    (its weights with `inherit`, fresh ones with `random`)."""


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
    finetune: FinetuneConfig = FinetuneConfig()
    """Optional final KD fine-tune of the whole student."""


class BaselineConfig(Section):
    """Baselines trained on the same student architecture with the same number of steps as PBKD."""

    methods: list[Literal["scratch", "kd", "fitnets", "at"]] = []
    """Baselines to train on the same student architecture with PBKD's number of steps."""
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


class CompressConfig(Section):
    """`distillkit compress`: teacher → student by PBKD, with optional baselines."""

    seed: int = 0
    """Seed of data order, initialisation and subsets."""
    device: Device = "auto"
    """`auto` (CUDA when present, else CPU), `cpu` or `cuda[:N]`."""
    data: ImageDataConfig = ImageDataConfig()
    """Image data set."""
    teacher: TeacherConfig = TeacherConfig()
    """The network to compress."""
    blocks: Literal["auto"] | list[str] = "auto"
    """Block boundaries: `auto` (VGG: after each max-pool; ResNet: stem, layer1..4; CIFAR ResNet: stem,
    layer1..3) or module names, each ending a block."""
    student: StudentConfig = StudentConfig()
    """Student block design."""
    pbkd: PBKDConfig = PBKDConfig()
    """Progressive training."""
    baselines: BaselineConfig = BaselineConfig()
    """Baselines on the same student."""
    profile: ProfileConfig = ProfileConfig()
    """Cost measurement."""
    export_onnx: bool = True
    """Write student.onnx (checked with onnxruntime)."""
    perf: PerformanceConfig = PerformanceConfig()
    """Mixed precision, channels-last and `torch.compile` for every training run of the job (default: all off)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to OUT/tensorboard (training losses and learning rate of every
    training run, and the job's accuracies); needs the `tensorboard` package (`distillkit[tensorboard]`)."""


class TrainConfig(Section):
    """`distillkit train`: train one classifier (the teacher, or any model) and evaluate it."""

    task: Literal["image"] = "image"
    """`image` for this schema; a config with `task: video` is a `VideoTrainConfig`."""
    seed: int = 0
    """Seed of data order, initialisation and subsets."""
    device: Device = "auto"
    """`auto` (CUDA when present, else CPU), `cpu` or `cuda[:N]`."""
    data: ImageDataConfig = ImageDataConfig()
    """Image data set."""
    model: TeacherConfig = TeacherConfig()
    """The network to train."""
    perf: PerformanceConfig = PerformanceConfig()
    """Mixed precision, channels-last and `torch.compile` for every training run of the job (default: all off)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to OUT/tensorboard (training losses and learning rate of every
    training run, and the job's accuracies); needs the `tensorboard` package (`distillkit[tensorboard]`)."""


# ------------------------------------------------------------------------------------------------------- video
class SyntheticVideosConfig(Section):
    """The embedded synthetic video benchmark, generated in memory (docs/design.md, "Data")."""

    preset: Literal["motion", "appearance", "mixed"] = "motion"
    """`motion`: the class is the motion (SSv2-like); `appearance`: the class is what is seen (Kinetics-like);
    `mixed`: the class is a motion and a colour, so both are needed to tell it."""
    num_classes: int = Field(6, ge=2)
    """Number of classes (at most 18 for motion and mixed, 24 for appearance)."""
    train_per_class: int = Field(60, ge=1)
    """Training videos per class."""
    test_per_class: int = Field(20, ge=1)
    """Test videos per class (the last ones of each class, as `distillkit data synth` splits them)."""
    frames: int = Field(8, ge=1)
    """Frames per video."""
    size: int = Field(32, ge=8)
    """Frame height and width in pixels."""
    seed: int = 0
    """Seed of the generator (independent of the run's seed)."""


class VideoDataConfig(Section):
    """A video classification data set: the embedded synthetic one, annotation lists of files or rawframes, or an
    image data set whose images are one-frame clips."""

    name: VideoSourceName = "synthetic"
    """`synthetic` (in memory), `list` (`path label` lines), `rawframes` (`dir num_frames label` lines),
    `images` (the image data set of `images` as one-frame clips; needs `num_segments: 1`), or another registered
    video source. Other formats (SSv2, Kinetics, UCF101, HMDB51) are turned into lists by
    `distillkit data convert`."""
    root: Path | None = None
    """Folder the paths in the lists are relative to."""
    train_list: Path | None = None
    """Training annotation list."""
    test_list: Path | None = None
    """Test annotation list."""
    classes: Path | None = None
    """Class names, one per line in label order (optional; gives the number of classes and the flip map)."""
    num_classes: int | None = Field(None, ge=2)
    """Number of classes when no `classes` file is given (default: largest label + 1)."""
    num_segments: int = Field(8, ge=1)
    """TSN segments, i.e. frames per clip."""
    test_clips: int = Field(1, ge=1)
    """Clips per video at test time (their logits are averaged)."""
    resize: int | None = Field(None, ge=8)
    """Resize the short side to this many pixels before cropping (None: keep)."""
    crop: int | None = Field(None, ge=8)
    """Crop size (multi-scale crop in training, centre crop in test); None: no crop."""
    flip: bool = False
    """Random horizontal flips in training, with labels mapped through the left/right map of the class names."""
    mean: list[float] = [0.5, 0.5, 0.5]
    """Per-channel mean for normalisation (pixel values in [0, 1])."""
    std: list[float] = [0.25, 0.25, 0.25]
    """Per-channel standard deviation for normalisation."""
    batch_size: int = Field(16, ge=1)
    """Training batch size (clips)."""
    eval_batch_size: int = Field(32, ge=1)
    """Evaluation batch size (clips)."""
    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes (0: load in the main process)."""
    short_videos: Literal["loop", "error"] = "loop"
    """A video with fewer frames than `num_segments`: loop its frames (TSN's behaviour) or stop with an error
    naming the file and line (`error`; with `on_error: skip` such videos are skipped and counted)."""
    on_error: Literal["fail", "skip"] = "fail"
    """An unreadable video stops the run (`fail`) or is skipped, counted in the log and the results (`skip`)."""
    probe_test_videos: bool = True
    """Open every listed test video's header before training (no frame decoded): one that cannot be opened or
    has no video stream stops the run before any work (`on_error: fail`) or is left out with one warning
    (`skip`), rather than being found after training. Files only (rawframes folders are read frame by frame)."""
    synthetic: SyntheticVideosConfig = SyntheticVideosConfig()
    """Generator settings when `name` is `synthetic`."""
    images: ImageDataConfig = ImageDataConfig()
    """The image data set when `name` is `images`: its `name`, `root`, `image_size`, subsets, `augment` (random
    crop with 4-pixel zero padding, plus horizontal flip except for MNIST-family) and `synthetic` are used, its
    batch sizes and workers are not (this section's are); normalisation uses the data set's standard statistics,
    not `mean`/`std`, and `resize`, `crop` and `flip` must stay unset."""


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


class VideoTrainConfig(Section):
    """`distillkit train` with `task: video`: train a video classifier (non-incremental; the Joint bound)."""

    task: Literal["video"] = "video"
    """Must be `video`."""
    seed: int = 0
    """Seed of data order, sampling and initialisation."""
    device: Device = "auto"
    """`auto` (CUDA when present, else CPU), `cpu` or `cuda[:N]`."""
    data: VideoDataConfig = VideoDataConfig()
    """Video data set."""
    model: VideoModelConfig = VideoModelConfig()
    """The video network."""
    train: BudgetConfig = BudgetConfig(epochs=10)
    """Training length."""
    optim: OptimConfig = OptimConfig(lr=0.01, weight_decay=1e-4)
    """Optimiser."""
    perf: PerformanceConfig = PerformanceConfig()
    """Mixed precision, channels-last and `torch.compile` for every training run of the job (default: all off)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to OUT/tensorboard (training losses and learning rate of every
    training run, and the job's accuracies); needs the `tensorboard` package (`distillkit[tensorboard]`)."""


# ------------------------------------------------------------------------------------------------------ loading
def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` → (['a', 'b'], value) with the value parsed as YAML (so numbers, lists and null work)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = _load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({_yaml_problem(exc)})") from None
    return parts, value


# PyYAML's constructors let Python errors escape on some malformed scalars (`!!int abc`, `2001-02-30`,
# `!!bool x`, `!!float ''`, an out-of-range timestamp); these are the exception types they raise.
_CONSTRUCTOR_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names one key twice (PyYAML would silently keep the last value)."""


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose scalar constructors fail with a `ConstructorError` marking the bad value, and whose
    mappings refuse a key given twice (`_DuplicateKey`; keys brought in by a ``<<`` merge may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # an unhashable key: the base constructor refuses it
                    continue
                if seen:
                    raise _DuplicateKey(
                        None,
                        None,
                        f"duplicate key {str(key)[:60]!r} (first on line {first[key] + 1}); keep one of them",
                        key_node.start_mark,
                    )
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except _CONSTRUCTOR_ERRORS as exc:
            value = node.value if isinstance(node, yaml.ScalarNode) else node.id
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            why = f" ({exc})" if type(exc) is ValueError else ""  # the others' messages say nothing useful
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {tag} value {str(value)[:60]!r}{why}", node.start_mark
            ) from None


def _load_yaml(text: str) -> Any:
    """`yaml.safe_load`, with every failure a `yaml.YAMLError` (too deep nesting included)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    except _CONSTRUCTOR_ERRORS as exc:  # raised outside `construct_object` (none known): still a YAML error
        raise yaml.YAMLError(f"{exc.__class__.__name__}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying what is wrong (PyYAML's own messages span several lines)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return f"{exc.reason}: {char} at character {exc.position}"
    text = getattr(exc, "problem", None) or str(exc) or exc.__class__.__name__
    return text.splitlines()[0] if text.strip() else exc.__class__.__name__


def _read_yaml(path: Path) -> Any:
    """The YAML document in `path`; a `ConfigError` starting with the path when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__}: {exc.strerror})") from None
    try:
        return _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, _DuplicateKey):
            raise ConfigError(f"{path}{where}: {_yaml_problem(exc)}") from None
        raise ConfigError(f"{path}{where}: not valid YAML ({_yaml_problem(exc)})") from None


def _check_plain(tree: dict, source: str) -> None:
    """Refuse what YAML can build but no JSON report can record: a value that contains itself through an alias
    (`&a [*a]`) and `!!binary` bytes (e.g. in free-form `method.options`)."""
    open_, done = set(), set()  # containers being walked / walked (aliases share them: each is walked once)

    def walk(node: Any, key: str) -> None:
        if isinstance(node, bytes):
            raise ConfigError(f"{source}: '{key}' is a !!binary value; give text instead")
        if not isinstance(node, dict | list) or id(node) in done:
            return
        if id(node) in open_:
            raise ConfigError(f"{source}: '{key}' contains itself (a recursive YAML alias)")
        open_.add(id(node))
        for k, v in node.items() if isinstance(node, dict) else enumerate(node):
            walk(v, f"{key}.{k}" if key else str(k))
        open_.discard(id(node))
        done.add(id(node))

    walk(tree, "")


def apply_overrides(tree: dict, overrides: list[str], schema: type[Section]) -> dict:
    """Set each `a.b=c` in the raw config tree, checking every key against the schema on the way down."""
    for text in overrides:
        parts, value = parse_override(text)
        node, model = tree, schema
        for depth, part in enumerate(parts):
            fields = model.model_fields if model is not None else None
            if fields is not None and part not in fields:
                _unknown_key(".".join(parts[: depth + 1]), part, list(fields))
            if depth == len(parts) - 1:
                node[part] = value
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
            model = _section_type(fields[part].annotation) if fields is not None else None
    return tree


BASE_KEY = "_base_"
"""Top-level key of a config file naming the file(s) it starts from (see `read_config`)."""


def read_config(path: str | Path) -> dict:
    """The raw config tree of YAML file `path`, with the files it inherits from merged in.

    A file may name base files with a top-level `_base_: other.yaml` (or a list of names, merged in order),
    each relative to the file that names it; bases may have bases of their own. The file's mappings are merged
    key by key over its bases' (recursively); any other value (a number, a string, a list) replaces the base's.
    A missing base file, a cycle of bases, or a `_base_` that is not a name or a list of names is a `ConfigError`
    naming the file that says so."""
    return _read_with_bases(Path(path), ())


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict:
    """`read_config` of `path`, reached through the files of `chain` (each naming the next as a base)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    tree = _read_yaml(path)
    if tree is None:  # nothing but blank lines and comments: refuse rather than start a default job
        raise ConfigError(
            f"{path}: empty config (no keys); write the keys to set, or '{{}}' to run with every default"
        )
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    _check_plain(tree, str(path))  # before merging: a recursive alias would make the merge loop
    if BASE_KEY not in tree:
        return tree
    names = tree.pop(BASE_KEY)
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(
            f"{path}: '{BASE_KEY}' must be a file name or a list of file names, relative to this file; "
            f"got {repr(names)[:60]}"
        )
    chain = (*chain, path.resolve())
    merged: dict = {}
    for name in names:
        base = path.parent / name
        if not base.is_file():
            raise ConfigError(f"{path}: base file '{name}' not found (looked for {base})")
        if base.resolve() in chain:
            cycle = " -> ".join(str(p) for p in (*chain[chain.index(base.resolve()) :], base.resolve()))
            raise ConfigError(f"{path}: '{BASE_KEY}' makes a cycle: {cycle}")
        merged = merge_trees(merged, _read_with_bases(base, chain))
    return merge_trees(merged, tree)


def merge_trees(base: dict, over: dict) -> dict:
    """`base` updated by `over`: mappings present in both are merged key by key, any other value of `over`
    replaces `base`'s. Neither argument is changed."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        merged[key] = merge_trees(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def load_config(path: str | Path | None, schema: type[T], overrides: list[str] | None = None) -> T:
    """Read YAML `path` with its bases (or start from defaults when None), apply overrides, validate into
    `schema`."""
    tree = read_config(path) if path is not None else {}
    return _build(tree, schema, overrides or [], str(path) if path is not None else "config")


def _build(tree: dict, schema: type[T], overrides: list[str], source: str) -> T:
    """Apply `overrides` to the raw `tree` read from `source` and validate it into `schema`."""
    apply_overrides(tree, overrides, schema)
    _check_plain(tree, source)
    return validate(tree, schema, source=source)


def validate(tree: dict, schema: type[T], source: str = "config") -> T:
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, schema, source)) from None


def _format_validation(exc: ValidationError, schema: type[Section], source: str) -> str:
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(schema, loc[:-1])
            hint = difflib.get_close_matches(loc[-1], valid, n=1)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            messages.append(f"unknown key '{key}'{did}; valid keys here: {', '.join(valid)}")
        else:
            messages.append(f"'{key}': {err['msg']}")
    return f"{source}: " + "; ".join(messages)


def _unknown_key(key: str, part: str, valid: list[str]) -> None:
    hint = difflib.get_close_matches(part, valid, n=1)
    did = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise ConfigError(f"unknown key '{key}'{did}; valid keys here: {', '.join(valid)}")


def _section_type(annotation: Any) -> type[Section] | None:
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def _fields_at(schema: type[Section], loc: list[str]) -> list[str]:
    model: type[Section] | None = schema
    for part in loc:
        if model is None or part not in model.model_fields:
            return []
        model = _section_type(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def load_train_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> TrainConfig | VideoTrainConfig:
    """`distillkit train`'s config: a `VideoTrainConfig` when its `task` (or a `task=` override) is `video`."""
    tree = read_config(path) if path is not None else {}
    task = tree.get("task", "image")
    for text in overrides or []:
        parts, value = parse_override(text)
        if parts == ["task"]:
            task = value
    schemas = {"image": TrainConfig, "video": VideoTrainConfig}
    if not isinstance(task, str) or task not in schemas:
        raise ConfigError(f"{path or 'config'}: 'task' must be 'image' or 'video', got {task!r}")
    return _build(tree, schemas[task], overrides or [], str(path) if path is not None else "config")


def dump_config(cfg: Section) -> dict:
    """A JSON-safe dict of the config, as recorded in every report (and compared when a run resumes).

    A `perf` section left at its defaults, and `tensorboard` when off, are left out, so that runs recorded before
    they existed still compare equal to the same config today."""
    tree = cfg.model_dump(mode="json")
    if isinstance(getattr(cfg, "perf", None), PerformanceConfig) and cfg.perf == PerformanceConfig():
        del tree["perf"]
    if tree.get("tensorboard") is False:
        del tree["tensorboard"]
    return tree


def current_config(saved: dict, schema: type[Section], source: str) -> dict:
    """A config that a run recorded (`dump_config`'s tree) as this version writes it: keys added since then take
    their defaults, so that a run made before a new key existed still compares equal. A `ConfigError` naming
    `source` when it no longer validates (a key removed or renamed since)."""
    try:
        return dump_config(validate(saved, schema, source=source))
    except ConfigError as e:
        raise ConfigError(f"{e} (it does not validate with this version of distillkit)") from None


def check_resumable(saved: dict, cfg: Section, out: Path) -> None:
    """A `ConfigError` naming the differing keys when the config recorded by the run in `out` (`saved`, as
    `dump_config` wrote it) is not `cfg`; turning TensorBoard logging on or off does not change a run."""
    saved = current_config(saved, type(cfg), f"the config recorded in {out}")
    saved, now = ({k: v for k, v in c.items() if k != "tensorboard"} for c in (saved, dump_config(cfg)))
    if saved != now:
        raise ConfigError(
            f"--resume: {out} was run with a different config (differs at: {', '.join(_diff_keys(saved, now))}); "
            "resume with the same config, or choose another --out"
        )


def _diff_keys(a: object, b: object, prefix: str = "") -> list[str]:
    """The dotted keys at which two nested dicts differ, sorted."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [k for key in keys for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]
