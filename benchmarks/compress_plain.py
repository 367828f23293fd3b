"""How a plain (VGG-style) block's student brings back its output width: `student.plain: restore` against `internal`,
PBKD alone, on the configs that still ran with `restore`.

    OMP_NUM_THREADS=1 python benchmarks/compress_plain.py --config demo        # the demo's compression
    OMP_NUM_THREADS=1 python benchmarks/compress_plain.py --config fmnist      # the README's quickstart config

`restore` (the default) thins every conv of a block and adds a 1×1 conv + BN + ReLU that starts random; `internal`
keeps the block's last conv at the teacher's width, reading the thinned channels, so an inherited student block is
the teacher block without its weakest internal filters. The families benchmark chose `internal` for VGG-16 and the
user CNN on its probe seeds (`compress_families.py`); this script measures the two on the configs that did not:
the demo's (`src/distillkit/presets/demo_compress.yaml`, VGG-11 on the embedded images) and
`configs/compress_fashion_mnist_vgg16.yaml` (VGG-16 on a 15 000-image Fashion-MNIST subset, 1.5-epoch stages).
Both designs are asked for the same MACs reduction (`student.macs_reduction`: what `ratio: 0.5` gives `restore`
on that config), so they compare at equal cost. The teacher is trained once (seed 0) into OUT/<config>/teacher;
each seed is a compress run without baselines in OUT/<config>/<design>_seed<N> (finished runs are reused;
`--designs` runs one design, so that two processes can share the work, and writes no table).
Paired differences internal − restore per seed, mean and 95 % t-interval; writes
benchmarks/results/compress_plain_<config>.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compress_families import t_interval
from compress_fashion_mnist import train_teacher

CONFIGS = {
    "demo": (Path("src/distillkit/presets/demo_compress.yaml"), 2.6),
    "fmnist": (Path("configs/compress_fashion_mnist_vgg16.yaml"), 3.2),
}
"""Each config and the MACs reduction both designs are asked for (`ratio: 0.5` gives `restore` 2.63× on the demo's
and 3.21× on the Fashion-MNIST config)."""
DESIGNS = ("restore", "internal")


def run(config: Path, reduction: float, design: str, seed: int, teacher: Path, out: Path) -> dict:
    """The report of one PBKD run (run, resumed, or read back)."""
    from distillkit.config import CompressConfig, load_config
    from distillkit.jobs.compress import CompressionRun

    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text())
    overrides = [
        f"seed={seed}",
        f"teacher.checkpoint={teacher / 'model.pt'}",
        f"student.plain={design}",
        f"student.macs_reduction={reduction}",
        "baselines.methods=[]",
        "export_onnx=false",
    ]
    return CompressionRun(load_config(config, CompressConfig, overrides), out, resume=True).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/compress_plain"))
    parser.add_argument(
        "--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS),
        help="run only these (two processes, one design each); the table needs both",
    )  # fmt: skip
    args = parser.parse_args()
    config, reduction = CONFIGS[args.config]
    out = args.out / args.config
    train_teacher(config, [], out / "teacher")
    reports = {
        (design, seed): run(config, reduction, design, seed, out / "teacher", out / f"{design}_seed{seed}")
        for seed in args.seeds
        for design in args.designs
    }
    if len(args.designs) < len(DESIGNS):
        return
    teacher = reports[DESIGNS[0], args.seeds[0]]["teacher"]["accuracy"]
    rows = []
    for seed in args.seeds:
        cells = []
        for design in DESIGNS:
            r = reports[design, seed]
            stages = " → ".join(f"{s['accuracy']:.1f}" for s in r["stages"])
            cells += [f"{r['student']['accuracy']:.2f}", f"{r['speedup']['macs']:.2f}×", stages]
        rows.append(f"| {seed} | " + " | ".join(cells) + " |")
    diffs = [
        reports["internal", s]["student"]["accuracy"] - reports["restore", s]["student"]["accuracy"]
        for s in args.seeds
    ]
    mean, ci = t_interval(diffs)
    verdict = "not separated" if ci is None or ci[0] <= 0 <= ci[1] else ("better" if ci[0] > 0 else "worse")
    interval = "" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    lines = [
        f"# compress_plain_{args.config}",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/compress_plain.py --config {args.config} --seeds "
        f"{' '.join(map(str, args.seeds))}`",
        "",
        f"Config `{config}`, PBKD alone (no baselines), both designs asked for {reduction}× fewer MACs; teacher "
        f"{teacher:.2f} % (trained once, seed 0). Top-1 % of the student, its MACs reduction, and the accuracy after "
        "each stage → the fine-tune (when the config has one).",
        "",
        "| seed | restore | MACs × | after each stage | internal | MACs × | after each stage |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"internal − restore per seed {', '.join(f'{d:+.2f}' for d in diffs)}; mean and 95 % t-interval over "
        f"{len(diffs)} seeds: {mean:+.2f}{interval} ({verdict})",
        "",
    ]
    text = "\n".join(lines)
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path(f"benchmarks/results/compress_plain_{args.config}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
