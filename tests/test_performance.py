"""`perf:` options of the one training loop: autocast precision, channels-last, torch.compile."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny, tiny_loader
from torch import nn
from torch._dynamo.utils import counters

from distillkit.config import (
    CompressConfig,
    OptimConfig,
    PerformanceConfig,
    TrainConfig,
    VideoTrainConfig,
    dump_config,
    load_config,
)
from distillkit.engine.loop import LossParts, fit
from distillkit.engine.precision import job_dtype
from distillkit.errors import ConfigError
from distillkit.incremental.config import IncrementalConfig
from distillkit.jobs.compress import CompressionRun
from distillkit.jobs.train import run_train

CPU = torch.device("cpu")
OPTIM = OptimConfig(lr=0.05)
STEPS = 6


def tiny_convnet() -> nn.Module:
    """Its strided 1×1 convolution with 4 input channels is what oneDNN's channels-last backward gets wrong
    (uxlfoundation/oneDNN#6035): the channels-last test below would corrupt the heap if fit ran it on oneDNN."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 1, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


class Recording:
    """Cross-entropy of a whole model; records the dtype of its logits and the layout of its inputs."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.dtypes, self.channels_last = model, [], []

    def parameters(self):
        return self.model.parameters()

    def set_mode(self) -> None:
        self.model.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, LossParts]:
        self.channels_last.append(
            x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        )
        logits = self.model(x)
        self.dtypes.append(logits.dtype)
        ce = nn.functional.cross_entropy(logits, y)
        return ce, {"ce": ce.detach()}


def train(perf: PerformanceConfig | None, steps: int = STEPS) -> tuple[nn.Module, Recording, list[float]]:
    model = tiny_convnet()
    objective = Recording(model)
    result = fit(objective, tiny_loader(), steps, OPTIM, CPU, log_every=1, perf=perf)
    return model, objective, [h["ce"] for h in result.history]


def test_defaults_are_plain_fp32_bit_for_bit() -> None:
    plain, _, plain_losses = train(None)
    default, objective, default_losses = train(PerformanceConfig())
    assert default_losses == plain_losses
    for a, b in zip(plain.state_dict().values(), default.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert set(objective.dtypes) == {torch.float32} and not any(objective.channels_last)


def test_bf16_autocast_trains_close_to_fp32() -> None:
    _, _, fp32 = train(None)
    model, objective, bf16 = train(PerformanceConfig(precision="bf16"))
    assert set(objective.dtypes) == {torch.bfloat16}  # the forward pass ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())  # ... the weights stayed fp32
    assert all(math.isfinite(v) for v in bf16)
    # bf16 keeps 8 bits of mantissa (relative rounding ~0.4%); cross-entropy itself runs in fp32 under autocast.
    # On losses of ~1.4 over 6 SGD steps the per-step gap to fp32 measured 1.1e-4; the bound is 0.01.
    assert max(abs(a - b) for a, b in zip(fp32, bf16, strict=True)) < 0.01


def test_fp64_job_computes_in_float64_and_restores_the_default() -> None:
    perf = PerformanceConfig(precision="fp64")
    with job_dtype(perf) as dtype:
        assert dtype == torch.float64 and torch.get_default_dtype() == torch.float64
        model, objective, losses = train(perf)  # built inside: float64 weights; float32 batches are cast
    assert torch.get_default_dtype() == torch.float32
    assert set(objective.dtypes) == {torch.float64}
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(math.isfinite(v) for v in losses)
    with job_dtype(PerformanceConfig()):
        assert torch.get_default_dtype() == torch.float32


def test_channels_last_same_outputs_and_weights_stay_channels_last() -> None:
    contiguous, _, losses = train(None)
    nhwc, objective, nhwc_losses = train(PerformanceConfig(channels_last=True))
    assert all(objective.channels_last)  # every 4-D batch reached the loss channels-last
    assert torch.backends.mkldnn.enabled  # switched off for the training steps only
    for name, p in nhwc.named_parameters():
        if p.dim() == 4:
            assert p.is_contiguous(memory_format=torch.channels_last), name
            assert p.shape[2:] == (1, 1) or not p.is_contiguous(), name  # 1×1 kernels: both layouts are one
    for p in contiguous.parameters():
        assert p.is_contiguous()
    # Same values, another summation order: equal to float rounding.
    assert nhwc_losses == pytest.approx(losses, abs=1e-5)
    for a, b in zip(contiguous.state_dict().values(), nhwc.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    x = next(iter(tiny_loader()))[0]
    contiguous.eval(), nhwc.eval()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), contiguous(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            nhwc(x.contiguous(memory_format=torch.channels_last)), contiguous(x), atol=1e-5, rtol=1e-5
        )


def test_fp16_on_cpu_is_a_config_error_naming_the_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"perf\.precision: fp16 needs a CUDA device .* on cpu"):
        train(PerformanceConfig(precision="fp16"))
    # The jobs refuse it before any work (no data built, nothing written).
    cfg = load_config(None, TrainConfig, ["device=cpu", "perf.precision=fp16"])
    with pytest.raises(ConfigError, match=r"perf\.precision"):
        run_train(cfg, tmp_path / "train")
    assert not (tmp_path / "train" / "model.pt").exists()
    cfg = load_config(None, CompressConfig, ["device=cpu", "perf.precision=fp16"])
    with pytest.raises(ConfigError, match=r"perf\.precision"):
        CompressionRun(cfg, tmp_path / "compress")
    assert not (tmp_path / "compress").exists()
    with pytest.raises(ConfigError, match=r"'perf\.precision'"):
        load_config(None, TrainConfig, ["perf.precision=fp8"])


def test_perf_key_of_every_job_and_reports() -> None:
    for schema in (TrainConfig, VideoTrainConfig, CompressConfig, IncrementalConfig):
        cfg = load_config(
            None, schema, ["perf.precision=bf16", "perf.channels_last=true", "perf.compile=true"]
        )
        assert cfg.perf == PerformanceConfig(precision="bf16", channels_last=True, compile=True)
        assert dump_config(cfg)["perf"] == {"precision": "bf16", "channels_last": True, "compile": True}
        # Left at its defaults, `perf` is not recorded: reports and resume checks of older runs still match.
        assert "perf" not in dump_config(schema())
    with pytest.raises(ConfigError, match=r"unknown key 'perf\.complie'.*did you mean 'compile'"):
        load_config(None, TrainConfig, ["perf.complie=true"])


def test_incremental_run_trains_with_its_perf_and_refuses_fp16_on_cpu(tmp_path) -> None:
    """The stream runner hands `perf` to its training loop, and checks it before any work."""
    import distillkit.incremental.training as training
    import distillkit.jobs.incremental as runner

    seen = []
    real_fit = training.fit

    def spy(*args, **kwargs):
        seen.append(kwargs.get("perf"))
        return real_fit(*args, **kwargs)

    cfg = tiny()
    cfg.perf = PerformanceConfig(precision="bf16")
    cfg.scenario.num_steps = 1
    with pytest.MonkeyPatch.context() as m:
        m.setattr(training, "fit", spy)
        runner.run_incremental(cfg, tmp_path / "run")
    assert seen and all(p == PerformanceConfig(precision="bf16") for p in seen)
    cfg.perf = PerformanceConfig(precision="fp16")
    with pytest.raises(ConfigError, match=r"perf\.precision: fp16"):
        runner.StreamRun(cfg, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_compile_runs_the_loss_through_torch_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring, with dynamo's `eager` backend (traces, no code generation: fast); the real compiler is in
    the slow test below."""
    calls = []
    real = torch.compile

    def eager_compile(fn, **kwargs):
        calls.append(fn)
        return real(fn, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    _, _, fp32 = train(None)
    counters.clear()
    _, objective, compiled = train(PerformanceConfig(compile=True))
    assert len(calls) == 1 and calls[0] == objective.loss
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the forward pass and loss
    assert compiled == pytest.approx(fp32, abs=1e-5)


def test_compile_unavailable_warns_and_trains_uncompiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("torch.compile called"))
    _, _, fp32 = train(None)
    with pytest.warns(RuntimeWarning, match=r"perf\.compile is on but torch\.compile is not supported"):
        _, _, losses = train(PerformanceConfig(compile=True))
    assert losses == pytest.approx(fp32, abs=1e-5)  # CPU steps of compile runs skip oneDNN: other rounding


def test_compile_failure_warns_and_trains_uncompiled(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args):
        raise torch._dynamo.exc.BackendCompilerFailed(broken, RuntimeError("no C++ compiler"), None)

    monkeypatch.setattr(torch, "compile", lambda fn, **k: broken)
    _, _, fp32 = train(None)
    with pytest.warns(
        RuntimeWarning, match=r"torch\.compile failed .*no C\+\+ compiler.*training uncompiled"
    ):
        _, _, losses = train(PerformanceConfig(compile=True))
    assert losses == pytest.approx(fp32, abs=1e-5)  # CPU steps of compile runs skip oneDNN: other rounding


@pytest.mark.slow
def test_compile_with_inductor_matches_eager() -> None:
    """The real `torch.compile` (inductor: C++ code generation on CPU, 10-40 s on 2 busy cores). Its code makes
    the input of the strided 1×1 convolution channels-last: this crashed in oneDNN before fit switched oneDNN off
    for compiled CPU steps."""
    torch._dynamo.reset()
    counters.clear()
    _, _, fp32 = train(None)
    model, _, compiled = train(PerformanceConfig(compile=True))
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the forward pass and loss
    assert compiled == pytest.approx(fp32, abs=1e-4)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.backends.mkldnn.enabled


@pytest.mark.slow
def test_all_options_together() -> None:
    model, objective, losses = train(PerformanceConfig(precision="bf16", channels_last=True, compile=True))
    assert all(math.isfinite(v) for v in losses)
    assert all(objective.channels_last)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
