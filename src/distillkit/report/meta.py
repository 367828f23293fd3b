"""What every report records about the run: versions and device."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torchvision

import distillkit


@functools.cache
def source_revision() -> str | None:
    """The git commit (12 hex digits) of the distillkit source this process runs, with ``+changes`` when tracked
    files under the package differ from it; None outside a git checkout (an installed wheel)."""
    package = str(Path(distillkit.__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", package, *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changed else "")


def run_metadata(device: torch.device) -> dict:
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    versions = {
        "distillkit": distillkit.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": sys.version.split()[0],
    }
    if (source := source_revision()) is not None:
        versions["source"] = source  # which commit made the numbers
    return {
        "versions": versions,
        "device": {"type": device.type, "name": name, "threads": torch.get_num_threads()},
    }
