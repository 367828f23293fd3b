"""`distillkit incremental`: a class-incremental run of one method over a stream of steps, from base step to last,
resumable after any finished step.

Per step: grow the head, train with the method's loss (one training loop, `engine.loop.fit`), update the
exemplar memory (reduce old classes, herd the new ones), evaluate every class seen so far (CNN and NME), write a
checkpoint, `results.json`, `report.md` and the plots. Each finished step has its own memory folder (frames
hard-linked from the previous one), so a run killed at any moment resumes from its last checkpoint with the memory
of that step; on resuming, what the kill left (half-written files, other steps' memory folders) is cleared and
`log.jsonl` is rewritten from the checkpoint.
All randomness of a step is seeded from (seed, step): a resumed run ends with the same results as an
uninterrupted one.

`StreamRun` is the loop and its wiring; its collaborators each have one job: `StepData` (a step's training set
and batches, and the context and tools its method gets), `StepTrainer` (a step's training, or the base weights of
`train.base_model`), `Evaluator` (features and accuracy rows), `MemoryPolicy` (the frame budget and the choice of
exemplars), `StreamResults` (logs, results.json, report.md, plots), `StreamState` and `StreamFolder` (what a
checkpoint holds and where each file lives); the objectives are in `objectives.py`.

Under torchrun (WORLD_SIZE > 1) a run is data-parallel: `data.batch_size` is the global batch, split over the
processes; the model trains in DDP with batch norms over the global batch (the old model's too, when it
normalises with batch statistics); features for evaluation, imprinting and exemplar selection are computed in
shards of whole evaluation batches and gathered, so every process evaluates and selects from the same full set; only rank 0
writes the memory, checkpoints, logs and results (the others read the memory back); class-balanced fine-tuning
of the head runs identically on every process.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from distillkit.config import check_resumable, dump_config
from distillkit.data.video.transforms import left_right_label_map
from distillkit.data.videos import VideoDatasets, build_video_datasets
from distillkit.engine.device import resolve_device, seed_everything, step_seed
from distillkit.engine.distributed import barrier, is_distributed, is_main, per_process_batch, process_group
from distillkit.engine.loop import check_performance
from distillkit.engine.tracking import tracker
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.evaluation import Evaluator
from distillkit.incremental.memory import ExemplarMemory
from distillkit.incremental.memory_policy import MemoryPolicy
from distillkit.incremental.methods import build_method
from distillkit.incremental.metrics import other_classifier
from distillkit.incremental.objectives import normalise_with_batch_statistics
from distillkit.incremental.results import StreamResults
from distillkit.incremental.scenario import Scenario, build_scenario, preset_scenario
from distillkit.incremental.state import StreamFolder, StreamState
from distillkit.incremental.step_data import StepData
from distillkit.incremental.training import StepTrainer
from distillkit.jobs.base import Job
from distillkit.models.factory import build_video_model
from distillkit.models.heads import grow_head


def build_stream_scenario(cfg: IncrementalConfig, num_classes: int) -> Scenario:
    s = cfg.scenario
    if s.preset is not None:
        return preset_scenario(s.preset, num_classes, s.order_seed)
    return build_scenario(num_classes, s.base, s.increment, s.num_steps, s.order_seed, s.order)


class StreamRun:
    """A class-incremental run of `cfg` writing to `out`: the loop over the steps and the collaborators it wires
    (see the module docstring)."""

    def __init__(
        self,
        cfg: IncrementalConfig,
        out: str | Path,
        resume: bool = False,
        device: torch.device | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.device = device if device is not None else resolve_device(cfg.device)
        check_performance(cfg.perf, self.device)
        if is_distributed():
            per_process_batch(cfg.data.batch_size, "data.batch_size")  # before any work
        self.method = build_method(cfg.method.name, cfg.method.options)
        seed_everything(cfg.seed)
        self.data: VideoDatasets = build_video_datasets(cfg.data, cfg.seed)
        self.scenario = build_stream_scenario(cfg, self.data.num_classes)
        self.segments = cfg.data.num_segments
        self.use_memory = self.method.uses_memory and cfg.memory.budget_frames > 0
        self.eval_nme = cfg.eval.nme if cfg.eval.nme is not None else self.use_memory
        self.folder = StreamFolder(self.out)
        self.evaluator = Evaluator(
            self.data, self.scenario, cfg.data.eval_batch_size, cfg.memory.replay, self.eval_nme, self.device
        )
        self.memory_policy = MemoryPolicy(
            cfg.memory,
            self.method,
            self.data,
            self.scenario,
            self.evaluator,
            self.folder,
            self.segments,
            cfg.seed,
        )
        self.results = StreamResults(
            cfg, self.method, self.scenario, self.evaluator, self.folder, self.device
        )
        self.step_data = StepData(cfg, self.method, self.data, self.scenario, self.evaluator, self.device)
        self._check_before_training()
        self.trainer = StepTrainer(cfg, self.method, self.device)  # checks and loads train.base_model

    def _check_before_training(self) -> None:
        if self.cfg.data.flip and left_right_label_map(self.data.class_names):
            raise ConfigError(
                "data.flip: flipping maps some classes onto others (left/right pairs), which may belong to a "
                "later step; set data.flip to false for class-incremental runs"
            )
        if self.method.nme and not self.use_memory:
            raise ConfigError(
                f"method '{self.method.name}' classifies by exemplar means: set memory.budget_frames > 0"
            )
        if self.eval_nme and not self.use_memory:
            raise ConfigError("eval.nme needs an exemplar memory (memory.budget_frames > 0)")
        if self.use_memory:  # the last step holds exemplars of every class
            self.memory_policy.check()

    def _start(self) -> tuple[int, StreamState]:
        """First step to run and the state so far (fresh, or from the last checkpoint when resuming)."""
        last = self.folder.last_step()
        if last is None:
            if self.resume and self.out.exists() and any(self.out.iterdir()) and is_main():
                print(f"resume: no finished step in {self.out}; starting from the base step")
            return 0, StreamState()
        if not self.resume:
            raise ConfigError(
                f"{self.out} already holds a run (finished up to step {last}); pass --resume to continue it, "
                "or choose another --out"
            )
        state = StreamState.load(self.folder.checkpoint(last))
        check_resumable(state.config, self.cfg, self.out)
        return last + 1, state

    def run(self) -> dict:
        first, state = self._start()
        if is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            self.folder.clear_leftovers(first)
            self.folder.rewrite_log([self.results.log_entry(i, state) for i in range(state.steps_done)])
        barrier()
        model = build_video_model(self.cfg.model, self.scenario.num_seen(0), self.segments)
        model.head = self.method.build_head(model.feature_dim, self.scenario.num_seen(0))
        memory = None
        if first > 0:
            model.head = self.method.build_head(model.feature_dim, self.scenario.num_seen(first - 1))
            model.load_state_dict(state.model)
            if self.use_memory:
                memory = ExemplarMemory.load(self.folder.memory(first - 1))
            if is_main():
                print(f"resumed after step {first - 1} from {self.folder.checkpoint(first - 1)}")
        model.to(self.device)
        for step in range(first, self.scenario.num_steps):
            model, memory = self._step(step, model, memory, state)
        return self.results.write(state, self.results.figures(state))

    def _step(self, step: int, model: nn.Module, memory: ExemplarMemory | None, state: StreamState):
        """Step `step`: grow the head, train, update the memory, evaluate, save; the model and memory after it."""
        start = time.perf_counter()
        seed_everything(step_seed(self.cfg.seed, step))
        old_model = None
        if step > 0:
            old_model = copy.deepcopy(model).eval().requires_grad_(False)
            if self.method.old_model_batch_stats:
                normalise_with_batch_statistics(old_model)
            model.head = grow_head(model.head, self.scenario.num_seen(step))
        train_set = self.step_data.train_set(step, memory)
        ctx = self.step_data.context(step, train_set, old_model)
        self.method.begin_step(model, ctx, self.step_data.tools(model, step, memory))
        result = self.trainer.train(step, model, old_model, ctx, self.step_data.loader(train_set, step))
        if self.use_memory:
            memory = self.memory_policy.update(step, model, memory)
        self.method.end_step(model, ctx, self.step_data.tools(model, step, memory))
        cnn, nme = self.evaluator.evaluate(step, model, memory)
        seconds = time.perf_counter() - start
        stats = self.memory_policy.stats(memory)
        state.record_step(
            step, cnn, nme, seconds, stats, result.history, model.state_dict(), dump_config(self.cfg)
        )
        figures = self.results.figures(state)
        if is_main():
            state.save(self.folder.checkpoint(step))
            if step > 0 and self.use_memory:
                self.folder.remove_memory(step - 1)
            self.results.log(step, state, figures)
        self.results.write(state, figures)
        accuracy = {name: f["accuracy_per_step"][-1] if f else None for name, f in figures.items()}
        tracker().scalars("accuracy on classes seen", accuracy, step)
        tracker().scalars("memory", {"frames": state.memory[-1]["frames"]}, step)
        barrier()
        return model, memory


def run_incremental(cfg: IncrementalConfig, out: str | Path, resume: bool = False) -> dict:
    """Run the whole stream of `cfg` into `out` (continuing the last finished step with `resume`); under torchrun
    data-parallel (module docstring), every process returning the same results."""
    with process_group(cfg.device) as device:
        results = StreamRun(cfg, out, resume, device).run()
        main = is_main()
    if not main:
        return results
    own = results["classifier"]
    line = f"{results['method']}: average incremental accuracy {results['avg_incremental_accuracy']:.2f}% "
    line += f"({own.upper()}), final {results['final_accuracy']:.2f}%, forgetting {results['forgetting']:.2f}"
    if other := results[other_classifier(own)]:
        line += f" ({other_classifier(own).upper()}: {other['avg_incremental_accuracy']:.2f}%)"
    print(line)
    return results


class IncrementalJob(Job[IncrementalConfig]):
    """Resumes after its last finished step."""

    name = "incremental"

    def check(self, cfg: IncrementalConfig) -> None:
        build_method(cfg.method.name, cfg.method.options)  # the method's options, before any work

    def legacy(self, out: Path) -> bool:
        """A class-incremental run written before run folders were marked (run.json)."""
        return any((out / "checkpoints").glob("step_*.pt"))

    def execute(self, cfg: IncrementalConfig, out: Path, device: torch.device, resume: bool) -> dict:
        return run_incremental(cfg, out, resume=resume)
