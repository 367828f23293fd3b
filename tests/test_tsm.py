"""Temporal Shift Module and the TSM/TSN video ResNet."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from distillkit.errors import CheckpointError
from distillkit.models.backbones.resnet import build_resnet
from distillkit.models.tsm import ShiftConv2d, TemporalShift, VideoResNet, temporal_shift


def test_temporal_shift_by_hand():
    # Two clips of T=3 frames, C=8 channels, shift_div=4: fold = 2 channels each way.
    t, c = 3, 8
    x = (
        torch.arange(2 * t * c, dtype=torch.float32).view(2 * t, c, 1, 1) + 1
    )  # value = 1 + (clip*T + frame)*C + ch
    out = temporal_shift(x, num_segments=t, shift_div=4)
    assert out.shape == x.shape
    v, o = x.view(2, t, c), out.view(2, t, c)
    # channels 0, 1: frame f takes frame f+1's values; the last frame is zero
    assert torch.equal(o[:, :2, 0:2], v[:, 1:, 0:2]) and torch.equal(o[:, 2, 0:2], torch.zeros(2, 2))
    # channels 2, 3: frame f takes frame f-1's values; the first frame is zero
    assert torch.equal(o[:, 1:, 2:4], v[:, :2, 2:4]) and torch.equal(o[:, 0, 2:4], torch.zeros(2, 2))
    # channels 4..7 unchanged, and nothing leaks from one clip into the other
    assert torch.equal(o[:, :, 4:], v[:, :, 4:])
    assert o[0, 2, 0] == 0 and o[1, 0, 2] == 0
    assert o[0, 1, 0].item() == 1 + 2 * c  # clip 0, frame 1, channel 0 ← frame 2
    assert o[1, 1, 3].item() == 1 + 3 * c + 3  # clip 1, frame 1, channel 3 ← frame 0
    # a pure function: the input is untouched and gradients flow to the moved values only
    assert torch.equal(x.view(2, t, c)[0, 0], torch.arange(1, 9, dtype=torch.float32))
    xg = x.clone().requires_grad_()
    temporal_shift(xg, t, 4).sum().backward()
    grad = xg.grad.view(2, t, c)
    assert grad[:, 0, 0:2].eq(0).all() and grad[:, 2, 2:4].eq(0).all() and grad[:, :, 4:].eq(1).all()
    assert torch.equal(TemporalShift(t, 4)(x), out)
    with pytest.raises(ValueError, match="multiple"):
        temporal_shift(torch.zeros(5, 8, 1, 1), 3, 4)


def _clips(n=2, t=4, size=16):
    return torch.randn(n, t, 3, size, size)


def test_tsm_and_tsn_shapes_and_features():
    x = _clips()
    for shift in (True, False):
        model = VideoResNet("resnet18", num_classes=5, num_segments=4, width=0.25, shift=shift).eval()
        assert model(x).shape == (2, 5)
        feats = model.forward_features(x)
        assert feats["layer1"].shape == (2, 4, 16, 16, 16)
        assert feats["layer2"].shape == (2, 4, 32, 8, 8)
        assert feats["layer3"].shape == (2, 4, 64, 4, 4)
        assert feats["layer4"].shape == (2, 4, 128, 2, 2)
        assert feats["frames"].shape == (2, 4, 128) and feats["pooled"].shape == (2, 128)
        assert torch.allclose(model.classify(feats["pooled"]), model(x))
        assert isinstance(model.head, torch.nn.Linear) and model.head.in_features == model.feature_dim == 128
        shifts = [m for m in model.modules() if isinstance(m, ShiftConv2d)]
        assert len(shifts) == (8 if shift else 0)  # every residual unit's conv1
    with pytest.raises(ValueError, match="segments"):
        VideoResNet("resnet18", 5, num_segments=4, width=0.25)(_clips(t=3))
    bottleneck = VideoResNet("resnet50", 3, num_segments=2, width=0.125).eval()
    assert bottleneck(_clips(t=2, size=8)).shape == (2, 3) and bottleneck.feature_dim == 256


def test_shift_mixes_frames_and_tsn_does_not():
    x = _clips()
    x2 = x.clone()
    x2[:, 3] = torch.randn_like(x2[:, 3])  # change only the last frame
    for shift in (True, False):
        torch.manual_seed(0)
        model = VideoResNet("resnet18", 5, num_segments=4, width=0.25, shift=shift).eval()
        with torch.no_grad():
            a, b = model.forward_features(x)["frames"], model.forward_features(x2)["frames"]
        unchanged = torch.allclose(a[:, :3], b[:, :3], atol=1e-6)
        assert unchanged is (not shift)


def test_tsn_equals_2d_resnet_per_frame_with_averaged_logits():
    model = VideoResNet("resnet18", 5, num_segments=4, width=0.25, shift=False).eval()
    image_model = build_resnet("resnet18", 5, width=0.25).eval()
    image_model.load_state_dict({k.replace("head.", "fc."): v for k, v in model.state_dict().items()})
    x = _clips()
    with torch.no_grad():
        expected = image_model(x.flatten(0, 1)).view(2, 4, 5).mean(dim=1)
        assert torch.allclose(model(x), expected, atol=1e-5, rtol=0)
        # TSM has the very same parameters: a TSN checkpoint loads into it
        tsm = VideoResNet("resnet18", 5, num_segments=4, width=0.25, shift=True).eval()
        tsm.load_state_dict(model.state_dict())
        assert not torch.allclose(tsm(x), expected, atol=1e-3)


def test_pretrained_loads_from_a_local_state_dict(tmp_path):
    source = build_resnet("resnet18", 1000, width=0.25)  # stands in for an ImageNet torchvision checkpoint
    torch.nn.init.normal_(source.layer3[1].conv2.weight)
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    model = VideoResNet("resnet18", 7, num_segments=4, width=0.25, pretrained=str(path))
    assert torch.equal(model.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    assert isinstance(model.layer3[1].conv1, ShiftConv2d)
    assert torch.equal(model.layer3[1].conv1.weight, source.layer3[1].conv1.weight)
    assert model.head.out_features == 7  # fc of the file ignored

    with pytest.raises(CheckpointError, match=r"shape mismatches .*conv1\.weight.*small_input=False"):
        VideoResNet("resnet18", 7, num_segments=4, width=0.25, small_input=False, pretrained=str(path))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        VideoResNet("resnet18", 7, num_segments=4, width=0.5, pretrained=str(path))
    other = tmp_path / "resnet34.pth"
    torch.save(build_resnet("resnet34", 10, width=0.25).state_dict(), other)
    with pytest.raises(CheckpointError, match="unexpected keys"):
        VideoResNet("resnet18", 7, num_segments=4, width=0.25, pretrained=other)
    with pytest.raises(CheckpointError, match="not found"):
        VideoResNet("resnet18", 7, num_segments=4, width=0.25, pretrained=tmp_path / "missing.pth")


def _train(preset: str, shift: bool, epochs: int) -> float:
    """Train resnet18 at width 1/8 on 6 classes × 150 clips of 8×32×32; accuracy (%) on 240 clips of another seed."""
    from distillkit.data.synthetic_video import make_synthetic_videos

    def clips(videos_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        videos, labels, _ = make_synthetic_videos(preset, 6, videos_per_class, 8, 32, seed)
        x = torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float().div(255).sub(0.5).div(0.25)
        return x, torch.from_numpy(labels)

    torch.manual_seed(0)
    (x_tr, y_tr), (x_te, y_te) = clips(150, seed=0), clips(40, seed=1)
    # at width 1/8, layer1 has 8 channels: shift 2 of them each way rather than 1
    model = VideoResNet("resnet18", 6, num_segments=8, width=0.125, shift=shift, shift_div=4)
    batches = [idx for _ in range(epochs) for idx in torch.randperm(len(y_tr)).split(16)]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, len(batches))
    model.train()
    for idx in batches:
        loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        return 100 * (model(x_te).argmax(1) == y_te).float().mean().item()


@pytest.mark.slow
def test_motion_needs_temporal_modelling_appearance_does_not():
    chance = 100 / 6
    results = {}
    for preset, epochs in (("motion", 8), ("appearance", 2)):
        for shift in (True, False):
            start = time.monotonic()
            results[preset, shift] = _train(preset, shift, epochs)
            name = "TSM" if shift else "TSN"
            print(f"{preset} {name}: {results[preset, shift]:.1f}% ({time.monotonic() - start:.0f} s)")
    assert results["motion", True] > 3 * chance
    assert results["motion", False] < 2 * chance  # a bag of frames cannot tell time-reversed pairs apart
    assert results["appearance", True] > 80 and results["appearance", False] > 80
