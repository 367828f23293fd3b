"""The exemplar memory's policy: the one place the frame budget is shared out (each class's share, the per-class
cap, the frames each exemplar keeps and their size) and exemplars are chosen (herding or random order, key-frames
or whole clips). `ExemplarMemory` stores what it is given and checks the total again on disk.

The budget counts frames at the videos' size; a method storing smaller frames (`Method.exemplar_scale`) holds as
many of them as fit by pixels (`memory.stored_frames`), and with `Method.scale_tolerance` keeps at full size (at
their pixels' cost, `memory.full_size_cost`) the videos whose smaller replay the current model does not take for
the video (adaptive spatial granularity)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distillkit.data.videos import VideoDatasets
from distillkit.engine.distributed import barrier, is_main
from distillkit.incremental import replay
from distillkit.incremental.config import MemoryConfig
from distillkit.incremental.data import ClassSubset, ReplayedClips
from distillkit.incremental.evaluation import Evaluator, Features
from distillkit.incremental.memory import ExemplarMemory, full_size_cost, stored_frames
from distillkit.incremental.methods import Method
from distillkit.incremental.scenario import Scenario
from distillkit.incremental.selection import allocate, herding, random_order
from distillkit.incremental.state import StreamFolder


class MemoryPolicy:
    """Which exemplars a stream keeps after each step, within `cfg.budget_frames` (see the module docstring)."""

    def __init__(
        self,
        cfg: MemoryConfig,
        method: Method,
        data: VideoDatasets,
        scenario: Scenario,
        evaluator: Evaluator,
        folder: StreamFolder,
        segments: int,
        seed: int,
    ) -> None:
        self.cfg, self.method, self.data, self.scenario = cfg, method, data, scenario
        self.evaluator, self.folder, self.segments, self.seed = evaluator, folder, segments, seed
        self.per = method.exemplar_frames(segments)
        """The frames an exemplar is counted at (all of a clip's, or its key-frames)."""
        self.scale = method.exemplar_scale()
        """Side of a stored frame as a fraction of the video's."""
        self.budget = stored_frames(cfg.budget_frames, self.scale)
        """Most stored frames: `cfg.budget_frames` full frames, by pixels."""
        self.per_class = (
            None if cfg.per_class_frames is None else stored_frames(cfg.per_class_frames, self.scale)
        )
        self.scale_tolerance = method.scale_tolerance() if self.scale < 1 else None
        """None: every exemplar at `scale`; a number: adaptive spatial granularity (`Method.scale_tolerance`)."""
        self.shrink_distances: list[float] = []
        """Cosine distances between the smaller and the full-size clip features of the last step's new videos."""

    def check(self) -> None:
        """Before training: the budget holds one exemplar of every class of the stream (`ConfigError` if not)."""
        self.shares(list(range(self.scenario.num_classes)))

    def shares(self, classes: list[int]) -> dict[int, int]:
        """Frames each of `classes` may keep: an equal share of the budget in whole exemplars, at most the
        per-class cap."""
        share = allocate(self.budget, classes, self.per)
        if self.per_class is not None:
            share = {c: min(n, self.per_class // self.per) for c, n in share.items()}
        return {c: n * self.per for c, n in share.items()}

    def update(self, step: int, model: nn.Module, memory: ExemplarMemory | None) -> ExemplarMemory:
        """Next step's memory in its own folder: old classes reduced to their share, new classes herded.

        Every process computes the same selection from gathered features; rank 0 writes it and the others
        read it back."""
        subset = ClassSubset(self.data.train_eval, self.scenario.new(step), self.scenario)
        features = self.evaluator.features(model, subset, f"step {step} exemplars")
        positions = [
            self.method.select_frames(features.frames[i], features.pooled[i], self.per)
            for i in range(len(subset))
        ]
        tolerance = self.method.replay_tolerance()
        if tolerance is not None:  # adaptive granularity: whole clips where the replay is not faithful
            replayed = ReplayedClips(subset, positions, self.cfg.replay, self.data.test.transform)
            again = self.evaluator.features(model, replayed, "replays")
            kept = replay.faithful(
                features.pooled, again.pooled, again.logits, again.labels, tolerance
            ).tolist()
            whole = list(range(self.segments))
            positions = [p if ok else whole for p, ok in zip(positions, kept, strict=True)]
        small = [True] * len(subset)  # at the memory's scale (the videos' own when it is 1)
        if self.scale_tolerance is not None:  # full size where the smaller replay is not faithful
            shown = ReplayedClips(subset, positions, self.cfg.replay, self.data.test.transform, self.scale)
            again = self.evaluator.features(model, shown, "smaller frames")
            small = replay.faithful(
                features.pooled, again.pooled, again.logits, again.labels, self.scale_tolerance
            ).tolist()
            distance = 1 - torch.nn.functional.cosine_similarity(again.pooled, features.pooled, dim=1)
            self.shrink_distances = distance.tolist()
        folder = self.folder.memory(step)
        if is_main():
            memory = self._write(step, folder, memory, subset, features, positions, small)
        barrier()
        return memory if is_main() else ExemplarMemory.load(folder)

    def _write(
        self,
        step: int,
        folder: Path,
        memory: ExemplarMemory | None,
        subset: ClassSubset,
        features: Features,
        positions: list[list[int]],
        small: list[bool],
    ) -> ExemplarMemory:
        """Old classes reduced to their share, new classes filled in herding (or random) order with each video's
        kept `positions` (at the memory's smaller size where `small`, at full size and its cost otherwise), until
        the next video would not fit."""
        m = self.cfg
        if folder.exists():  # left by a run killed during this step
            shutil.rmtree(folder)
        if memory is None:
            memory = ExemplarMemory(
                folder,
                self.budget,
                self.segments,
                self.per_class,
                m.jpeg_quality,
                self.scale,
                m.jpeg_subsampling,
            )
        else:
            memory = memory.fork(folder)
        seen = list(range(self.scenario.num_seen(step)))
        share = self.shares(seen)
        memory.reduce({c: share[c] for c in memory.classes})
        for c in range(self.scenario.num_seen(step - 1) if step else 0, len(seen)):
            members = (features.labels == c).nonzero().flatten().tolist()
            # every candidate in priority order; as many as fit the class's frames (all of `per` when fixed)
            if m.selection == "herding":
                order = herding(features.pooled[members], len(members))
            else:
                order = random_order(len(members), len(members), np.random.default_rng([self.seed, step, c]))
            picked, used = [], 0
            for i in (members[j] for j in order):
                cost = len(positions[i]) if small[i] else full_size_cost(len(positions[i]), self.scale)
                if used + cost > share[c]:
                    break
                picked.append(i)
                used += cost
            memory.add_class(
                c,
                [(subset.video_id(i), subset.raw_clip(i), positions[i]) for i in picked],
                full_size={subset.video_id(i) for i in picked if not small[i]},
            )
        memory.check_budget()
        return memory

    def stats(self, memory: ExemplarMemory | None) -> dict:
        """Frames, bytes and videos held; with adaptive granularity also the videos kept as whole clips or at
        full size, and the quartiles of the last step's distances between smaller and full-size clip features."""
        if memory is None:
            return {"frames": 0, "bytes": 0, "videos": 0}
        stats = {"frames": memory.frames, "bytes": memory.bytes_on_disk(), "videos": memory.videos}
        if self.scale < 1:  # what the stored frames hold, in frames of the videos' size
            stats["full_frames"] = round(memory.full_frames, 2)
        if self.scale_tolerance is not None:
            stats["full_size_videos"] = memory.full_size_videos
            if self.shrink_distances:
                q = np.quantile(self.shrink_distances, [0.25, 0.5, 0.75])
                stats["shrink_distance_quartiles"] = [round(float(v), 4) for v in q]
        if self.method.replay_tolerance() is not None:
            everything = memory.num_segments
            stats["whole_clips"] = sum(
                len(e.frames) == everything for c in memory.classes for e in memory.exemplars(c)
            )
        return stats
