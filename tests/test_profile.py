"""Tests for distillkit.engine.profile and distillkit.compress.export (hand-computed MAC counts)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from distillkit.compress.export import export_onnx
from distillkit.engine.profile import count_macs, count_params, measure_latency, profile_model
from distillkit.errors import DistillkitError

# MACs count only multiply-accumulates of conv / linear weights: bias additions are NOT counted.


def test_macs_dense_conv():
    conv = nn.Conv2d(3, 8, 3, padding=1)  # bias present but not counted
    assert count_macs(conv, (1, 3, 16, 16)) == 16 * 16 * 8 * 3 * 3 * 3


def test_macs_grouped_conv():
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    assert count_macs(conv, (1, 8, 10, 10)) == 10 * 10 * 16 * (8 // 4) * 9


def test_macs_depthwise_strided_conv():
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
    assert count_macs(conv, (1, 8, 10, 10)) == 5 * 5 * 8 * 9


def test_macs_linear():
    assert count_macs(nn.Linear(20, 5), (1, 20)) == 100


def _combined() -> nn.Sequential:
    # 3x16x16 -> dense 8x16x16 -> grouped 16x16x16 -> depthwise 16x8x8 -> pool/flatten 16 -> linear 5
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, groups=4),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


COMBINED_MACS = (
    16 * 16 * 8 * 3 * 9  # dense conv
    + 16 * 16 * 16 * (8 // 4) * 9  # grouped conv
    + 8 * 8 * 16 * 9  # depthwise conv, stride 2
    + 16 * 5  # linear
)  # BatchNorm, ReLU and pooling are not counted


def test_macs_sequential_is_sum():
    assert count_macs(_combined(), (1, 3, 16, 16)) == COMBINED_MACS


def test_macs_linear_in_batch():
    model = _combined()
    assert count_macs(model, (4, 3, 16, 16)) == 4 * COMBINED_MACS


def test_count_macs_restores_training_mode():
    model = _combined().train()
    model[1].eval()
    count_macs(model, (1, 3, 16, 16))
    assert model.training and not model[1].training and model[3].training


def test_count_params():
    model = _combined()
    total = sum(p.numel() for p in model.parameters())
    assert count_params(model) == total
    assert total == (3 * 8 * 9 + 8) + (8 + 8) + (2 * 16 * 9 + 16) + (16 * 9 + 16) + (16 * 5 + 5)
    for p in model[0].parameters():
        p.requires_grad_(False)
    assert count_params(model, trainable_only=True) == total - (3 * 8 * 9 + 8)
    assert count_params(model) == total


def test_measure_latency_restores_state():
    model = _combined().train()
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    stats = measure_latency(model, (2, 3, 16, 16), repeats=3, warmup=1, threads=target)
    assert stats["median_ms"] > 0 and stats["p90_ms"] >= stats["median_ms"] * 0.999
    assert stats["mean_ms"] > 0 and stats["std_ms"] >= 0
    assert stats["batch"] == 2 and stats["device"] == "cpu" and stats["threads"] == target
    assert torch.get_num_threads() == before
    assert model.training and all(m.training for m in model.modules())


def test_profile_model():
    model = _combined()
    result = profile_model(model, (3, 16, 16), batches=[1, 2], repeats=2, device="cpu", threads=1)
    assert result["params"] == count_params(model)
    assert result["macs"] == COMBINED_MACS
    assert set(result["latency_ms"]) == {"1", "2"}
    assert all(v > 0 for v in result["latency_ms"].values())
    assert result["latency"]["2"]["batch"] == 2
    assert next(model.parameters()).device.type == "cpu"


def test_export_onnx_round_trip(tmp_path):
    model = _combined()
    with torch.no_grad():  # non-trivial BN statistics so folding/eval-mode mistakes would show
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.train()
    path = tmp_path / "sub" / "model.onnx"
    result = export_onnx(model, (1, 3, 16, 16), path)
    assert path.is_file() and result["path"] == str(path) and result["opset"] == 17
    assert result["max_abs_diff"] < 1e-4
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no external data file
    assert model.training  # caller's model untouched

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 3, 16, 16)
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert got.shape == (5, 5)
    np.testing.assert_allclose(got, expected, atol=1e-4)


class _DictOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return {"logits": self.fc(x), "name": "not a tensor"}


class _FFT(nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).abs()  # aten::fft_fft2 has no ONNX export


@pytest.mark.parametrize(("model", "shape"), [(_DictOutput(), (1, 4)), (_FFT(), (1, 1, 4, 4))])
def test_export_onnx_unexportable_raises(tmp_path, model, shape):
    with pytest.raises(DistillkitError) as info:
        export_onnx(model, shape, tmp_path / "bad.onnx")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad.onnx").exists()


def test_measure_latency_gives_the_input_in_channels_last_when_asked() -> None:
    seen: list[bool] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return self.conv(x)

    measure_latency(Probe(), (2, 3, 5, 5), repeats=1, warmup=0)
    measure_latency(Probe(), (2, 3, 5, 5), repeats=1, warmup=0, channels_last=True)
    assert seen == [False, True]
