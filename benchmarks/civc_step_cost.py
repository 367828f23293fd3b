"""What a CIVC training step costs on top of Finetune's, measured side by side on one CPU thread: time and
training throughput (clips/s) of each step, and the share of each extra part.

Both steps train the backbone of `configs/incremental_synthetic_motion.yaml` (TSM ResNet-18 width 1/8, 8×28×28
clips, batch 16, cosine head of 9 classes) on the same batch with AdamW: forward, loss, backward, update. The
CIVC step (its parts on: KD and the spatial and temporal distillation, which its defaults switch off) adds the
frozen old model's forward, trajectory tracking on its stage features, the spatio-temporal decomposition and the
distillation terms. Each part is also timed alone. Repeats interleave the two steps so
that machine noise hits both alike; the table gives mean ± std over repeats (each the median of its iterations).

    python benchmarks/civc_step_cost.py
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from distillkit.config import load_config
from distillkit.distill.spatiotemporal import track
from distillkit.incremental.config import IncrementalConfig
from distillkit.incremental.methods import StepContext, build_method
from distillkit.incremental.objectives import model_outputs
from distillkit.models.factory import build_video_model
from distillkit.models.heads import make_head
from distillkit.report.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def median_ms(fn: Callable[[], object], iterations: int) -> float:
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "configs" / "incremental_synthetic_motion.yaml", IncrementalConfig, [])
    torch.manual_seed(0)
    t, size, batch = cfg.data.num_segments, cfg.data.crop, cfg.data.batch_size
    model = build_video_model(cfg.model, 9, t)
    model.head = make_head("cosine", model.feature_dim, 9)
    old = copy.deepcopy(model).eval().requires_grad_(False)
    every_part = {"logit_weight": 1.0, "spatial_weight": 1.0, "temporal_weight": 1.0}  # the costly parts, on
    method = build_method("civc", every_part)
    options = method.options
    ctx = StepContext(step=1, num_old=6, num_seen=9, old_model=old, device=torch.device("cpu"))
    x, y = torch.rand(batch, t, 3, size, size), torch.randint(0, 9, (batch,))
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    stages = [k for k in model_outputs(old, x) if k.startswith("layer")]

    def train(loss_of: Callable[[], torch.Tensor]) -> None:
        optim.zero_grad(set_to_none=True)
        loss_of().backward()
        optim.step()

    def finetune_loss() -> torch.Tensor:
        return F.cross_entropy(model_outputs(model, x)["logits"], y)

    def civc_loss() -> torch.Tensor:
        out = model_outputs(model, x)
        out["clips"] = x
        with torch.no_grad():
            before = model_outputs(old, x)
        return method.loss(out, before, y, ctx)[0]

    with torch.no_grad():
        old_out = model_outputs(old, x)
    new_out = model_outputs(model, x)
    new_out["clips"] = x
    fixed = build_method("civc", {**every_part, "trajectories": "none"})
    parts: dict[str, Callable[[], object]] = {
        "Finetune step": lambda: train(finetune_loss),
        "CIVC step": lambda: train(civc_loss),
        "old-model forward": lambda: torch.no_grad()(model_outputs)(old, x),
        f"trajectories ({len(stages)} stages, radius {options.radius})": lambda: [
            track(old_out[s], options.radius) for s in stages
        ],
        "decomposition + distillation terms (forward, fixed positions)": lambda: fixed.feature_losses(
            new_out, old_out
        ),
    }
    for fn in parts.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.repeats):
        for name, fn in parts.items():
            samples[name].append(median_ms(fn, args.iterations))
    step = samples["Finetune step"]
    rows = []
    for name, values in samples.items():
        ratios = [v / s for v, s in zip(values, step, strict=True)]
        throughput = [1000 * batch / v for v in values]
        rows.append([
            name,
            f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}",
            f"{statistics.fmean(throughput):.1f} ± {statistics.stdev(throughput):.1f}" if "step" in name else "-",
            f"{statistics.fmean(ratios):.3f} ± {statistics.stdev(ratios):.3f}",
        ])  # fmt: skip
    civc = samples["CIVC step"]
    traj = samples[next(n for n in samples if n.startswith("trajectories"))]
    share = [a / b for a, b in zip(traj, civc, strict=True)]
    table = markdown_table(["Part", "ms", "clips/s", "× Finetune step"], rows)
    text = "\n".join([
        "# civc_step_cost",
        "",
        "`python benchmarks/civc_step_cost.py`",
        "",
        f"{args.threads} CPU thread(s), batch {batch} of {t}×{size}×{size} clips, TSM {cfg.model.arch} width "
        f"{cfg.model.width}; mean ± std over {args.repeats} repeats of the median of {args.iterations} "
        "iterations.",
        "",
        table,
        "",
        f"- trajectories take {statistics.fmean(share):.1%} ± {statistics.stdev(share):.1%} of the CIVC step "
        f"(target ≤ 25%: {'met' if statistics.fmean(share) <= 0.25 else 'missed'})",
        "",
    ])  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "civc_step_cost.md"
    out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
