"""The `distillkit` command: one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from distillkit.errors import DistillkitError


def _add_job(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("config", type=Path, help="YAML config file")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set pbkd.stage.epochs=2 (repeatable)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distillkit", description="Knowledge distillation for vision.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_job(sub, "compress", "compress a CNN by progressive blockwise knowledge distillation (PBKD)")
    _add_job(sub, "train", "train and evaluate one classifier")
    demo = sub.add_parser("demo", help="run the jobs on the embedded synthetic data (a few minutes on a CPU)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    ref = sub.add_parser("config", help="print the reference of every config key of a job, as Markdown")
    ref.add_argument("job", choices=["compress", "train"])
    return parser


def preset(name: str) -> Path:
    """Path of a config shipped inside the package."""
    return Path(str(resources.files("distillkit") / "presets" / name))


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from distillkit.config import CompressConfig, TrainConfig, load_config

    if args.command == "compress":
        from distillkit.compress.job import CompressionRun

        CompressionRun(load_config(args.config, CompressConfig, args.overrides), args.out).run()
    elif args.command == "train":
        from distillkit.train import run_train

        run_train(load_config(args.config, TrainConfig, args.overrides), args.out)
    elif args.command == "demo":
        from distillkit.compress.job import CompressionRun

        print(
            f"PBKD demo: compressing a VGG-11 (width 0.25) on the embedded synthetic images → {args.out}/compress"
        )
        CompressionRun(load_config(preset("demo_compress.yaml"), CompressConfig), args.out / "compress").run()
    elif args.command == "config":
        from distillkit.config_reference import reference

        print(reference({"compress": CompressConfig, "train": TrainConfig}[args.job]))
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except DistillkitError as exc:
        print(f"distillkit: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("distillkit: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
