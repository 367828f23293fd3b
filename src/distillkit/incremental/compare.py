"""Compare class-incremental runs: mean ± std per method over the ``results.json`` of several run directories."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from distillkit.errors import DistillkitError
from distillkit.incremental.metrics import CLASSIFIERS, classifier_figures, other_classifier
from distillkit.report.tables import markdown_table, print_table

# results.json fields summarised per method (docs/design.md, "Output contract").
METRICS = ("avg_incremental_accuracy", "final_accuracy", "forgetting", "bwt")


def _number(value: object, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DistillkitError(f"{path}: {key!r} must be a number, got {value!r}")
    return float(value)


def _field(data: Mapping, path: Path, key: str, prefix: str = "") -> object:
    """`data[a][b]...` for the dotted `key` (`prefix`: where `data` sits in the file, for the error)."""
    node: object = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise DistillkitError(
                f"{path}: missing key {prefix + key!r} (is this a distillkit incremental results.json?)"
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
    own = data.get("classifier") or "cnn"
    if own not in CLASSIFIERS:
        raise DistillkitError(f"{path}: 'classifier' must be one of {list(CLASSIFIERS)}, got {own!r}")
    figures, other = classifier_figures(data, own), classifier_figures(data, other_classifier(own))
    if not isinstance(figures, dict):
        raise DistillkitError(f"{path}: missing the figures of its own classifier {own!r}")
    key = "" if figures is data else "nme."  # where they sit in the file (the older layout: under `nme`)
    out = {"path": str(path), "method": method, "seed": data.get("seed"), "classifier": own}
    for metric in METRICS:
        out[metric] = _number(_field(figures, path, metric, key), path, key + metric)
    # frames of the videos' size: a memory of smaller frames says what its frames hold (`full_frames`)
    memory_key = (
        "full_frames"
        if isinstance(data.get("memory"), dict) and "full_frames" in data["memory"]
        else "frames"
    )
    out["memory_frames"] = _number(_field(data, path, f"memory.{memory_key}"), path, f"memory.{memory_key}")
    out["other_classifier"] = other_classifier(own) if isinstance(other, dict) else None
    out["other_avg_incremental_accuracy"] = None
    if isinstance(other, dict):
        where = "" if other is data else f"{other_classifier(own)}."
        value = _field(other, path, "avg_incremental_accuracy", where)
        out["other_avg_incremental_accuracy"] = _number(value, path, where + "avg_incremental_accuracy")
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


HEADER = ["Method", "Classifier", "Runs", "Avg inc. acc (%)", "Final acc (%)", "Forgetting", "BWT"]


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each method by its own classifier; the other classifier's average incremental accuracy beside, named."""
    with_other = any(r["other_avg_incremental_accuracy"] is not None for r in rows)
    header = HEADER + (["Other classifier: avg inc. acc (%)"] if with_other else []) + ["Memory (frames)"]
    body = []
    for r in rows:
        cells = [r["method"], r["classifier"].upper(), str(r["runs"])] + [_fmt(r[key]) for key in METRICS]
        if with_other:
            other = r["other_avg_incremental_accuracy"]
            cells.append("-" if other is None else f"{r['other_classifier'].upper()} {_fmt(other)}")
        frames = r["memory_frames"]
        cells.append(f"{frames:.0f}" if float(frames).is_integer() else f"{frames:.1f}")
        body.append(cells)
    return header, body


def compare(dirs: Sequence[Path | str], labels: Sequence[str] | None = None) -> tuple[list[dict], str]:
    """Group runs by method (first-appearance order) and summarise each; returns rows and a Markdown table.

    `labels` (one per run) groups and names the rows instead of the method, e.g. variants of one method.

    Each row: ``method``, ``runs``, ``seeds``, ``paths``, ``classifier`` (the runs' own), ``{metric: {"mean",
    "std"}}`` for the accuracies, forgetting and BWT by that classifier, ``other_classifier``,
    ``other_avg_incremental_accuracy`` (over the runs that measured the other classifier, else None),
    ``other_runs`` and ``memory_frames`` (mean).
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
        row["classifier"] = "/".join(dict.fromkeys(r["classifier"] for r in runs))
        for key in METRICS:
            row[key] = _stats([r[key] for r in runs])
        other = [r for r in runs if r["other_avg_incremental_accuracy"] is not None]
        row["other_classifier"] = "/".join(dict.fromkeys(r["other_classifier"] for r in other)) or None
        row["other_avg_incremental_accuracy"] = _stats([r["other_avg_incremental_accuracy"] for r in other])
        row["other_runs"] = len(other)
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
