"""torchvision ResNets with a width multiplier and a small-input stem (3×3 stride-1 conv, no max-pool)."""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet

from distillkit.models.registry import register_backbone

_DEPTHS = {
    "resnet18": (resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (resnet.Bottleneck, [3, 4, 6, 3]),
}


def build_resnet(
    arch: str, num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> resnet.ResNet:
    """A torchvision `ResNet` (same module names, so torchvision checkpoints load at width 1)."""
    block, layers = _DEPTHS[arch]
    base = max(1, int(round(64 * width)))
    model = resnet.ResNet(block, layers, num_classes=num_classes, width_per_group=64)
    if base != 64 or in_channels != 3 or small_input:
        model = _rebuild(block, layers, num_classes, in_channels, base, small_input)
    return model


@register_backbone("resnet18", tasks=("image", "video"))
def resnet18(
    num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> resnet.ResNet:
    """ResNet-18 (He et al., CVPR 2016): basic blocks, 2-2-2-2."""
    return build_resnet("resnet18", num_classes, in_channels, width, small_input)


@register_backbone("resnet34", tasks=("image", "video"))
def resnet34(
    num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> resnet.ResNet:
    """ResNet-34: basic blocks, 3-4-6-3."""
    return build_resnet("resnet34", num_classes, in_channels, width, small_input)


@register_backbone("resnet50", tasks=("image", "video"))
def resnet50(
    num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
) -> resnet.ResNet:
    """ResNet-50: bottleneck blocks, 3-4-6-3."""
    return build_resnet("resnet50", num_classes, in_channels, width, small_input)


def _rebuild(block, layers, num_classes, in_channels, base, small_input) -> resnet.ResNet:
    # torchvision's ResNet hard-codes 64 stem channels; build it, then swap in narrower parts with the same names.
    model = resnet.ResNet(block, layers, num_classes=num_classes)
    model.inplanes = base
    if small_input:
        model.conv1 = nn.Conv2d(in_channels, base, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(in_channels, base, 7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(base)
    model.layer1 = model._make_layer(block, base, layers[0])
    model.layer2 = model._make_layer(block, base * 2, layers[1], stride=2)
    model.layer3 = model._make_layer(block, base * 4, layers[2], stride=2)
    model.layer4 = model._make_layer(block, base * 8, layers[3], stride=2)
    model.fc = nn.Linear(base * 8 * block.expansion, num_classes)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model
