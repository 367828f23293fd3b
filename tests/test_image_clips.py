"""Image data sets as one-frame clips, the CIFAR ResNets, and an image class-incremental run in the video engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distillkit.config import ImageDataConfig, VideoDataConfig, VideoModelConfig, load_config
from distillkit.data.images import build_image_datasets
from distillkit.data.video.transforms import RandomPadCrop
from distillkit.data.videos import build_video_datasets, image_clip_transforms, images_to_clips, raw_clip
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.jobs.incremental import run_incremental
from distillkit.models.backbones.resnet_cifar import CIFAR_DEPTHS, cifar_resnet, resnet32
from distillkit.models.tsm import ShiftConv2d, VideoResNet

ROOT = Path(__file__).resolve().parents[1]


def _images(channels: int = 3, augment: bool = False, size: int = 16) -> dict:
    synthetic = {"num_classes": 3, "train_per_class": 4, "test_per_class": 2, "channels": channels}
    return {"name": "synthetic", "image_size": size, "augment": augment, "synthetic": synthetic}


def _data(**images: object) -> VideoDataConfig:
    return VideoDataConfig(name="images", num_segments=1, images=_images(**images))


def test_synthetic_images_become_one_frame_clips_like_the_image_sets() -> None:
    data = build_video_datasets(_data(), seed=3)
    images = build_image_datasets(ImageDataConfig(**_images()), seed=3)  # same images, subsets and stats
    assert data.num_classes == 3 and data.class_names == images.class_names
    assert len(data.train) == 12 and len(data.test) == 6 and len(data.train_eval) == 12
    assert (
        data.train.labels == images.train.labels.tolist() and data.test.labels == images.test.labels.tolist()
    )
    for i in (0, 7):
        clip, label = data.train[i]
        assert clip.shape == (1, 3, 16, 16) and clip.dtype == torch.float32
        assert label == data.train.labels[i]
        assert torch.allclose(clip[0], images.train[i][0], atol=1e-5)  # the same normalised pixels
    frames = raw_clip(data.test, 2)
    assert frames.shape == (1, 16, 16, 3) and frames.dtype == np.uint8
    assert repr(data.train.transform) == "Compose(Normalize)" == repr(data.test.transform)


def test_grey_images_are_replicated_to_three_channels() -> None:
    data = build_video_datasets(_data(channels=1), seed=0)
    videos = data.train.videos
    assert videos.shape == (12, 1, 16, 16, 3)
    assert (videos[..., 0] == videos[..., 1]).all() and (videos[..., 0] == videos[..., 2]).all()
    clip, _ = data.train[5]
    assert torch.equal(clip[:, 0], clip[:, 1]) and torch.equal(clip[:, 0], clip[:, 2])
    # 28×28 MNIST-family images are zero-padded centrally to 32, as the image sets do; other sizes are resized
    grey = np.full((2, 28, 28, 1), 200, dtype=np.uint8)
    padded = images_to_clips(grey, 32, pad=True)
    assert padded.shape == (2, 1, 32, 32, 3)
    assert (
        (padded[:, 0, 2:30, 2:30] == 200).all()
        and padded[:, 0, :2].sum() == 0
        and padded[:, 0, :, 30:].sum() == 0
    )
    resized = images_to_clips(np.full((1, 8, 8, 3), 77, dtype=np.uint8), 16)
    assert resized.shape == (1, 1, 16, 16, 3) and (resized == 77).all()


def test_normalisation_by_hand() -> None:
    clip = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    clip[0, 0, 0] = (255, 0, 51)
    _, test = image_clip_transforms(ImageDataConfig(name="cifar10"), (0.5, 0.25, 0.2), (0.25, 0.5, 0.1), True)
    x, label = test(clip, 4)
    assert label == 4 and x.shape == (1, 3, 2, 2)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([2.0, -0.5, 0.0]))
    assert torch.allclose(x[0, :, 1, 1], torch.tensor([-2.0, -0.5, -2.0]))
    # one grey statistic is replicated to the 3 replicated channels
    _, grey = image_clip_transforms(ImageDataConfig(name="fashion_mnist"), (0.5,), (0.25,), False)
    assert torch.allclose(grey(clip, 0)[0][0, :, 1, 1], torch.full((3,), -2.0))
    train, _ = image_clip_transforms(
        ImageDataConfig(name="fashion_mnist", augment=True), (0.5,), (0.25,), False
    )
    assert repr(train) == "Compose(RandomPadCrop, Normalize)"  # no flip for MNIST-family
    train, _ = image_clip_transforms(ImageDataConfig(name="cifar10", augment=True), (0.5,), (0.25,), True)
    assert repr(train) == "Compose(RandomPadCrop, RandomHorizontalFlip, Normalize)"


def test_random_pad_crop_shifts_by_the_drawn_offset_and_is_seeded() -> None:
    clip = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    clip[:, 3, 5] = 255  # one bright pixel at (row 3, col 5) in both frames
    crop = RandomPadCrop(8, padding=4)
    offsets = set()
    for seed in range(12):
        top, left = crop.draw(8, 8, np.random.default_rng(seed))
        out = crop(clip, np.random.default_rng(seed))
        assert out.shape == (2, 3, 8, 8)
        assert torch.equal(out, crop(clip, np.random.default_rng(seed)))  # same seed, same crop
        assert 0 <= top <= 8 and 0 <= left <= 8
        row, col = 3 + 4 - top, 5 + 4 - left  # the content moves by (4 - top, 4 - left)
        inside = 0 <= row < 8 and 0 <= col < 8
        assert out.sum().item() == (2 * 3 if inside else 0)
        if inside:
            assert (out[:, :, row, col] == 1).all()
        offsets.add((top, left))
    assert len(offsets) > 6
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(crop(clip, g1), crop(clip, g2))
    assert torch.equal(RandomPadCrop(8, padding=0)(clip), torch.from_numpy(clip).permute(0, 3, 1, 2) / 255)


def test_resnet32_parameter_count_and_stages() -> None:
    # stem conv 3·16·9 + BN 2·16; a block conv-BN-conv-BN; 1×1 conv + BN projections into layer2 and layer3
    def block(c_in: int, c: int) -> int:
        return 9 * c_in * c + 2 * c + 9 * c * c + 2 * c

    def count(n: int, k: int) -> int:
        stem = 9 * 3 * 16 + 2 * 16
        layer1 = n * block(16, 16)
        layer2 = block(16, 32) + (16 * 32 + 2 * 32) + (n - 1) * block(32, 32)
        layer3 = block(32, 64) + (32 * 64 + 2 * 64) + (n - 1) * block(64, 64)
        return stem + layer1 + layer2 + layer3 + 64 * k + k

    assert count(5, 10) == 466_906 == 97_216 * 5 - 19_824 + 65 * 10  # 0.46 M, He et al. Table 6
    assert sum(p.numel() for p in resnet32(10).parameters()) == 466_906
    for arch, n in CIFAR_DEPTHS.items():
        assert sum(p.numel() for p in cifar_resnet(arch, 100).parameters()) == count(n, 100), arch
    assert resnet32(10)(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    x = torch.randn(2, 1, 3, 32, 32)
    outputs = []
    for shift in (True, False):
        torch.manual_seed(0)
        model = VideoResNet("resnet32", 100, num_segments=1, shift=shift).eval()
        assert model.stages == ("layer1", "layer2", "layer3") and not hasattr(model, "layer4")
        assert sum(isinstance(m, ShiftConv2d) for m in model.modules()) == (15 if shift else 0)
        assert sum(p.numel() for p in model.parameters()) == count(5, 100)
        with torch.no_grad():
            feats = model.forward_features(x)
        assert [k for k in feats if k.startswith("layer")] == ["layer1", "layer2", "layer3"]
        assert feats["layer1"].shape == (2, 1, 16, 32, 32)
        assert feats["layer2"].shape == (2, 1, 32, 16, 16)
        assert feats["layer3"].shape == (2, 1, 64, 8, 8)
        assert feats["frames"].shape == (2, 1, 64) and feats["pooled"].shape == (2, 64)
        assert model.feature_dim == 64 and model(x).shape == (2, 100)
        outputs.append(feats["pooled"])
    assert torch.equal(outputs[0], outputs[1])  # with one frame the shift changes nothing
    assert VideoModelConfig(arch="resnet56").arch == "resnet56"


def test_image_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="num_segments must be 1"):
        build_video_datasets(VideoDataConfig(name="images", images=_images()), 0)
    with pytest.raises(ConfigError, match="data.flip, data.mean"):
        build_video_datasets(_data().model_copy(update={"flip": True, "mean": [0.1, 0.1, 0.1]}), 0)
    with pytest.raises(ConfigError, match="data.images.root"):
        build_video_datasets(VideoDataConfig(name="images", num_segments=1, images={"name": "cifar100"}), 0)


def test_cifar100_resnet32_config_loads() -> None:
    cfg = load_config(ROOT / "configs" / "incremental_cifar100_resnet32.yaml", IncrementalConfig)
    assert cfg.data.name == "images" and cfg.data.images.name == "cifar100" and cfg.data.num_segments == 1
    assert (
        cfg.model.arch == "resnet32" and cfg.memory.budget_frames == 2000 and cfg.scenario.order_seed == 1993
    )


def test_tiny_image_class_incremental_run(tmp_path: Path) -> None:
    images = {"name": "synthetic", "image_size": 16, "augment": True}
    images["synthetic"] = {"num_classes": 6, "train_per_class": 6, "test_per_class": 2}
    cfg = IncrementalConfig.model_validate(
        {
            "device": "cpu",
            "data": {
                "name": "images",
                "num_segments": 1,
                "batch_size": 8,
                "eval_batch_size": 32,
                "images": images,
            },
            "model": {"arch": "resnet20", "width": 1, "shift": False},
            "scenario": {"base": 2, "increment": 2},
            "memory": {"budget_frames": 12},
            "train": {"base": {"steps": 2}, "step": {"steps": 2}, "optim": {"name": "sgd", "lr": 0.01}},
            "method": {"name": "icarl"},
        }
    )
    run_incremental(cfg, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [len(row) for row in results["accuracy_matrix"]] == [1, 2, 3]
    assert results["classes_per_step"] == [2, 2, 2]
    memory = results["memory_per_step"]
    assert len(memory) == 3 and all(0 < m["frames"] <= 12 for m in memory)
    assert all(m["videos"] == m["frames"] for m in memory)  # one frame per exemplar image
    assert results["classifier"] == "nme" and results["cnn"] is not None  # iCaRL: NME on top, CNN beside
