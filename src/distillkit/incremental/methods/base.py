"""The interface every class-incremental method implements, and the registry that finds methods by name.

A method says which head it uses, what data a step trains on, the loss of a batch (given the current and the
old model's outputs), and optionally what to do when a step begins or ends. The stream runner does the rest
(data, training loop, memory, evaluation, checkpoints); adding a method never touches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from typing_extensions import TypedDict

from distillkit.config import MAX_EPOCHS, Section, validate
from distillkit.engine.loop import LossParts
from distillkit.errors import ConfigError
from distillkit.incremental.selection import all_frames
from distillkit.models.heads import imprint, make_head, rows_per_class


class Outputs(TypedDict, total=False, extra_items=torch.Tensor):
    """A model's outputs on a batch of clips, as a method's loss sees them (`objectives.model_outputs`).

    Besides the keys below, one entry per backbone stage, named as the stage (`layer1`..`layer4` of a ResNet):
    its feature maps (N, T, C, H, W)."""

    frames: torch.Tensor
    """Per-frame features (N, T, D)."""
    pooled: torch.Tensor
    """The clip feature (N, D): the mean of the frame features."""
    logits: torch.Tensor
    """(N, K) over the classes seen."""
    cosine: torch.Tensor
    """A cosine or local-similarity head's class similarities (N, K): logits = scale · cosine."""
    scale: torch.Tensor
    """That head's scale (0-d)."""
    clips: torch.Tensor
    """The input clips (N, T, 3, H, W); the current model's outputs only."""


class VideoBackbone(Protocol):
    """What the class-incremental engine uses of a video network (`models.tsm.VideoResNet` is one)."""

    num_segments: int
    feature_dim: int
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stage feature maps, `frames` and `pooled` of clips (N, T, 3, H, W)."""
        ...

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits of clip features (N, D)."""
        ...


@dataclass
class StepContext:
    """What a method knows about the step being trained."""

    step: int
    num_old: int
    """Classes learned before this step: incremental labels ``0 .. num_old - 1``."""
    num_seen: int
    """Classes after this step."""
    old_model: nn.Module | None
    """The frozen model of the previous step (eval mode), None at the base step."""
    device: torch.device
    class_counts: torch.Tensor | None = None
    """Training clips of each seen class in this step's training set (num_seen,), on `device`: the new classes'
    videos and the old classes' exemplars (None where the runner does not know them)."""

    @property
    def num_new(self) -> int:
        return self.num_seen - self.num_old


@dataclass
class StepTools:
    """Services the runner offers a method's `begin_step` / `end_step`."""

    new_features: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    """Clip features (N, D) of the new classes' training videos (test-time clips, eval mode) and their labels."""
    finetune_head_on_memory: Callable[[float, float], None]
    """Train only the head for (epochs, lr) on the memory, all classes balanced (LUCIR's CBF)."""
    memory_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] = lambda: iter(())
    """The exemplar memory as batches of (clips, labels) on the device, training transforms, in a fixed order
    (none without a memory)."""
    finetune_network_on_memory: Callable[[float, float], None] | None = None
    """Train the whole network for (epochs, lr) on the memory, all classes balanced, with KD from the model as it
    was before (EEIL's balanced fine-tuning); None where the runner does not offer it."""


class NoOptions(Section):
    """This method has no options."""


HeadKind = Literal["linear", "cosine", "lsc"]


class Method:
    """Base method = Finetune with memory replay: cross-entropy over all seen classes, a linear head.

    Class attributes say what a method is (`name`, `Options`, `uses_memory`, `train_on`, `needs_old_outputs`);
    instance attributes what it does with its options (`head`, `nme`, `old_model_batch_stats`): a method whose
    options choose them sets them in `__init__`."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[Section]] = NoOptions
    uses_memory: ClassVar[bool] = True
    """Whether the step trains on (and the runner fills) the exemplar memory."""
    train_on: ClassVar[Literal["new", "seen"]] = "new"
    """`new`: the new classes' data (+ memory); `seen`: all data of every class seen so far (Joint)."""
    needs_old_outputs: ClassVar[bool] = False
    """Whether `loss` receives the old model's outputs."""

    head: HeadKind = "linear"
    """The classifier head's kind."""
    nme: bool = False
    """Whether the method's own classifier is the nearest mean of exemplars (evaluated as its main head)."""
    old_model_batch_stats: bool = False
    """Whether the old model normalises with each batch's statistics (as the current model does in training)
    instead of its running ones, so that its outputs equal the current model's until the weights change."""

    def __init__(self, options: Section) -> None:
        self.options = options

    def build_head(self, in_features: int, out_features: int) -> nn.Module:
        """A fresh classifier head of the method's kind (`head`)."""
        return make_head(self.head, in_features, out_features)

    def exemplar_frames(self, num_segments: int) -> int:
        """Frames stored per exemplar video (all `num_segments` unless the method keeps key-frames)."""
        return num_segments

    def exemplar_scale(self) -> float:
        """Side of a stored exemplar frame as a fraction of the video's (1: full size). Smaller frames count by
        their pixels against the frame budget, so that more of them fit (`memory_policy`)."""
        return 1.0

    def shown_small(self) -> tuple[float, float] | None:
        """(share, scale): in incremental steps, that share of the new classes' training clips is shown at that
        scale of each side and back (`data.ShownSmall`); None (the default): every clip as loaded."""
        return None

    def scale_consistency(self) -> tuple[float, float] | None:
        """(weight, scale): in incremental steps, each new-class clip of a batch is also seen at that scale of
        each side and back (`memory.at_scale`), and its clip embedding is pulled towards the clip's as loaded,
        1 − cos, times the weight (`objectives.StepObjective`); None (the default): no such term."""
        return None

    def select_frames(self, frame_features: torch.Tensor, clip_feature: torch.Tensor, k: int) -> list[int]:
        """Sorted time positions to store of one exemplar (at most `k`), from its frame features (T, D) and clip
        feature (D,); by default every frame."""
        return all_frames(frame_features, clip_feature, k)

    def replay_tolerance(self) -> float | None:
        """None: every exemplar keeps `exemplar_frames` frames. A number: an exemplar keeps only its selected
        frames when the current model classifies their replay as the video's class and the replay's clip feature
        is within this cosine distance of the whole clip's, and the whole clip otherwise (adaptive granularity;
        the memory's frame budget holds either)."""
        return None

    def scale_tolerance(self) -> float | None:
        """None: every exemplar is stored at `exemplar_scale`. A number (with `exemplar_scale` below 1): a video
        is stored smaller only when the current model classifies its smaller replay as the video's class and the
        replay's clip feature is within this cosine distance of the full-size clip's, and at full size (at its
        pixels' cost against the budget) otherwise (adaptive spatial granularity)."""
        return None

    def fixed_head_rows(self, head: nn.Module, ctx: StepContext) -> int:
        """How many leading rows of `head.weight` step `ctx.step`'s training leaves as they are (0: none)."""
        return 0

    def begin_step(self, model: nn.Module, ctx: StepContext, tools: StepTools) -> None:
        """Called after the head has grown, before training (e.g. imprint new weights)."""

    def classification_loss(self, out: Outputs, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """The classification term of `loss`: cross-entropy over every seen class."""
        return F.cross_entropy(out["logits"], y)

    def distillation(
        self, out: Outputs, old: Outputs, y: torch.Tensor, ctx: StepContext
    ) -> tuple[list[torch.Tensor], LossParts]:
        """What keeps the old model's knowledge once there is one: the weighted terms `loss` adds to the
        classification term, in order, and their parts for logs (none by default)."""
        return [], {}

    def loss(
        self, out: Outputs, old: Outputs | None, y: torch.Tensor, ctx: StepContext
    ) -> tuple[torch.Tensor, LossParts]:
        """Loss of a batch and its named parts for logs: `classification_loss`, plus the `distillation` terms
        when there is an old model. The parts are detached 0-d tensors (`part.detach()`, not `.item()`, which
        would wait for the device at every step); the training loop reads them back once per log line."""
        ce = self.classification_loss(out, y, ctx)
        if old is None:
            return ce, {"ce": ce.detach()}
        terms, parts = self.distillation(out, old, y, ctx)
        total = ce
        for term in terms:
            total = total + term
        return total, {"ce": ce.detach(), **parts}

    def end_step(self, model: nn.Module, ctx: StepContext, tools: StepTools) -> None:
        """Called after training and the memory update, before evaluation (e.g. class-balanced fine-tuning)."""


class SimilarityHeadOptions(Section):
    """Options every method on a similarity head (cosine or local similarity) has."""

    imprint: bool = True
    """Initialise the new classes' weights (proxies) by imprinting: the normalised mean features of their
    training clips."""
    cbf_epochs: float = Field(0.0, ge=0, le=MAX_EPOCHS)
    """Class-balanced fine-tuning of the classifier on the memory after each incremental step (0: off)."""
    cbf_lr: float = Field(0.01, gt=0)
    """Learning rate of class-balanced fine-tuning."""
    cbf_network: bool = False
    """Class-balanced fine-tuning trains the whole network, with KD (T = 2) from the model as the step left it and
    batch-norm statistics kept, as EEIL's balanced fine-tuning (Castro et al., ECCV 2018), instead of the head
    alone; with the incremental steps' optimiser at `cbf_network_lr`."""
    cbf_network_lr: float = Field(0.0002, gt=0)
    """Learning rate of the whole network's class-balanced fine-tuning (`cbf_network`): a tenth of the video
    presets' AdamW rate, as EEIL divides its rate by 10 for balanced fine-tuning."""
    fix_old_weights: bool = False
    """Keep the old classes' head weights as they are while an incremental step trains, as LUCIR's published code
    does ("fix the embedding of old classes"); class-balanced fine-tuning still adjusts every class's. Off by
    default: on the CIVC benchmark's development orders it cost LUCIR 3.8 points and LUCIR + CBF 0.9
    (docs/results.md), so the baselines train those weights, as the rest of the network."""


class SimilarityHeadMethod(Method):
    """A method on a cosine or local-similarity head: imprints the new classes' weights when an incremental step
    begins (`imprint`) and fine-tunes the head on the memory, classes balanced, when it ends (`cbf_epochs`)."""

    head: HeadKind = "cosine"

    def __init__(self, options: Section) -> None:
        if not isinstance(options, SimilarityHeadOptions):
            raise TypeError(f"{type(self).__name__} needs options derived from SimilarityHeadOptions")
        super().__init__(options)
        self.head_options = options

    def fixed_head_rows(self, head: nn.Module, ctx: StepContext) -> int:
        if ctx.step == 0 or not self.head_options.fix_old_weights:
            return 0
        return ctx.num_old * rows_per_class(head)

    def begin_step(self, model: nn.Module, ctx: StepContext, tools: StepTools) -> None:
        if ctx.step > 0 and self.head_options.imprint and self.head != "linear":
            features, labels = tools.new_features()
            imprint(model.head, features, labels, range(ctx.num_old, ctx.num_seen))

    def end_step(self, model: nn.Module, ctx: StepContext, tools: StepTools) -> None:
        options = self.head_options
        if ctx.step == 0 or options.cbf_epochs == 0:
            return
        if not options.cbf_network:
            tools.finetune_head_on_memory(options.cbf_epochs, options.cbf_lr)
        elif tools.finetune_network_on_memory is None:
            raise ConfigError("cbf_network: this runner cannot fine-tune the whole network on the memory")
        else:
            tools.finetune_network_on_memory(options.cbf_epochs, options.cbf_network_lr)


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under `cls.name`."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"method name {cls.name!r} is empty or already registered")
    METHODS[cls.name] = cls
    return cls


def build_method(name: str, options: dict[str, Any]) -> Method:
    """The registered method `name` with its options validated (errors name `method.options.<key>`)."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (method.name); registered: {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    return cls(validate(dict(options), cls.Options, source=f"method.options of '{name}'"))
