"""`report.md` of a `compress` or `train` run: its `report.json` as Markdown, readable without the toolkit.

Pure functions of the report dict (the fields the jobs write, docs/design.md, "Output contract") and the date
to print; the jobs write the text next to `report.json`. Class-incremental runs have their own (`incremental_report`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from distillkit.report.tables import markdown_table


def compress_summary(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of teacher vs student (and the baselines' accuracy), with the speed-ups."""
    t, s = report["teacher"], report["student"]
    batches = list(t["latency_ms"])
    clips = "clips_per_s" in t  # a video run: MACs per clip, and clips/s at each batch size
    header = ["model", "top-1 %", "params", "MACs/clip (M)" if clips else "MACs (M)"]
    header += [f"latency b{b} (ms)" for b in batches] + ([f"clips/s b{b}" for b in batches] if clips else [])

    def row(name: str, e: Mapping[str, Any]) -> list[str]:
        latency = [f"{e['latency_ms'][b]:.2f}" for b in batches]
        rate = [f"{e['clips_per_s'][b]:.1f}" for b in batches] if clips else []
        return [name, f"{e['accuracy']:.2f}", f"{e['params']:,}", f"{e['macs'] / 1e6:.2f}", *latency, *rate]

    rows = [row("teacher", t), row("student (PBKD)", s)]
    blank = ["" for _ in batches] * (2 if clips else 1)
    for name, b in report.get("baselines", {}).items():
        rows.append([f"student ({name})", f"{b['accuracy']:.2f}", "", "", *blank])
    sp = report["speedup"]
    latency = [f"{sp['latency'][b]:.2f}×" for b in batches]
    rate = [f"{s['clips_per_s'][b] / t['clips_per_s'][b]:.2f}×" for b in batches] if clips else []
    rows.append(["speed-up", "", f"{sp['params']:.2f}×", f"{sp['macs']:.2f}×", *latency, *rate])
    return header, rows


def video_lines(report: Mapping[str, Any]) -> list[str]:
    """What a video compression run preserved, block by block: spatial receptive field, shifts, frames seen."""
    video = report.get("video")
    if not video:
        return []
    lines = [
        f"Teacher: the {video['teacher_kind']} run {video['teacher_run']} ({video['classes']} classes, "
        f"{video['num_segments']} frames a clip); the student trains on {video['trained_on']}.",
        "",
    ]
    rows = [
        [b["name"], "×".join(map(str, b["receptive_field"])), "×".join(map(str, b["student_receptive_field"])),
         f"{b['shifts']} / {b['student_shifts']}", f"{b['frames_seen']} / {b['student_frames_seen']}"]
        for b in video["blocks"]
    ]  # fmt: skip
    header = ["block", "receptive field", "student's", "shifts (teacher / student)", "frames seen (t / s)"]
    return lines + [markdown_table(header, rows)]


def _run_lines(report: Mapping[str, Any], created: str) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    device = report.get("device", {})
    return [
        f"Written {created}; seed {report.get('seed')}; device {device.get('type')} ({device.get('name')}, "
        f"{device.get('threads')} threads); {versions}.",
        "",
    ]


def _config_block(report: Mapping[str, Any]) -> list[str]:
    return ["## Config", "", "```json", json.dumps(report.get("config", {}), indent=1), "```", ""]


def compress_report(report: Mapping[str, Any], created: str) -> str:
    """The Markdown report of a PBKD compression run."""
    header, rows = compress_summary(report)
    lines = ["# PBKD compression", "", *_run_lines(report, created), "## Teacher and student", ""]
    lines += [markdown_table(header, rows)]
    if report.get("video"):
        lines += ["## What each block sees", "", *video_lines(report)]
    lines += ["## Stages", ""]
    stage_rows = [
        [str(st["stage"]), st["name"], f"{st['accuracy']:.2f}", f"{st['macs'] / 1e6:.2f}", f"{st['params']:,}",
         str(st["steps"]), f"{st['seconds']:.1f}"]
        for st in report["stages"]
    ]  # fmt: skip
    lines += [
        markdown_table(["stage", "replaced", "top-1 %", "MACs (M)", "params", "steps", "seconds"], stage_rows)
    ]
    training = report.get("training") or {}
    if training.get("pbkd_to_teacher_macs") is not None:
        lines += [
            f"Training compute, PBKD (all stages) / teacher: {training['pbkd_to_teacher_macs']:.3f} in MACs"
            + (
                f", {training['pbkd_to_teacher_time']:.2f} in time."
                if training.get("pbkd_to_teacher_time") is not None
                else "."
            ),
            "",
        ]
    onnx = report.get("onnx")
    if onnx:
        lines += [f"ONNX export: `student.onnx`, checked with onnxruntime ({json.dumps(onnx)}).", ""]
    lines += ["## Accuracy against MACs", "", "![accuracy vs MACs](accuracy_vs_macs.png)", ""]
    return "\n".join(lines + _config_block(report))


def train_report(report: Mapping[str, Any], created: str) -> str:
    """The Markdown report of a `train` run (images or videos)."""
    lines = [f"# Training {report['model']}", "", *_run_lines(report, created)]
    rows = [["top-1 (%)", f"{report['accuracy']:.2f}"]]
    if "top5" in report:
        rows.append(["top-5 (%)", f"{report['top5']:.2f}"])
    rows.append(["parameters", f"{report['params']:,}"])
    if "macs" in report:
        rows.append(["MACs (M)", f"{report['macs'] / 1e6:.2f}"])
    rows += [
        ["training samples", f"{report['train_samples']:,}"],
        ["training seconds", f"{report['train_seconds']:.1f}"],
    ]
    if "skipped" in report:
        rows.append(["skipped videos", str(report["skipped"]["count"])])
    lines += [markdown_table(["", "value"], rows)]
    if "confusion_matrix" in report:
        lines += ["## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", ""]
    return "\n".join(lines + _config_block(report))
