"""Why does the whole-student KD fine-tune after the PBKD stages lose accuracy? The student as the stages of a
finished `distillkit compress` run left it, fine-tuned with variants of the fine-tune side by side (same steps).

    python benchmarks/compress_finetune_probe.py RUN [--seeds 0 1]   # RUN: a finished compress folder

Variants: the configured fine-tune (KD α, T, learning rate); cross-entropy only; a tenth of the learning rate;
batch norms kept in eval mode (running statistics frozen). Prints a Markdown table (top-1 %, mean ± std over
data-order seeds) and writes it to benchmarks/results/compress_finetune_probe.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

import torch

from distillkit.compress.pbkd import KDFinetuneObjective, progressive_distill
from distillkit.compress.resume import set_random_state
from distillkit.compress.student import student_from_config
from distillkit.config import CompressConfig
from distillkit.data.images import build_image_datasets, make_loaders
from distillkit.engine.checkpoint import load_checkpoint
from distillkit.engine.device import resolve_device, seed_everything
from distillkit.engine.loop import NonFiniteLoss, evaluate, fit
from distillkit.models.blocks import block_shapes, split_model
from distillkit.models.factory import obtain_model


class FrozenStatisticsFinetune(KDFinetuneObjective):
    """The fine-tune with every batch norm in eval mode: running statistics as the stages left them."""

    def set_mode(self) -> None:
        self.student.eval()
        self.teacher.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `distillkit compress` output folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="data-order seeds per variant")
    args = parser.parse_args()
    report = json.loads((args.run / "report.json").read_text())
    cfg = CompressConfig.model_validate(report["config"])
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    data = build_image_datasets(cfg.data, cfg.seed)
    train_loader, test_loader = make_loaders(data, cfg.data, cfg.seed)
    obtained = obtain_model(cfg.teacher, data, train_loader, device, args.run / "teacher.pt", cfg.seed)
    teacher = split_model(obtained.model, cfg.blocks).to(device)
    shapes = block_shapes(teacher, torch.zeros(2, data.in_channels, data.image_size, data.image_size))
    ratio = report.get("student_ratio", cfg.student.ratio)
    students = student_from_config(teacher.blocks, shapes, cfg.student, ratio)
    phases = load_checkpoint(args.run / "checkpoints" / "compress.pt")["phases"]
    order = [entry["results"]["entry"]["block"] for name, entry in phases.items() if name.startswith("stage")]
    for stage, k in enumerate(order):
        students[k].load_state_dict(phases[f"stage {stage + 1}"]["results"]["block"])
    net = progressive_distill(
        teacher, students, train_loader, 1, cfg.pbkd.optim, device, order=order, done=len(order)
    )  # put the trained blocks in place, training nothing
    after_stages = copy.deepcopy(net.state_dict())
    ft = cfg.pbkd.finetune
    steps = ft.budget.num_steps(len(train_loader))
    lr = ft.optim.lr
    variants = {
        f"KD α={ft.alpha}, T={ft.temperature}, lr {lr} (configured)": (KDFinetuneObjective, ft.alpha, lr),
        f"cross-entropy only, lr {lr}": (KDFinetuneObjective, 0.0, lr),
        f"KD α={ft.alpha}, lr {lr / 10:g}": (KDFinetuneObjective, ft.alpha, lr / 10),
        f"KD α={ft.alpha}, lr {lr}, batch norms in eval mode": (FrozenStatisticsFinetune, ft.alpha, lr),
    }
    rows = [f"| after the stages (no fine-tune) | {evaluate(net, test_loader, device):.2f} |"]
    print(rows[-1], flush=True)
    last_stage = phases[f"stage {len(order)}"]["random"]

    def finetune(objective: type, alpha: float, variant_lr: float, seed: int | None) -> str:
        """Fine-tune the stages' student; `seed` None: from the run's own random state after its last stage."""
        net.load_state_dict(after_stages)
        net.requires_grad_(True)
        if seed is None:
            set_random_state(last_stage, train_loader.generator)
        else:
            seed_everything(seed)
            train_loader.generator.manual_seed(seed)
        optim = ft.optim.model_copy(update={"lr": variant_lr})
        try:
            fit(objective(net, teacher, alpha, ft.temperature), train_loader, steps, optim, device, desc="ft")
        except NonFiniteLoss as exc:
            return "diverged (" + str(exc).split(": ", 1)[1].split(";")[0] + ")"
        return f"{evaluate(net, test_loader, device):.2f}"

    configured = next(iter(variants))
    rows.append(f"| {configured}, the run's own data order | {finetune(*variants[configured], None)} |")
    print(rows[-1], flush=True)
    for label, (objective, alpha, variant_lr) in variants.items():
        results = [finetune(objective, alpha, variant_lr, seed) for seed in args.seeds]
        numbers = [float(r) for r in results if not r.startswith("diverged")]
        if len(numbers) < len(results):
            cell = "; ".join(results)
        else:
            spread = f" ± {statistics.stdev(numbers):.2f}" if len(numbers) > 1 else ""
            cell = f"{statistics.fmean(numbers):.2f}{spread}"
        rows.append(f"| {label} | {cell} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# compress_finetune_probe",
            "",
            f"`python benchmarks/compress_finetune_probe.py {args.run} --seeds {' '.join(map(str, args.seeds))}`",
            "",
            f"Run: teacher {report['teacher']['accuracy']:.2f} %, PBKD student after its fine-tune "
            f"{report['student']['accuracy']:.2f} %; fine-tune of {steps} steps (batch {cfg.data.batch_size}), "
            f"mean ± std over data-order seeds {args.seeds}.",
            "",
            "| fine-tune | top-1 % |",
            "|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    dest = Path("benchmarks/results/compress_finetune_probe.md")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


if __name__ == "__main__":
    main()
