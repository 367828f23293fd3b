"""The `distillkit` command: one subcommand per job."""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from distillkit.config import load_config
from distillkit.errors import ConfigError, DistillkitError

_SCHEMAS = {
    "compress": "distillkit.config:CompressConfig",
    "compress-video": "distillkit.config:VideoCompressConfig",
    "train": "distillkit.config:TrainConfig",
    "train-video": "distillkit.config:VideoTrainConfig",
    "incremental": "distillkit.incremental.config:IncrementalConfig",
}


def _schema(job: str) -> type:
    import importlib

    module, name = _SCHEMAS[job].split(":")
    return getattr(importlib.import_module(module), name)


def _add_job(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("config", type=Path, help="YAML config file")
    p.add_argument(
        "--out",
        required=True,
        help="output folder: new or empty, or one this job's run already holds (marked by its run.json)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the distillkit run --out holds (any job, any config) and start this one; a folder holding "
        "files but no run.json is never deleted",
    )
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
    compress = _add_job(
        sub, "compress", "compress a CNN by progressive blockwise knowledge distillation (PBKD)"
    )
    compress.add_argument(
        "--resume", action="store_true", help="continue the run in --out after its last finished phase"
    )
    train = _add_job(sub, "train", "train and evaluate one classifier")
    train.add_argument(
        "--resume",
        action="store_true",
        help="with --out holding this train run (same config): if it finished (report.json), say so and exit "
        "without training; if not, go on after its last full epoch (checkpoints/train.pt)",
    )
    inc = _add_job(sub, "incremental", "learn video classes step by step (class-incremental) and evaluate")
    inc.add_argument("--resume", action="store_true", help="continue the run in --out after its last step")
    cmp = sub.add_parser(
        "compare", help="table of class-incremental runs side by side (mean ± std over seeds)"
    )
    cmp.add_argument("runs", nargs="+", type=Path, help="run folders holding results.json")
    cmp.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    methods = sub.add_parser("methods", help="list the registered class-incremental methods")
    methods.add_argument(
        "--options", action="store_true", help="print every method's options (method.options.*) as Markdown"
    )
    demo = sub.add_parser("demo", help="run the jobs on the embedded synthetic data (a few minutes on a CPU)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    ref = sub.add_parser("config", help="print the reference of every config key of a job, as Markdown")
    ref.add_argument("job", choices=sorted(_SCHEMAS))
    _add_data(sub)
    return parser


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="video data tools: synthetic data, annotation conversion")
    tools = data.add_subparsers(dest="tool", required=True)
    synth = tools.add_parser(
        "synth",
        help="write the embedded synthetic video benchmark as mp4 files and annotation files",
        description="Write synthetic videos (mp4) with list (train.txt/test.txt) and SSv2 JSON annotations.",
    )
    synth.add_argument("--preset", choices=["motion", "appearance", "mixed"], default="motion")
    synth.add_argument("--out", required=True, help="output folder (new or empty)")
    synth.add_argument("--num-classes", type=int, default=6)
    synth.add_argument("--videos-per-class", type=int, default=50)
    synth.add_argument("--frames", type=int, default=16)
    synth.add_argument("--size", type=int, default=64, help="frame height and width (even)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--fps", type=int, default=8)
    synth.add_argument("--test-fraction", type=float, default=0.2)
    conv = tools.add_parser(
        "convert",
        help="turn SSv2 / Kinetics / UCF101 / HMDB51 / rawframe annotations into a list file",
        description="Inputs of the built-in formats: ssv2: labels.json split.json; kinetics: CSV; ucf101: "
        "classInd.txt split.txt; hmdb51: split folder; list / rawframes: the list (checked and rewritten). Any "
        "registered annotation format is accepted; an unknown one is refused, listing them.",
    )
    conv.add_argument(
        "format", metavar="FORMAT", help="annotation format (ssv2, kinetics, ucf101, hmdb51, ...)"
    )
    conv.add_argument("inputs", nargs="+", type=Path)
    conv.add_argument("--out", type=Path, required=True, help="the list file to write")
    conv.add_argument("--classes-out", type=Path, help="also write the class names, one a line")
    conv.add_argument("--split", type=int, help="HMDB51 split number (1-3; default 1)")
    conv.add_argument("--subset", choices=["train", "test"], help="HMDB51 subset (default train)")
    conv.add_argument("--classes", type=Path, help="Kinetics: class names file (use the training classes)")
    conv.add_argument(
        "--root",
        type=Path,
        help="folder the listed paths are relative to (default: the folder of --out); every listed video must be "
        "there, else nothing is written",
    )
    conv.add_argument(
        "--no-check", action="store_true", help="write the list without checking that the listed videos exist"
    )
    conv.add_argument(
        "--path-format",
        help="ssv2: video path from {id} (default {id}.webm); kinetics: from {label}, {label_}, {youtube_id}, "
        "{clip_id}, {split} (default {label}/{clip_id}.mp4)",
    )


def _run_data(args: argparse.Namespace) -> None:
    if args.tool == "synth":
        from distillkit.data.synthetic_video import write_synthetic_videos
        from distillkit.engine.run_folder import out_path, require_empty_folder

        args.out = out_path(args.out)
        require_empty_folder(args.out, "data synth")
        try:
            write_synthetic_videos(
                args.out, args.preset, args.num_classes, args.videos_per_class, args.frames, args.size,
                args.seed, fps=args.fps, test_fraction=args.test_fraction,
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"data synth: {exc}") from None
        n = args.num_classes * args.videos_per_class
        print(f"wrote {n} {args.preset} videos ({args.frames}×{args.size}×{args.size}) to {args.out}")
        return
    from distillkit.data.video import convert, format_names, get_format

    fmt = get_format(args.format)
    given = {
        "split": args.split,
        "subset": args.subset,
        "classes": args.classes,
        "path_format": args.path_format,
    }
    options = {key: value for key, value in given.items() if value is not None}
    for key in options:  # each option goes to the formats that take it
        if key not in fmt.options:
            takers = " and ".join(name for name in format_names() if key in get_format(name).options)
            raise ConfigError(f"--{key.replace('_', '-')} applies to {takers} only")
    if "classes" in options:
        if not args.classes.is_file():
            raise ConfigError(f"{args.classes}: class names file not found")
        options["classes"] = [x.strip() for x in args.classes.read_text().splitlines() if x.strip()]
    if args.no_check and args.root is not None:
        raise ConfigError("--root and --no-check contradict each other: pass one of them")
    root = None if args.no_check else args.root if args.root is not None else args.out.parent
    records = convert(
        args.format, *args.inputs, out=args.out, classes_out=args.classes_out, root=root, **options
    )
    print(f"wrote {len(records)} videos to {args.out}")


def preset(name: str) -> Path:
    """Path of a config shipped inside the package."""
    return Path(str(resources.files("distillkit") / "presets" / name))


DEMO_METHODS = ["finetune", "icarl", "civc"]


def _demo_incremental(out: Path) -> None:
    """A short class-incremental stream on the embedded motion videos, once per demo method, then the table and a
    plot of each method's accuracy (by its own classifier) after every step."""
    from distillkit.incremental.compare import write_comparison
    from distillkit.incremental.config import IncrementalConfig
    from distillkit.incremental.methods import build_method
    from distillkit.jobs.incremental import run_incremental
    from distillkit.report.incremental_plots import plot_accuracy_per_step

    print(f"Class-incremental demo: {', '.join(DEMO_METHODS)} on 8 synthetic motion classes (4+2+2) → {out}")
    runs, base_of_head, series = [], {}, {}
    for method in DEMO_METHODS:
        overrides = [f"method.name={method}"]
        head = build_method(method, {}).head
        if head in base_of_head:  # methods of one head type start from the same base model
            overrides.append(f"train.base_model={base_of_head[head]}")
        cfg = load_config(preset("demo_incremental.yaml"), IncrementalConfig, overrides)
        if (out / method).exists():
            shutil.rmtree(out / method)
        results = run_incremental(cfg, out / method)
        own = results  # results.json's top level holds the method's own classifier
        series[f"{method} ({results['classifier'].upper()})"] = own["accuracy_per_step"]
        base_of_head.setdefault(head, out / method)
        runs.append(out / method)
    write_comparison(runs, out / "comparison.md")
    seen = list(itertools.accumulate(results["classes_per_step"]))
    plot_accuracy_per_step(series, seen, out / "accuracy_per_step.png", "Demo: accuracy on all classes seen")
    print(f"plot: {out / 'accuracy_per_step.png'}")


def _check_out_file(out: Path) -> None:
    """`compare --out` names a file to write (before any work): not a folder, in a folder that is or can be made."""
    if str(out).strip() in ("", "."):
        raise ConfigError("--out: empty path; give the Markdown file to write, e.g. --out comparison.md")
    if out.is_dir():
        raise ConfigError(
            f"--out {out}: is a folder; compare writes one Markdown file (e.g. --out {out / 'comparison.md'})"
        )
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--out {out}: cannot create the file ({parent} is a file)")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write the file ({parent} is not writable)")
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"--out {out}: file is not writable")


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from distillkit.config import CompressConfig
    from distillkit.engine.distributed import launched

    if launched() and args.command == "demo":
        raise DistillkitError(
            "demo: multi-process (torchrun, WORLD_SIZE > 1) runs are supported by `distillkit train`, "
            "`compress` and `incremental`; run the demo as one process"
        )

    if args.command in ("compress", "train", "incremental"):
        from distillkit import api

        job = {"compress": api.compress, "train": api.train, "incremental": api.incremental}[args.command]
        job(args.config, args.out, args.overrides, resume=args.resume, overwrite=args.overwrite)
    elif args.command == "compare":
        from distillkit.incremental.compare import write_comparison

        if args.out is not None:
            _check_out_file(args.out)
        write_comparison(args.runs, args.out)
    elif args.command == "methods" and args.options:
        from distillkit.config_reference import method_options_reference

        print(method_options_reference())
    elif args.command == "methods":
        from distillkit.incremental.methods import METHODS

        for name, cls in METHODS.items():
            print(f"{name:10s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    elif args.command == "demo":
        from distillkit.jobs.compress import CompressionRun

        print(
            f"PBKD demo: compressing a VGG-11 (width 0.25) on the embedded synthetic images → {args.out}/compress"
        )
        if (args.out / "compress").exists():  # the demo starts afresh, as its incremental part does
            shutil.rmtree(args.out / "compress")
        CompressionRun(load_config(preset("demo_compress.yaml"), CompressConfig), args.out / "compress").run()
        _demo_incremental(args.out / "incremental")
    elif args.command == "config":
        from distillkit.config_reference import reference

        print(reference(_schema(args.job)))
    elif args.command == "data":
        _run_data(args)
    return 0


def one_line(text: str) -> str:
    """`text` with every character that is not printable (line breaks, control characters a user typed into a
    value) written as its escape, so that an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except DistillkitError as exc:
        print(f"distillkit: error: {one_line(str(exc))}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("distillkit: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
