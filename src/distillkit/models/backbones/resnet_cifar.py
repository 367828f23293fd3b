"""The CIFAR ResNets of He et al. 2016 (§4.2), as used by image class-incremental work (PyCIL, LUCIR, PODNet).

Depth 6n+2: a 3×3 conv with 16 filters (+BN+ReLU), three stages `layer1`..`layer3` of n basic blocks with 16, 32
and 64 channels at strides 1, 2, 2, global average pooling and a linear classifier `fc`. `resnet20/32/44/56`
are n = 3, 5, 7, 9. Blocks are torchvision's `BasicBlock`, so module names are torchvision's.

Shortcuts: where a block changes shape (first block of `layer2` and `layer3`) the shortcut is a 1×1 strided conv
+ BN projection (the paper's option B), not option A's parameter-free subsampling with zero-padded channels that
PyCIL's `resnet32` uses; this adds 16·32 + 2·32 + 32·64 + 2·64 = 2,752 parameters at width 1.
Parameters at width 1, 3 input channels and K classes (BN weight and bias counted, running statistics not):
stem 464, `layer1` 4,672·n, `layer2` 13,952 + 576 + 18,560·(n−1), `layer3` 55,552 + 2,176 + 73,984·(n−1),
`fc` 65·K; in all 97,216·n − 19,824 + 65·K, so `resnet32` for CIFAR-10 has 466,906 (0.46 M, as in the paper).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from distillkit.models.registry import init_conv_bn, register_backbone

CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9}
"""Blocks per stage (n) of each CIFAR ResNet (depth 6n+2)."""


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images; `width` scales the 16/32/64 channels."""

    stages = ("layer1", "layer2", "layer3")

    def __init__(self, n: int, num_classes: int, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if n < 1 or width <= 0:
            raise ValueError(f"need n >= 1 and width > 0, got n={n}, width={width}")
        base = max(1, int(round(16 * width)))
        self.conv1 = nn.Conv2d(in_channels, base, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = base
        self.layer1 = self._make_layer(base, n, stride=1)
        self.layer2 = self._make_layer(base * 2, n, stride=2)
        self.layer3 = self._make_layer(base * 4, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(base * 4, num_classes)
        init_conv_bn(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features (N, 64·width) of images (N, C, H, W)."""
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.avgpool(h).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def cifar_resnet(arch: str, num_classes: int, in_channels: int = 3, width: float = 1.0) -> CifarResNet:
    """The CIFAR ResNet named `arch` (resnet20, resnet32, resnet44 or resnet56)."""
    if arch not in CIFAR_DEPTHS:
        raise ValueError(f"unknown CIFAR ResNet '{arch}'; available: {', '.join(CIFAR_DEPTHS)}")
    return CifarResNet(CIFAR_DEPTHS[arch], num_classes, in_channels, width)


@register_backbone("resnet20", tasks=("image", "video"))
def resnet20(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> CifarResNet:
    """ResNet-20 (n = 3, 0.27 M parameters for CIFAR-10); always a 3×3 stem (`small_input` does not apply)."""
    return CifarResNet(3, num_classes, in_channels, width)


@register_backbone("resnet32", tasks=("image", "video"))
def resnet32(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> CifarResNet:
    """ResNet-32 (n = 5, 0.46 M parameters for CIFAR-10); always a 3×3 stem (`small_input` does not apply)."""
    return CifarResNet(5, num_classes, in_channels, width)


@register_backbone("resnet44", tasks=("image", "video"))
def resnet44(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> CifarResNet:
    """ResNet-44 (n = 7, 0.66 M parameters for CIFAR-10); always a 3×3 stem (`small_input` does not apply)."""
    return CifarResNet(7, num_classes, in_channels, width)


@register_backbone("resnet56", tasks=("image", "video"))
def resnet56(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> CifarResNet:
    """ResNet-56 (n = 9, 0.85 M parameters for CIFAR-10); always a 3×3 stem (`small_input` does not apply)."""
    return CifarResNet(9, num_classes, in_channels, width)
