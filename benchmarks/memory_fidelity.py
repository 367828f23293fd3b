"""What storing a clip in the exemplar memory costs a model: its accuracy on clips given back by the memory.

    python benchmarks/memory_fidelity.py RUN [RUN ...]

Each RUN is a finished `distillkit incremental` run (for instance `runs/bench/civc_bench/appearance/lucir/order_100`
of `benchmarks/civc_bench.py --preset appearance --dev`). Its base-step model (checkpoints/step_000.pt, trained on
sharp clips only) classifies its own classes' test clips as they are, scaled down and back up without storing
(`memory.at_stored_scale`), and written into an `ExemplarMemory` and read back (`MemoryDataset`) at frame scales 1,
0.7 and 0.5 with JPEG quality 90 and 4:2:0 or 4:4:4 chroma; with the bytes per stored frame. One thread.

Writes benchmarks/results/memory_fidelity.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from distillkit.api import load_incremental_model
from distillkit.data.videos import build_video_datasets
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.data import ClassSubset
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset, at_stored_scale
from distillkit.jobs.incremental import build_stream_scenario
from distillkit.report.tables import markdown_table

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (1.0, 0.7, 0.5)
CHROMA = ("4:2:0", "4:4:4")


def measure(run: Path) -> list[tuple[str, float, float | None]]:
    """(variant, accuracy %, bytes per stored frame or None) of the base-step model of `run`."""
    cfg = IncrementalConfig.model_validate(json.loads((run / "results.json").read_text())["config"])
    data = build_video_datasets(cfg.data, cfg.seed)
    scenario = build_stream_scenario(cfg, data.num_classes)
    model = load_incremental_model(run, step=0)
    test = ClassSubset(data.test, scenario.seen(0), scenario)
    raws = [test.raw_clip(i) for i in range(len(test))]
    labels = torch.tensor(test.labels)
    transform = data.test.transform

    def accuracy(clips: list[torch.Tensor]) -> float:
        x = torch.stack(clips)
        with torch.no_grad():
            pred = torch.cat([model(x[i : i + 64]).argmax(1) for i in range(0, len(x), 64)])
        return 100 * (pred == labels).double().mean().item()

    def shown(frames: list[np.ndarray]) -> list[torch.Tensor]:
        return [transform(f, 0, np.random.default_rng(0))[0] for f in frames]

    rows = [("as they are", accuracy(shown(raws)), None)]
    for scale in SCALES[1:]:
        rows.append(
            (f"scale {scale}, not stored", accuracy(shown([at_stored_scale(r, scale) for r in raws])), None)
        )
    for scale in SCALES:
        for chroma in CHROMA:
            with tempfile.TemporaryDirectory() as folder:
                memory = ExemplarMemory(Path(folder) / "m", 10**9, len(raws[0]), frame_scale=scale,
                                        jpeg_quality=90, jpeg_subsampling=chroma)  # fmt: skip
                memory.add_class(0, [(f"v{i}", r, list(range(len(r)))) for i, r in enumerate(raws)])
                given = MemoryDataset(memory, transform)
                clips = [given[i][0] for i in range(len(given))]
                per_frame = (memory.bytes_on_disk() - memory.manifest_path.stat().st_size) / memory.frames
            rows.append((f"scale {scale}, stored as JPEG q90 {chroma}", accuracy(clips), per_frame))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    measured = {run: measure(run) for run in args.runs}
    variants = [name for name, _, _ in next(iter(measured.values()))]
    names = [f"{run.parent.parent.name} {run.name}" for run in args.runs]
    table = []
    for k, variant in enumerate(variants):
        sizes = {rows[k][2] for rows in measured.values()} - {None}
        size = f"{np.mean(list(sizes)):.0f}" if sizes else ""
        table.append([variant, *(f"{rows[k][1]:.2f}" for rows in measured.values()), size])
    text = "\n".join([
        "# memory_fidelity",
        "",
        "Top-1 % of each run's base-step model on its base classes' test clips, given back by the exemplar memory "
        f"(`python benchmarks/memory_fidelity.py {' '.join(str(r) for r in args.runs)}`); bytes per stored frame "
        "averaged over the runs.",
        "",
        markdown_table(["clips", *names, "bytes / frame"], table),
        "",
    ])  # fmt: skip
    (RESULTS / "memory_fidelity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
