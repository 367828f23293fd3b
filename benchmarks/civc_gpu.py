"""GPU throughput and utilisation of the CIVC training step, and of the video loader that feeds it.

    python benchmarks/civc_gpu.py [--seconds 3] [--workers 0 4 8 15] [--data DIR]

Needs a CUDA device; ``--device cpu --seconds 0.2`` runs the same code as a smoke test (its figures mean
nothing). Two parts, written to benchmarks/results/civc_gpu.md:

1. **The step**, on one batch already on the device: a Finetune step (cross-entropy) and a CIVC step with every
   costly part on (the frozen old model's forward, trajectory tracking on its stage features, the
   spatio-temporal decomposition and its distillation terms, old-logit KD; `benchmarks/civc_step_cost.py` is the
   same pair on one CPU thread), AdamW, for three models: the benchmarks' own (TSM ResNet-18 width 1/8 on
   8×28×28 clips, batch 16), TSM ResNet-18 on 8×112×112 (batch 32) and TSM ResNet-50 on 8×224×224 (batch 16,
   TSM's Kinetics setting), in fp32 and under bf16 autocast (`perf.precision: bf16`). Each figure comes from a
   window of `--seconds` of back-to-back steps after a warm-up, the device synchronised at both ends: ms per
   step, clips/s, the GPU's utilisation (NVML through `torch.cuda.utilization`, sampled every 50 ms in the
   window: the share of time some kernel ran) and the peak memory.
2. **The loader feeding the step**: the toolkit's training loader (`VideoDataset` over mp4 files, PyAV decode,
   multi-scale crop of 112 from 128, flip, normalisation, batches of 32 from `data.videos.video_loader`, whose
   training workers start again each epoch) with w workers: alone, and feeding the CIVC step of TSM ResNet-18 at
   112 under bf16; clips/s and GPU utilisation; the same with pinned host memory. The list repeats each
   synthetic video (preset *appearance*, 48 frames) `--repeat` times so that one epoch is long enough for the
   workers' start to count as it does on a real set.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from distillkit.config import VideoDataConfig, VideoModelConfig
from distillkit.data.synthetic_video import write_synthetic_videos
from distillkit.data.video import VideoDataset, parse_list_file
from distillkit.data.videos import clip_transforms, video_loader
from distillkit.incremental.methods import StepContext, build_method
from distillkit.incremental.objectives import model_outputs
from distillkit.models.factory import build_video_model
from distillkit.models.heads import make_head
from distillkit.report.meta import run_metadata
from distillkit.report.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS, OLD, SEEN = 8, 6, 9  # clips of 8 frames; the step learns 3 new classes on top of 6 old ones
EVERY_PART = {"logit_weight": 1.0, "spatial_weight": 1.0, "temporal_weight": 1.0}


@dataclass(frozen=True)
class Setting:
    name: str
    arch: str
    width: float
    size: int
    batch: int
    small_input: bool


SETTINGS = (
    Setting("benchmarks' model: R18 ×1/8, 8×28²", "resnet18", 0.125, 28, 16, True),
    Setting("TSM R18, 8×112²", "resnet18", 1.0, 112, 32, False),
    Setting("TSM R50, 8×224²", "resnet50", 1.0, 224, 16, False),
)


@dataclass
class Window:
    """What one timed window of back-to-back iterations measured."""

    iterations: int
    clips: int
    seconds: float
    utilisation: float | None  # mean GPU utilisation (%) over the window; None without NVML
    peak_gib: float | None

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / self.iterations

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def sampled_utilisation(device: torch.device, every: float = 0.05) -> Iterator[list[int]]:
    """Samples the GPU's utilisation every `every` seconds while the block runs (nothing off CUDA or without
    NVML)."""
    samples: list[int] = []
    if device.type != "cuda":
        yield samples
        return
    try:
        torch.cuda.utilization(device)
    except Exception:  # NVML missing: no utilisation column
        yield samples
        return
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            samples.append(torch.cuda.utilization(device))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def timed(step: Callable[[], int], device: torch.device, seconds: float, warmup: int = 3) -> Window:
    """Runs `step` (returns the clips it processed) `warmup` times, then back to back for `seconds`."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    iterations = clips = 0
    with sampled_utilisation(device) as samples:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or iterations == 0:
            clips += step()
            iterations += 1
        _sync(device)
        elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Window(iterations, clips, elapsed, statistics.fmean(samples) if samples else None, peak)


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


class Steps:
    """The Finetune and CIVC training steps of one model on the device."""

    def __init__(self, setting: Setting, device: torch.device, precision: str) -> None:
        cfg = VideoModelConfig(arch=setting.arch, width=setting.width, small_input=setting.small_input)
        self.model = build_video_model(cfg, SEEN, SEGMENTS)
        self.model.head = make_head("cosine", self.model.feature_dim, SEEN)
        self.model.to(device).train()
        self.old = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.method = build_method("civc", EVERY_PART)
        self.ctx = StepContext(step=1, num_old=OLD, num_seen=SEEN, old_model=self.old, device=device)
        self.optim = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.device, self.precision = device, precision

    def finetune_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model_outputs(self.model, x)["logits"], y)

    def civc_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model_outputs(self.model, x)
        out["clips"] = x
        with torch.no_grad():
            before = model_outputs(self.old, x)
        return self.method.loss(out, before, y, self.ctx)[0]

    def train(self, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x, y) -> int:
        with autocast(self.device, self.precision):
            loss = loss_of(x, y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return x.shape[0]


def step_part(args: argparse.Namespace, device: torch.device) -> list[list[str]]:
    rows = []
    for setting in SETTINGS:
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            steps = Steps(setting, device, precision)
            smoke = device.type != "cuda"  # a CPU smoke test: tiny batches
            size, batch = (min(setting.size, 32), 2) if smoke else (setting.size, setting.batch)
            x = torch.rand(batch, SEGMENTS, 3, size, size, device=device)
            y = torch.randint(0, SEEN, (batch,), device=device)
            windows = {}
            for name, fn in (("Finetune", steps.finetune_loss), ("CIVC", steps.civc_loss)):
                windows[name] = timed(partial(steps.train, fn, x, y), device, args.seconds)
            for name, w in windows.items():
                rows.append([
                    setting.name, precision, name, str(batch), f"{w.ms:.1f}", f"{w.clips_per_s:.0f}",
                    _percent(w.utilisation), "-" if w.peak_gib is None else f"{w.peak_gib:.2f}",
                    f"{w.ms / windows['Finetune'].ms:.2f}",
                ])  # fmt: skip
            print(markdown_table(HEAD_STEP, rows[-2:]), flush=True)
            del steps, x, y
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def loader_data(args: argparse.Namespace) -> tuple[Path, list]:
    """The synthetic mp4 set (written once) and its training list, each video `args.repeat` times."""
    wanted = {"preset": "appearance", "num_classes": 8, "videos_per_class": 16, "frames": 48, "size": 128,
              "seed": 0, "fps": 8, "test_fraction": 0.0}  # fmt: skip
    root = args.data
    meta = root / "synthetic.json"
    if meta.is_file():
        if json.loads(meta.read_text()) != wanted:
            raise SystemExit(f"{root} holds another synthetic set; pass another --data folder")
    else:
        print(f"writing {8 * 16} synthetic videos to {root} ...", flush=True)
        write_synthetic_videos(root, **wanted)
    return root, parse_list_file(root / "train.txt") * args.repeat


def loader_part(args: argparse.Namespace, device: torch.device) -> list[list[str]]:
    root, records = loader_data(args)
    cfg = VideoDataConfig(name="list", resize=128, crop=112, flip=True, batch_size=32)
    train_tf, _ = clip_transforms(cfg, [f"class{i}" for i in range(8)])
    dataset = VideoDataset(records, root, num_segments=SEGMENTS, train=True, transform=train_tf)
    steps = Steps(SETTINGS[1], device, "bf16")
    rows = []
    for workers in args.workers:
        for pin in (False, True) if device.type == "cuda" else (False,):
            loader = video_loader(dataset, cfg.model_copy(update={"num_workers": workers}), True, 0)
            if pin:  # the same loader with pinned host memory
                loader = DataLoader(
                    dataset, batch_size=32, shuffle=True, drop_last=True, pin_memory=True,
                    num_workers=workers, worker_init_fn=loader.worker_init_fn,
                    generator=torch.Generator().manual_seed(0),
                )  # fmt: skip
            batches = _epochs(loader, dataset)
            alone = timed(lambda b=batches: len(next(b)[1]), device, args.seconds, warmup=1)

            def fed(b=batches) -> int:
                x, y = next(b)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                return steps.train(steps.civc_loss, x, y)

            w = timed(fed, device, args.seconds, warmup=2)
            rows.append([
                str(workers), "yes" if pin else "no", f"{alone.clips_per_s:.0f}", f"{w.clips_per_s:.0f}",
                _percent(w.utilisation),
            ])  # fmt: skip
            print(markdown_table(HEAD_LOADER, rows[-1:]), flush=True)
            del batches, loader
    return rows


def _epochs(loader: DataLoader, dataset: VideoDataset) -> Iterator:
    """Batches epoch after epoch, as training draws them (`set_epoch`, then a fresh pass)."""
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


HEAD_STEP = ["Model", "Precision", "Step", "Batch", "ms/step", "clips/s", "GPU util %", "Peak GiB",
             "× Finetune"]  # fmt: skip
HEAD_LOADER = ["Workers", "Pinned", "Loader alone, clips/s", "Loader + CIVC step, clips/s", "GPU util %"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8, 15])
    parser.add_argument("--repeat", type=int, default=5, help="times each video is listed (default 5)")
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "bench" / "civc_gpu" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "civc_gpu.md")
    parser.add_argument("--skip-loader", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("civc_gpu: no CUDA device here (pass --device cpu for a smoke test)")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    meta = run_metadata(device)
    steps = step_part(args, device)
    loader = [] if args.skip_loader else loader_part(args, device)
    text = "\n".join([
        "# civc_gpu",
        "",
        f"`python benchmarks/civc_gpu.py --seconds {args.seconds:g}`: {meta['device']['name']}, "
        f"torch {meta['versions']['torch']}, {os.cpu_count()} CPU cores, commit {meta['versions'].get('source', '?')}.",
        "",
        "## The step (batch already on the device)",
        "",
        markdown_table(HEAD_STEP, steps),
        "",
        "## The loader feeding the step (TSM R18 at 8×112², bf16, batch 32)",
        "",
        markdown_table(HEAD_LOADER, loader) if loader else "(not run)",
        "",
    ])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
