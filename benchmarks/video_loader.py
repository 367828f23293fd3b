"""Video data loading: decoded clips per second through distillkit's loader vs a bare PyAV decode loop.

    OMP_NUM_THREADS=1 python benchmarks/video_loader.py [--repeats 3] [--videos 48] [--frames 48] [--size 128]

Both sides read the same mp4 files and the same frames: the 8 TSN test-mode segment centres of each video.

- *bare PyAV*: ``av.open``, decode from the start up to the last wanted frame, ``to_ndarray("rgb24")`` for the
  wanted ones, ``np.stack``. With 1 worker a plain loop in this process; with 2 workers the same function
  behind a trivial `Dataset` in a ``torch.utils.data.DataLoader(batch_size, num_workers=2)``, so that worker
  start-up, IPC and collation are the same on both sides and only the per-item work differs.
- *distillkit loader*: ``VideoDataset(records, root, num_segments=8, train=False, transform)`` in a
  ``DataLoader(batch_size, num_workers=w)``; w=0 (in-process) is "1 worker". Rows with the test-time
  transform of a real config (resize the short side to `--crop`, centre crop, ImageNet normalisation) and
  without transform (`clip_to_tensor` only).

Every repeat iterates the whole set once with each method, interleaved (the method order rotates between
repeats); a first warm-up pass of every method is discarded. Torch runs one thread in this process and in every
worker. Ratios loader/bare are computed per repeat, then averaged. The synthetic set (preset *appearance*) is
written once under runs/bench/video_loader/data/ (or `--data DIR`). Prints a table and writes it to
benchmarks/results/video_loader.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

try:
    import resource
except ImportError:  # not on Windows: CPU time of this process only
    resource = None

from distillkit.data.synthetic_video import write_synthetic_videos
from distillkit.data.video import (
    CenterCrop,
    Compose,
    Normalize,
    PyAVReader,
    Resize,
    VideoDataset,
    VideoRecord,
    parse_list_file,
    segment_indices,
)
from distillkit.data.video.decode import one_thread_conversion
from distillkit.report.meta import run_metadata
from distillkit.report.tables import markdown_table, print_table

NUM_SEGMENTS = 8
FORK = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
METHODS = ("bare", "loader", "loader_raw")  # loader_raw: VideoDataset without transform


# ------------------------------------------------------------------------------------------------ the data
def prepare_data(args: argparse.Namespace) -> tuple[Path, list[VideoRecord]]:
    """The data folder and its first `args.videos` records; writes the synthetic set unless already there."""
    per_class = math.ceil(args.videos / args.classes)
    wanted = {
        "preset": "appearance",
        "num_classes": args.classes,
        "videos_per_class": per_class,
        "frames": args.frames,
        "size": args.size,
        "seed": 0,
        "fps": 8,
        "test_fraction": 0.0,
    }
    root = args.data or Path("runs/bench/video_loader/data") / (
        f"appearance_c{args.classes}_v{per_class}_f{args.frames}_s{args.size}"
    )
    meta = root / "synthetic.json"
    if meta.is_file():
        found = json.loads(meta.read_text())
        if found != wanted:
            raise SystemExit(f"{root} holds another synthetic set ({found}); pass another --data folder")
    elif not (root / "train.txt").is_file():  # a folder with its own train.txt is used as it is
        print(f"writing {args.classes * per_class} synthetic videos to {root} ...", flush=True)
        write_synthetic_videos(root, **wanted)
    records = parse_list_file(root / "train.txt")[: args.videos]
    return root, records


# ------------------------------------------------------------------------------------------- bare PyAV side
def bare_clip(path: str, num_segments: int = NUM_SEGMENTS) -> np.ndarray:
    """The TSN test-mode frames of one video with nothing but PyAV and numpy: uint8 (T, H, W, 3)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        n = stream.frames
        if n <= 0:
            raise ValueError(
                f"{path}: the container declares no frame count, which the bare loop needs (mp4)"
            )
        k = np.arange(num_segments)
        idx = np.minimum((2 * k * n + n) // (2 * num_segments), n - 1).tolist()  # segment centres
        wanted, last = set(idx), max(idx)
        frames = {}
        stream.thread_count = 1  # FFmpeg on this thread, as `PyAVReader` decodes
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24", **one_thread_conversion())
            if i >= last:
                break
    return np.stack([frames[i] for i in idx])


class BareDataset(Dataset):
    """A trivial dataset around `bare_clip`, to run the bare loop in DataLoader workers."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return bare_clip(self.paths[index])


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # DataLoader workers do this already; explicit, as the comparison relies on it


def eval_transform(crop: int) -> Compose:
    """The test-time pipeline of a TSN/TSM config at `crop` pixels."""
    return Compose([Resize(crop), CenterCrop(crop), Normalize(IMAGENET_MEAN, IMAGENET_STD)])


# ------------------------------------------------------------------------------------------------ timing
def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers are joined after a pass)."""
    own = time.process_time()
    if resource is None:
        return own
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


def run_pass(
    method: str,
    workers: int,
    paths: list[str],
    root: Path,
    records: list[VideoRecord],
    args: argparse.Namespace,
) -> tuple[float, float]:
    """Clips per second (wall clock) and CPU milliseconds per clip (all processes) of one pass over the set."""
    cpu = _cpu_seconds()
    start = time.perf_counter()
    count = 0
    if method == "bare" and workers == 1:
        for p in paths:
            count += len(bare_clip(p)) // NUM_SEGMENTS
    else:
        if method == "bare":
            dataset: Dataset = BareDataset(paths)
        else:
            transform = eval_transform(args.crop) if method == "loader" else None
            dataset = VideoDataset(records, root, num_segments=NUM_SEGMENTS, train=False, transform=transform)
        num_workers = 0 if workers == 1 else workers
        loader = DataLoader(
            dataset,
            batch_size=args.batch_size,
            num_workers=num_workers,
            worker_init_fn=_one_thread if num_workers else None,
            # forked, as a job's workers are on Linux, and this process's children, whose CPU time it counts
            multiprocessing_context=FORK if num_workers else None,
        )
        for batch in loader:
            count += len(batch[0] if method != "bare" else batch)
        del loader  # the iterator has joined its workers: their CPU time is in RUSAGE_CHILDREN
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    if count != len(paths):
        raise RuntimeError(f"{method}: {count} clips for {len(paths)} videos")
    return count / elapsed, 1e3 * cpu / count


def check_same_frames(paths: list[str], root: Path, records: list[VideoRecord]) -> None:
    """The bare loop and the toolkit decode the same frames (checked on the first video)."""
    reader = PyAVReader(root / records[0].path)
    ours = reader.read(segment_indices(reader.num_frames, NUM_SEGMENTS, train=False))
    if not np.array_equal(ours, bare_clip(paths[0])):
        raise RuntimeError("bare loop and PyAVReader decode different frames")


def measure(args: argparse.Namespace, root: Path, records: list[VideoRecord]) -> tuple[dict, dict]:
    """Clips/s and CPU ms/clip as {workers: {method: [value per repeat]}}, the warm-up pass discarded."""
    paths = [str(root / r.path) for r in records]
    check_same_frames(paths, root, records)
    rates: dict[int, dict[str, list[float]]] = {w: {m: [] for m in METHODS} for w in args.workers}
    cpu: dict[int, dict[str, list[float]]] = {w: {m: [] for m in METHODS} for w in args.workers}
    for rep in range(-1, args.repeats):  # -1: warm-up
        for w in args.workers:
            shift = max(rep, 0) % len(METHODS)
            for method in METHODS[shift:] + METHODS[:shift]:
                rate, ms = run_pass(method, w, paths, root, records, args)
                if rep >= 0:
                    rates[w][method].append(rate)
                    cpu[w][method].append(ms)
        if rep >= 0:
            line = ", ".join(
                f"w{w} " + " ".join(f"{m} {rates[w][m][-1]:.1f}" for m in METHODS) for w in rates
            )
            print(f"repeat {rep + 1}/{args.repeats}: clips/s {line}", flush=True)
    return rates, cpu


# ----------------------------------------------------------------------------------------------- reporting
def mean_std(values: list[float], fmt: str = "{:.1f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


HEADER = [
    "workers",
    "bare PyAV clips/s",
    "loader clips/s (transform)",
    "loader clips/s (no transform)",
    "loader/bare (transform)",
    "loader/bare (no transform)",
]


CPU_HEADER = [
    "workers",
    "bare PyAV CPU ms/clip",
    "loader CPU ms/clip (transform)",
    "loader CPU ms/clip (no transform)",
    "bare/loader (transform)",
    "bare/loader (no transform)",
]


def _rows(per_workers: dict, ratio) -> list[list[str]]:
    """One row per worker count: bare, loader and loader-without-transform figures, then `ratio(loader, bare)` of
    each loader against the bare loop (mean ± std over repeats)."""
    rows = []
    for w, r in per_workers.items():
        ratios = [
            [ratio(a, b) for a, b in zip(r[loader], r["bare"], strict=True)]
            for loader in ("loader", "loader_raw")
        ]
        rows.append(
            [str(w), mean_std(r["bare"]), mean_std(r["loader"]), mean_std(r["loader_raw"])]
            + [mean_std(x, "{:.2f}") for x in ratios]
        )
    return rows


def cpu_rows(cpu: dict) -> list[list[str]]:
    """CPU cost per clip; the ratio bare/loader is the loader's CPU efficiency (1 = as cheap as bare)."""
    return _rows(cpu, lambda loader, bare: bare / loader)


def table_rows(rates: dict) -> list[list[str]]:
    """Clips per second; the ratio loader/bare is the loader's speed against the bare loop."""
    return _rows(rates, lambda loader, bare: loader / bare)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(args: argparse.Namespace, root: Path, records: list[VideoRecord], command: str) -> list[str]:
    v = run_metadata(torch.device("cpu"))["versions"]
    size_mb = sum((root / r.path).stat().st_size for r in records) / 1e6
    reader = PyAVReader(root / records[0].path)
    h, w = reader.read([0]).shape[1:3]
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return [
        f"- machine: {cpu_model()}, {cpus} CPUs ({usable} usable), "
        f"torch threads {torch.get_num_threads()} here and 1 per worker, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; python {v['python']}, torch {v['torch']}, PyAV "
        f"{av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), distillkit {v['distillkit']}",
        f"- data: {len(records)} H.264 mp4 videos of {reader.num_frames} frames at {w}×{h} ({size_mb:.1f} MB) "
        f"from `{root}`; {NUM_SEGMENTS} segments (TSN test mode, centres) per clip; batch size {args.batch_size}",
        f"- loader transform: Resize({args.crop}) + CenterCrop({args.crop}) + ImageNet Normalize; "
        "'no transform' = `clip_to_tensor` only (float T×C×H×W in [0, 1])",
        "- 1 worker: bare = plain loop in this process, loader = DataLoader(num_workers=0); 2 workers: both "
        "sides are DataLoader(num_workers=2), the bare side over a trivial Dataset wrapping the bare function",
        f"- {args.repeats} repeats (mean ± std; ratio per repeat), methods interleaved, warm-up pass discarded",
        f"- command: `{command}`",
    ]


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; returns {"rates", "cpu_ms", "header", "rows", "cpu_rows", "text"}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="data folder (default: a cached synthetic set)"
    )
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video_loader.md"))
    args = parser.parse_args(argv)
    args.classes = min(args.classes, args.videos)
    torch.set_num_threads(1)
    root, records = prepare_data(args)
    rates, cpu = measure(args, root, records)

    rows, rows_cpu = table_rows(rates), cpu_rows(cpu)
    print_table("Video loading: clips/s, wall clock (mean ± std over repeats)", HEADER, rows)
    print_table("CPU time per clip, this process + workers (mean ± std)", CPU_HEADER, rows_cpu)
    env = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    args_text = shlex.join(sys.argv[1:] if argv is None else list(argv))
    command = f"{env}python benchmarks/video_loader.py {args_text}".strip()
    notes = describe(args, root, records, command)
    text = (
        "Decoded clips per second (wall clock, mean ± std over repeats; ratio per repeat):\n\n"
        + markdown_table(HEADER, rows)
        + "\nCPU milliseconds per clip, this process plus its DataLoader workers (less sensitive to other load "
        "on a shared machine); bare/loader = the loader's CPU efficiency:\n\n"
        + markdown_table(CPU_HEADER, rows_cpu)
        + "\n"
        + "\n".join(notes)
        + "\n"
    )
    print("\n".join(notes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Video data loading: distillkit loader vs bare PyAV\n\n" + text)
    return {"rates": rates, "cpu_ms": cpu, "header": HEADER, "rows": rows, "cpu_rows": rows_cpu, "text": text}


if __name__ == "__main__":
    main()
