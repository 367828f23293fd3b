"""VGG-style classifiers with a width multiplier, for small (CIFAR/MNIST-size) or ImageNet-size inputs."""

from __future__ import annotations

import torch
from torch import nn

from distillkit.models.registry import init_conv_bn, register_backbone

# Stage layouts of Simonyan & Zisserman (2015); "M" is a 2×2 max-pool closing a stage.
VGG_LAYOUTS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


class VGG(nn.Module):
    """VGG with batch norm. `small_input=True` uses the CIFAR head (global pool + one linear layer)."""

    def __init__(
        self,
        layout: list[int | str],
        num_classes: int,
        in_channels: int = 3,
        width: float = 1.0,
        small_input: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out = scaled(int(item), width)
                layers += [
                    nn.Conv2d(channels, out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                ]
                channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1 if small_input else 7)
        if small_input:
            self.classifier: nn.Module = nn.Sequential(nn.Flatten(1), nn.Linear(channels, num_classes))
        else:
            hidden = scaled(4096, width)
            self.classifier = nn.Sequential(
                nn.Flatten(1),
                nn.Linear(channels * 49, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(hidden, num_classes),
            )
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_backbone("vgg11")
def vgg11(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> VGG:
    """VGG-11 with batch norm (configuration A of Simonyan & Zisserman, ICLR 2015)."""
    return VGG(VGG_LAYOUTS["vgg11"], num_classes, in_channels, width, small_input)


@register_backbone("vgg13")
def vgg13(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> VGG:
    """VGG-13 with batch norm (configuration B)."""
    return VGG(VGG_LAYOUTS["vgg13"], num_classes, in_channels, width, small_input)


@register_backbone("vgg16")
def vgg16(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> VGG:
    """VGG-16 with batch norm (configuration D)."""
    return VGG(VGG_LAYOUTS["vgg16"], num_classes, in_channels, width, small_input)


@register_backbone("vgg19")
def vgg19(num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True) -> VGG:
    """VGG-19 with batch norm (configuration E)."""
    return VGG(VGG_LAYOUTS["vgg19"], num_classes, in_channels, width, small_input)
