"""A plain CNN of the kind a user brings: not part of distillkit, compressed through the Python API by module names.

Three conv stages (two 3×3 convs + BN + ReLU each, then a 2×2 max-pool), global average pooling and a linear
classifier. `register()` makes it a backbone the compress job can name (`teacher.arch: user_cnn`); the blocks are
given by module name: `BLOCKS` (each stage ends at its pool).
"""

from __future__ import annotations

import torch
from torch import nn

from distillkit.models import register_backbone
from distillkit.models.registry import BACKBONES

NAME = "user_cnn"
BLOCKS = ["pool1", "pool2", "pool3"]


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class UserCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (16, 32, 64))
        self.conv1a, self.conv1b, self.pool1 = (
            conv_bn_relu(in_channels, c1),
            conv_bn_relu(c1, c1),
            nn.MaxPool2d(2),
        )
        self.conv2a, self.conv2b, self.pool2 = conv_bn_relu(c1, c2), conv_bn_relu(c2, c2), nn.MaxPool2d(2)
        self.conv3a, self.conv3b, self.pool3 = conv_bn_relu(c2, c3), conv_bn_relu(c3, c3), nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1b(self.conv1a(x)))
        x = self.pool2(self.conv2b(self.conv2a(x)))
        x = self.pool3(self.conv3b(self.conv3a(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def build(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> UserCNN:
    return UserCNN(num_classes, in_channels, width)


def register() -> None:
    """Register `UserCNN` as the image backbone `user_cnn` (once per process)."""
    if NAME not in BACKBONES:
        register_backbone(NAME)(build)
