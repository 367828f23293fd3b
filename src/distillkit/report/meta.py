"""What every report records about the run: versions and device."""

from __future__ import annotations

import platform
import sys

import torch
import torchvision

import distillkit


def run_metadata(device: torch.device) -> dict:
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {
        "versions": {
            "distillkit": distillkit.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": sys.version.split()[0],
        },
        "device": {"type": device.type, "name": name, "threads": torch.get_num_threads()},
    }
