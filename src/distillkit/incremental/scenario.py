"""Class-incremental scenario: which original classes arrive at which step, and the label remapping.

Classes arrive in a fixed order: ``base`` classes at step 0, then ``increment`` new classes per step. Like PyCIL,
labels are remapped by their position in that order, so after remapping the classes of step i occupy the
contiguous output units ``offset(i) .. offset(i) + classes_per_step[i] - 1`` and a classifier only grows at
the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from distillkit.errors import ConfigError, DistillkitError

# name -> (base, increment, num_steps after the base). Totals: tcd_ucf101 101 (UCF101), tcd_hmdb51 51 (HMDB51),
# tcd_ssv2 174 (SSv2) -- the TCD protocol (Park et al., ICCV 2021); vclimb_* are vCLIMB-style even splits
# (Villa et al., CVPR 2022): UCF101 in 10 tasks of 10 (100 of the 101 classes), Kinetics-400 in 10 or 20 tasks;
# synthetic_motion covers the 18 classes of the embedded motion benchmark.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tcd_ucf101": (51, 5, 10),
    "tcd_hmdb51": (26, 5, 5),
    "tcd_ssv2": (84, 9, 10),
    "vclimb_ucf101_10": (10, 10, 9),
    "vclimb_kinetics_10": (40, 40, 9),
    "vclimb_kinetics_20": (20, 20, 19),
    "synthetic_motion": (6, 3, 4),
}


@dataclass(frozen=True)
class Scenario:
    """A class order split into steps; labels are original dataset labels unless named ``incremental``."""

    class_order: list[int]
    steps: list[list[int]]
    _position: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flat = [c for step in self.steps for c in step]
        if not self.steps or any(len(step) == 0 for step in self.steps):
            raise ConfigError("a scenario needs at least one step and every step needs at least one class")
        if flat != list(self.class_order):
            raise ConfigError("scenario steps must list the classes of class_order, in order")
        if len(set(flat)) != len(flat):
            raise ConfigError("scenario class_order contains a class more than once")
        object.__setattr__(self, "_position", {int(c): i for i, c in enumerate(self.class_order)})

    @property
    def num_steps(self) -> int:
        """Number of steps, base step included."""
        return len(self.steps)

    @property
    def num_classes(self) -> int:
        """Number of classes over all steps."""
        return len(self.class_order)

    @property
    def classes_per_step(self) -> list[int]:
        return [len(step) for step in self.steps]

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.num_steps:
            raise DistillkitError(
                f"step {step} is out of range: the scenario has steps 0..{self.num_steps - 1}"
            )

    def seen(self, step: int) -> list[int]:
        """Original labels seen up to and including ``step``, in arrival order."""
        self._check_step(step)
        return list(self.class_order[: self.num_seen(step)])

    def new(self, step: int) -> list[int]:
        """Original labels that arrive at ``step``."""
        self._check_step(step)
        return list(self.steps[step])

    def num_seen(self, step: int) -> int:
        """Number of classes (output units) after ``step``."""
        self._check_step(step)
        return sum(self.classes_per_step[: step + 1])

    def offset(self, step: int) -> int:
        """First incremental label (output unit) of ``step``'s classes."""
        self._check_step(step)
        return sum(self.classes_per_step[:step])

    def step_of(self, label: int) -> int:
        """Step at which the original ``label`` arrives."""
        position = self.to_incremental(label)
        total = 0
        for i, n in enumerate(self.classes_per_step):
            total += n
            if position < total:
                return i
        raise AssertionError("unreachable")

    def to_incremental(self, label: int) -> int:
        """Position of the original ``label`` in the class order."""
        try:
            return self._position[int(label)]
        except KeyError:
            raise DistillkitError(f"label {label} is not part of this scenario") from None

    def to_original(self, incremental: int) -> int:
        """Original label of the output unit ``incremental``."""
        if not 0 <= incremental < self.num_classes:
            raise DistillkitError(
                f"incremental label {incremental} is out of range 0..{self.num_classes - 1}"
            )
        return int(self.class_order[incremental])

    def remap(self, labels: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Vectorised :meth:`to_incremental`; returns the same kind (and device) as ``labels``, as int64."""
        table = np.full(max(self.class_order) + 1, -1, dtype=np.int64)
        table[np.asarray(self.class_order, dtype=np.int64)] = np.arange(self.num_classes)
        is_tensor = isinstance(labels, torch.Tensor)
        values = labels.detach().cpu().numpy() if is_tensor else np.asarray(labels)
        values = values.astype(np.int64)
        inside = (values >= 0) & (values < len(table))
        out = np.full(values.shape, -1, dtype=np.int64)
        out[inside] = table[values[inside]]
        if (out < 0).any():
            bad = sorted({int(v) for v in values[out < 0]})[:5]
            raise DistillkitError(f"labels {bad} are not part of this scenario")
        return torch.from_numpy(out).to(labels.device) if is_tensor else out

    def steps_of(self, labels: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Vectorised :meth:`step_of` on original labels; same kind as ``labels``, as int64."""
        bounds = np.cumsum(self.classes_per_step)
        incremental = self.remap(labels)
        if isinstance(incremental, torch.Tensor):
            steps = np.searchsorted(bounds, incremental.cpu().numpy(), side="right")
            return torch.from_numpy(steps.astype(np.int64)).to(incremental.device)
        return np.searchsorted(bounds, incremental, side="right").astype(np.int64)


def build_scenario(
    num_classes: int,
    base: int,
    increment: int,
    num_steps: int | None = None,
    seed: int | None = 0,
    order: list[int] | None = None,
) -> Scenario:
    """``base`` classes, then ``num_steps`` steps of ``increment`` classes (None: as many as fit).

    The class order is ``np.random.default_rng(seed).permutation(num_classes)``, the identity when ``seed`` is
    None; an explicit ``order`` (a permutation of a subset of ``range(num_classes)``) wins over both. Classes
    past the last step are not used.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    if base < 1:
        raise ConfigError(f"base must be at least 1 class, got {base}")
    if increment < 1:
        raise ConfigError(f"increment must be at least 1 class per step, got {increment}")
    if num_steps is not None and num_steps < 0:
        raise ConfigError(f"num_steps must be 0 or more incremental steps after the base, got {num_steps}")
    if order is not None:
        order = [int(c) for c in order]
        bad = [c for c in order if not 0 <= c < num_classes]
        if bad:
            raise ConfigError(f"class order contains labels {bad[:5]} outside 0..{num_classes - 1}")
        if len(set(order)) != len(order):
            raise ConfigError("class order lists a class more than once; give each class once")
    elif seed is None:
        order = list(range(num_classes))
    else:
        order = [int(c) for c in np.random.default_rng(seed).permutation(num_classes)]
    available = len(order)
    if num_steps is None:
        num_steps = max(0, (available - base) // increment)
    needed = base + num_steps * increment
    if needed > available:
        raise ConfigError(
            f"the scenario asks for {needed} classes (base {base} + {num_steps} steps x {increment}) but "
            f"{'the class order has' if available < num_classes else 'the dataset has'} only {available}; "
            "lower base, increment or num_steps"
        )
    steps = [order[:base]] + [
        order[base + k * increment : base + (k + 1) * increment] for k in range(num_steps)
    ]
    return Scenario(class_order=order[:needed], steps=steps)


def preset_scenario(name: str, num_classes: int, seed: int | None = 0) -> Scenario:
    """The scenario of a named protocol (see ``PRESETS``) on a dataset with ``num_classes`` classes."""
    if name not in PRESETS:
        raise ConfigError(f"unknown scenario preset {name!r}; choose one of {', '.join(PRESETS)}")
    base, increment, num_steps = PRESETS[name]
    return build_scenario(num_classes, base, increment, num_steps=num_steps, seed=seed)
