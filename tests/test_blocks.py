import pytest
import torch
from torch import nn

from distillkit.errors import SplitError
from distillkit.models import build_model
from distillkit.models.blocks import split_model


@pytest.mark.parametrize(
    ("arch", "names"),
    [
        ("vgg16", ["features.6", "features.13", "features.23", "features.33", "features.43"]),
        ("vgg11", ["features.3", "features.7", "features.14", "features.21", "features.28"]),
        ("resnet18", ["maxpool", "layer1", "layer2", "layer3", "layer4"]),
        ("resnet50", ["maxpool", "layer1", "layer2", "layer3", "layer4"]),
        ("resnet20", ["relu", "layer1", "layer2", "layer3"]),  # CIFAR ResNet: the stem ends at its ReLU
        ("resnet56", ["relu", "layer1", "layer2", "layer3"]),
    ],
)
def test_split_reassembles_exactly(arch: str, names: list[str]) -> None:
    model = build_model(arch, num_classes=7, in_channels=3, width=0.125).eval()
    net = split_model(model)
    assert net.names == names
    assert len(net.blocks) == len(names)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))
    # blocks share the teacher's parameters (no copies)
    assert {id(p) for p in net.parameters()} <= {id(p) for p in model.parameters()}


def test_imagenet_style_resnet_stem_block() -> None:
    model = build_model("resnet18", num_classes=5, width=0.125, small_input=False).eval()
    net = split_model(model)
    x = torch.randn(1, 3, 64, 64)
    assert net.blocks[0](x).shape == (1, 8, 16, 16)  # 7×7/2 conv then 3×3/2 max-pool
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


class UserNet(nn.Module):
    """A user's own model with a skip connection inside `stage2` and one across `stage1`→`head`."""

    def __init__(self, skip_across: bool = False) -> None:
        super().__init__()
        self.skip_across = skip_across
        self.stage1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stage1(x)
        b = self.stage2(a)
        if self.skip_across:
            b = b + a
        return self.fc(self.pool(b).flatten(1))


def test_split_user_model_by_module_names() -> None:
    model = UserNet().eval()
    net = split_model(model, ["stage1", "stage2"])
    x = torch.randn(2, 3, 16, 16)
    assert net.blocks[0](x).shape == (2, 8, 8, 8)
    assert torch.equal(net(x), model(x))


def test_split_across_skip_connection_is_refused() -> None:
    with pytest.raises(SplitError, match="skip connection"):
        split_model(UserNet(skip_across=True), ["stage1", "stage2"])


def test_split_errors_name_the_problem() -> None:
    with pytest.raises(SplitError, match="no module named 'stage3'.*stage1"):
        split_model(UserNet(), ["stage1", "stage3"])
    with pytest.raises(SplitError, match="before the one listed ahead"):
        split_model(UserNet(), ["stage2", "stage1"])
    with pytest.raises(SplitError, match="no max-pool"):
        split_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), "auto")
