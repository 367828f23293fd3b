"""What every report records about its run: versions, device, and the source commit that made the numbers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import torch

import distillkit
from distillkit.report.meta import run_metadata, source_revision


def test_reports_name_the_source_commit_when_run_from_a_git_checkout() -> None:
    meta = run_metadata(torch.device("cpu"))
    assert meta["versions"]["distillkit"] == distillkit.__version__ and meta["device"]["type"] == "cpu"
    package = Path(distillkit.__file__).resolve().parent
    head = subprocess.run(["git", "-C", str(package), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True)  # fmt: skip
    if head.returncode != 0:  # an installed copy, not a checkout: nothing to name
        assert source_revision() is None and "source" not in meta["versions"]
        return
    assert re.fullmatch(r"[0-9a-f]{12}(\+changes)?", meta["versions"]["source"])
    assert meta["versions"]["source"].split("+")[0] == head.stdout.strip()
