"""The backbone registry: built-in names, a backbone of one's own reachable by name from a config, errors."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from distillkit import api
from distillkit.config import CompressConfig, TrainConfig, VideoTrainConfig, load_config
from distillkit.errors import ConfigError
from distillkit.models import backbones, build_model, registry
from distillkit.models.factory import build_video_model
from distillkit.models.registry import BACKBONES, backbone_names, register_backbone
from distillkit.models.tsm import ShiftConv2d, VideoResNet

IMAGE = ["resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56", "vgg11", "vgg13",
         "vgg16", "vgg19"]  # fmt: skip
VIDEO = ["resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56"]


class TinyResNet(nn.Module):
    """Two stages of one basic block: what a video backbone needs (`conv1`, `bn1`, `relu`, stages, `avgpool`,
    `fc`), and an image classifier too."""

    stages = ("layer1", "layer2")

    def __init__(self, num_classes: int, in_channels: int, width: float) -> None:
        super().__init__()
        c = max(1, round(8 * width))
        self.conv1 = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(c, c))
        down = nn.Sequential(nn.Conv2d(c, 2 * c, 1, stride=2, bias=False), nn.BatchNorm2d(2 * c))
        self.layer2 = nn.Sequential(BasicBlock(c, 2 * c, stride=2, downsample=down))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.avgpool(h).flatten(1))


@pytest.fixture
def tiny_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tiny_resnet` registered for images and videos, in a copy of the registry dropped after the test."""
    monkeypatch.setattr(registry, "BACKBONES", dict(registry.BACKBONES))

    @register_backbone("tiny_resnet", tasks=("image", "video"))
    def tiny_resnet(
        num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
    ) -> TinyResNet:
        return TinyResNet(num_classes, in_channels, width)


def test_the_built_in_backbones_keep_their_names_and_come_one_file_each() -> None:
    assert backbone_names("image") == IMAGE
    assert backbone_names("video") == VIDEO
    files = {f"{backbones.__name__}.{m.name}" for m in pkgutil.iter_modules(backbones.__path__)}
    assert {b.build.__module__ for b in BACKBONES.values()} == files  # every file registers, none is missed


def test_a_registered_backbone_is_built_by_name_from_a_config(tiny_registered: None, tmp_path: Path) -> None:
    cfg = load_config(None, TrainConfig, ["model.arch=tiny_resnet", "model.width=0.5"])
    model = build_model(cfg.model.arch, 4, 1, cfg.model.width)
    assert isinstance(model, TinyResNet) and model.conv1.out_channels == 4 and model.fc.out_features == 4

    video = load_config(None, VideoTrainConfig, ["model.arch=tiny_resnet", "model.shift_div=2"])
    clips = build_video_model(video.model, num_classes=3, num_segments=2)
    assert clips.stages == ("layer1", "layer2") and isinstance(clips.maxpool, nn.Identity)
    assert isinstance(clips.layer1[0].conv1, ShiftConv2d) and isinstance(clips.layer2[0].conv1, ShiftConv2d)
    assert clips(torch.randn(2, 2, 3, 16, 16)).shape == (2, 3)

    # the train job, end to end, on the registered backbone
    tiny = [
        "data.synthetic.channels=1",
        "data.synthetic.train_per_class=4",
        "data.synthetic.test_per_class=2",
    ]
    result = api.train(
        {"device": "cpu", "model": {"arch": "tiny_resnet", "train": {"steps": 1}}}, tmp_path / "run", tiny
    )
    assert result.model == "tiny_resnet" and result.model_path is not None and result.model_path.is_file()


def test_an_unknown_backbone_is_refused_by_the_config_listing_the_registered_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("teacher: {arch: vgg99}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, CompressConfig)
    assert (
        str(err.value)
        == f"{path}: 'teacher.arch': unknown model arch 'vgg99'; registered: {', '.join(IMAGE)}"
    )
    assert (
        load_config(None, TrainConfig, ["model.arch=resnet32"]).model.arch == "resnet32"
    )  # CIFAR ResNets: both
    with pytest.raises(ConfigError) as err:  # VGG has no residual stages to shift
        load_config(None, VideoTrainConfig, ["model.arch=vgg16"])
    assert str(err.value) == (
        f"config: 'model.arch': unknown video backbone 'vgg16'; registered: {', '.join(VIDEO)}"
    )
    with pytest.raises(
        ConfigError, match="unknown video backbone 'vgg16'"
    ):  # also when built without a config
        VideoResNet("vgg16", 3, num_segments=2)
    assert build_model("resnet20", 3).fc.out_features == 3
    with pytest.raises(ConfigError, match="unknown model arch 'resnet99'"):
        build_model("resnet99", 3)


def test_a_name_is_registered_once(tiny_registered: None) -> None:
    def again(
        num_classes: int, in_channels: int = 3, width: float = 1.0, small_input: bool = True
    ) -> nn.Module:
        return TinyResNet(num_classes, in_channels, width)

    with pytest.raises(ValueError, match="'tiny_resnet' is empty or already registered"):
        register_backbone("tiny_resnet")(again)
    assert registry.BACKBONES["tiny_resnet"].build is not again
