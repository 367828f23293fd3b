"""Compare class-incremental runs: mean ± std per method over the ``results.json`` of several run directories."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from distillkit.errors import DistillkitError
from distillkit.report.tables import markdown_table, print_table

# results.json fields summarised per method (docs/design.md, "Output contract").
METRICS = ("avg_incremental_accuracy", "final_accuracy", "forgetting", "bwt")


def _number(value: object, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DistillkitError(f"{path}: {key!r} must be a number, got {value!r}")
    return float(value)


def _field(data: dict, path: Path, key: str) -> object:
    node: object = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise DistillkitError(
                f"{path}: missing key {key!r} (is this a distillkit incremental results.json?)"
            )
        node = node[part]
    return node


def load_results(run: Path | str) -> dict:
    """Read ``RUN/results.json`` (or the JSON file itself) and return the fields the comparison needs."""
    run = Path(run)
    path = run if run.suffix == ".json" and not run.is_dir() else run / "results.json"
    if not path.is_file():
        raise DistillkitError(
            f"{path}: no results.json here; pass the --out directory of a distillkit incremental run"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DistillkitError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise DistillkitError(f"{path}: expected a JSON object at the top level")
    method = _field(data, path, "method")
    if not isinstance(method, str) or not method:
        raise DistillkitError(f"{path}: 'method' must be a non-empty string, got {method!r}")
    out = {"path": str(path), "method": method, "seed": data.get("seed")}
    for key in METRICS:
        out[key] = _number(_field(data, path, key), path, key)
    out["memory_frames"] = _number(_field(data, path, "memory.frames"), path, "memory.frames")
    nme = data.get("nme")
    out["nme_avg_incremental_accuracy"] = (
        _number(_field(data, path, "nme.avg_incremental_accuracy"), path, "nme.avg_incremental_accuracy")
        if isinstance(nme, dict)
        else None
    )
    return out


def _stats(values: list[float]) -> dict | None:
    """Mean and sample standard deviation (ddof=1; None with a single value); None without values."""
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def _fmt(stat: dict | None, digits: int = 2) -> str:
    if stat is None:
        return "-"
    text = f"{stat['mean']:.{digits}f}"
    return text if stat["std"] is None else f"{text} ± {stat['std']:.{digits}f}"


HEADER = ["Method", "Runs", "Avg inc. acc (%)", "Final acc (%)", "Forgetting", "BWT"]


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    with_nme = any(r["nme_avg_incremental_accuracy"] is not None for r in rows)
    header = HEADER + (["NME avg inc. acc (%)"] if with_nme else []) + ["Memory (frames)"]
    body = []
    for r in rows:
        cells = [r["method"], str(r["runs"])] + [_fmt(r[key]) for key in METRICS]
        if with_nme:
            cells.append(_fmt(r["nme_avg_incremental_accuracy"]))
        frames = r["memory_frames"]
        cells.append(f"{frames:.0f}" if float(frames).is_integer() else f"{frames:.1f}")
        body.append(cells)
    return header, body


def compare(dirs: Sequence[Path | str], labels: Sequence[str] | None = None) -> tuple[list[dict], str]:
    """Group runs by method (first-appearance order) and summarise each; returns rows and a Markdown table.

    `labels` (one per run) groups and names the rows instead of the method, e.g. variants of one method.

    Each row: ``method``, ``runs``, ``seeds``, ``paths``, ``{metric: {"mean", "std"}}`` for the accuracies,
    forgetting and BWT, ``nme_avg_incremental_accuracy`` (over the runs that have an NME head, else None),
    ``nme_runs`` and ``memory_frames`` (mean).
    """
    if not dirs:
        raise DistillkitError("compare needs at least one run directory")
    if labels is not None and len(labels) != len(dirs):
        raise ValueError(f"compare: {len(labels)} labels for {len(dirs)} runs")
    groups: dict[str, list[dict]] = {}
    for i, d in enumerate(dirs):
        result = load_results(d)
        groups.setdefault(result["method"] if labels is None else labels[i], []).append(result)
    rows = []
    for method, runs in groups.items():
        row: dict = {
            "method": method,
            "runs": len(runs),
            "seeds": [r["seed"] for r in runs],
            "paths": [r["path"] for r in runs],
        }
        for key in METRICS:
            row[key] = _stats([r[key] for r in runs])
        nme = [
            r["nme_avg_incremental_accuracy"] for r in runs if r["nme_avg_incremental_accuracy"] is not None
        ]
        row["nme_avg_incremental_accuracy"] = _stats(nme)
        row["nme_runs"] = len(nme)
        row["memory_frames"] = statistics.fmean(r["memory_frames"] for r in runs)
        rows.append(row)
    header, body = _table(rows)
    return rows, markdown_table(header, body)


def write_comparison(dirs: Sequence[Path | str], out_md: Path | str | None = None) -> str:
    """Print the comparison table and write it as Markdown to ``out_md`` when given; returns the Markdown."""
    rows, markdown = compare(dirs)
    header, body = _table(rows)
    print_table("Class-incremental comparison (mean ± std over runs)", header, body)
    if out_md is not None:
        out_md = Path(out_md)
        try:
            out_md.parent.mkdir(parents=True, exist_ok=True)
            out_md.write_text(markdown)
        except OSError as exc:
            raise DistillkitError(
                f"{out_md}: cannot write the table ({exc.strerror or exc.__class__.__name__})"
            ) from None
    return markdown
