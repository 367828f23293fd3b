"""`report.md` of a class-incremental run: its `results.json` as Markdown, readable without the toolkit.

`incremental_report` is a pure function of the results dict (the fields written by the stream runner,
docs/design.md, "Output contract") and the date to print; the runner writes its text next to `results.json`
after every step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distillkit.errors import DistillkitError
from distillkit.incremental.metrics import classifier_figures, other_classifier
from distillkit.report.tables import markdown_table

SUMMARY = (
    ("average incremental accuracy (%)", "avg_incremental_accuracy"),
    ("final accuracy (%)", "final_accuracy"),
    ("forgetting (points)", "forgetting"),
    ("BWT (points)", "bwt"),
)
PLOTS = (("Accuracy per step", "accuracy_per_step.png"), ("Accuracy matrix", "accuracy_matrix.png"))
TITLES = {"cnn": "The network's head (CNN)", "nme": "Nearest mean of exemplars (NME)"}


def _get(node: Mapping[str, Any], key: str) -> Any:
    """`node[a][b]...` for the dotted `key`; a missing key raises `DistillkitError` naming it."""
    value: Any = node
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise DistillkitError(f"results.json: missing key {key!r} (needed by report.md)")
        value = value[part]
    return value


def _per_step(results: Mapping[str, Any], key: str) -> Sequence[Any]:
    """The list at `key`, checked to hold one entry per finished step (`steps_done`)."""
    steps, values = _get(results, "steps_done"), _get(results, key)
    if not isinstance(values, Sequence) or len(values) != steps:
        raise DistillkitError(
            f"results.json: {key!r} must hold one entry per finished step ({steps}), got {values!r:.80}"
        )
    return values


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _data_line(data: Mapping[str, Any]) -> str:
    name = _get(data, "name")
    line = str(name)
    if name == "synthetic" and isinstance(data.get("synthetic"), Mapping):
        s = data["synthetic"]
        line += f" ({s.get('preset')}, {s.get('num_classes')} classes, {s.get('train_per_class')} train / "
        line += f"{s.get('test_per_class')} test videos per class, {s.get('size')} px)"
    elif name == "images" and isinstance(data.get("images"), Mapping):
        line += f" ({data['images'].get('name')})"
    if data.get("root"):
        line += f", root `{data['root']}`"
    return line + f", {_get(data, 'num_segments')} segments per clip"


def _scenario_line(scenario: Mapping[str, Any], classes_per_step: Sequence[int]) -> str:
    steps = " + ".join(str(n) for n in classes_per_step)
    if scenario.get("preset"):
        return f"preset `{scenario['preset']}`: {steps} classes"
    return f"{steps} classes (class order seed {scenario.get('order_seed')})"


def _memory_line(memory: Mapping[str, Any]) -> str:
    line = f"{_get(memory, 'budget_frames')} frames"
    if memory.get("per_class_frames") is not None:
        line += f", at most {memory['per_class_frames']} per class"
    return line + f", {memory.get('selection', 'herding')} selection"


def config_section(results: Mapping[str, Any]) -> str:
    """The run's data, model, scenario, memory budget, method, seed and device as a two-column table."""
    cfg = _get(results, "config")
    model = _get(cfg, "model")
    method = _get(cfg, "method")
    options = ", ".join(f"{k}={v}" for k, v in (method.get("options") or {}).items())
    device = results.get("device") or {}
    rows = [
        ["data", _data_line(_get(cfg, "data"))],
        ["model", f"{_get(model, 'arch')}, width {model.get('width')}"],
        ["scenario", _scenario_line(_get(cfg, "scenario"), _get(results, "classes_per_step"))],
        ["memory budget", _memory_line(_get(cfg, "memory"))],
        ["method", f"{_get(method, 'name')}" + (f" ({options})" if options else "")],
        ["seed", str(_get(results, "seed"))],
    ]
    if device:
        versions = results.get("versions") or {}
        rows.append(["device", f"{device.get('type')} ({device.get('name')}), torch {versions.get('torch')}"])
    return markdown_table(["setting", "value"], rows)


def _classifiers(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, key prefix of its figures in `results`) of the run's classifiers: its own first (the headline), then
    the other when measured. The own classifier's figures are on top (prefix ""), the other's under its name;
    `metrics.classifier_figures` also reads the older layout (CNN on top, NME under `nme`)."""
    own = str(results.get("classifier") or "cnn")
    named = []
    for name in (own, other_classifier(own)):
        figures = classifier_figures(results, name)
        if isinstance(figures, Mapping):
            named.append((name, "" if figures is results else f"{name}."))  # beside the top: under its name
        elif name == own:
            raise DistillkitError(f"results.json: missing the figures of the run's own classifier {own!r}")
    return named


def _columns(results: Mapping[str, Any]) -> list[tuple[str, Sequence[float | None]]]:
    """Per-step series of the accuracy table: the own classifier's accuracy (then the other's), old and new
    accuracy when present."""
    columns: list[tuple[str, Sequence[float | None]]] = []
    for name, prefix in _classifiers(results):
        label = name.upper()
        columns.append((f"{label} (%)", _per_step(results, f"{prefix}accuracy_per_step")))
        source = _get(results, prefix.rstrip(".")) if prefix else results
        for part in ("old", "new"):
            if f"{part}_accuracy" in source:
                columns.append((f"{label} {part} (%)", _per_step(results, f"{prefix}{part}_accuracy")))
    return columns


def accuracy_per_step_section(results: Mapping[str, Any]) -> str:
    """One row per step: classes seen, then each accuracy series of `_columns`."""
    seen, total = [], 0
    for n in _per_step(results, "classes_per_step"):
        total += n
        seen.append(total)
    columns = _columns(results)
    rows = [[str(i), str(seen[i]), *(_pct(values[i]) for _, values in columns)] for i in range(len(seen))]
    return markdown_table(["step", "classes seen", *(name for name, _ in columns)], rows)


def matrix_section(matrix: Sequence[Sequence[float | None]]) -> str:
    """a[i][j] with one row per step i and one column per step j's classes (blank above the diagonal)."""
    steps = len(matrix)
    rows = [
        [str(i), *(_pct(row[j]) if j < len(row) and row[j] is not None else "" for j in range(steps))]
        for i, row in enumerate(matrix)
    ]
    return markdown_table(["after step", *(f"step {j}" for j in range(steps))], rows)


def summary_section(results: Mapping[str, Any]) -> str:
    """Average incremental accuracy, final accuracy, forgetting and BWT: the own classifier, then the other."""
    named = _classifiers(results)
    header = ["metric"] + [name.upper() for name, _ in named]
    rows = [[title] + [_pct(_get(results, prefix + key)) for _, prefix in named] for title, key in SUMMARY]
    return markdown_table(header, rows)


def memory_section(results: Mapping[str, Any]) -> str:
    """Exemplar memory (frames, bytes, videos) and seconds of each step."""
    memory, seconds = _per_step(results, "memory_per_step"), _per_step(results, "seconds_per_step")
    rows = [
        [str(i), str(_get(m, "frames")), str(_get(m, "bytes")), str(_get(m, "videos")), f"{seconds[i]:.1f}"]
        for i, m in enumerate(memory)
    ]
    return markdown_table(["step", "frames", "bytes", "videos", "seconds"], rows)


def incremental_report(results: Mapping[str, Any], date: str) -> str:
    """The Markdown text of `report.md` for `results` (a results.json dict), dated `date`."""
    method = _get(results, "method")
    classifier = str(results.get("classifier", "cnn")).upper()
    parts = [
        f"# Class-incremental run: {method}, {date}\n",
        f"{_get(results, 'steps_done')} steps done; the method classifies with its {classifier} classifier, "
        "whose figures come first in each table.\n",
        "## Configuration\n",
        config_section(results),
        "## Accuracy per step\n",
        "Top-1 accuracy (%) on every class seen so far; old: classes of earlier steps, new: this step's.\n",
        accuracy_per_step_section(results),
        "## Accuracy matrix\n",
        "a[i][j]: accuracy (%) after step i on the test videos of step j's classes.\n",
    ]
    for name, prefix in _classifiers(results):
        parts += [f"{TITLES[name]}:\n", matrix_section(_get(results, f"{prefix}accuracy_matrix"))]
    parts += [
        "## Summary\n",
        summary_section(results),
        "## Memory and time\n",
        memory_section(results),
        "## Plots\n",
        "\n".join(f"![{title}]({path})" for title, path in PLOTS) + "\n",
    ]
    return "\n".join(parts)
