"""ONNX export with an onnxruntime round-trip check."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distillkit.errors import DistillkitError

__all__ = ["export_onnx"]


@contextlib.contextmanager
def _silence_fds():
    """Point OS-level stdout/stderr at /dev/null (the TorchScript exporter logs from C++ on failure)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@contextlib.contextmanager
def _quiet():
    """Silence exporter warnings, prints (Python and C++) and ``torch.onnx`` log records."""
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            stack.enter_context(contextlib.redirect_stdout(sink))
            stack.enter_context(contextlib.redirect_stderr(sink))
            try:
                stack.enter_context(_silence_fds())
            except OSError:  # no usable file descriptors 1/2 (embedded interpreters): Python-level only
                pass
            yield
    finally:
        onnx_logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


def export_onnx(
    model: nn.Module,
    input_shape: tuple[int, ...],
    path: Path,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> dict:
    """Export a CPU, eval-mode copy of ``model`` to a single self-contained ONNX file at ``path``.

    ``input_shape`` includes the batch dimension, which is exported as dynamic (input ``"input"``,
    output ``"logits"``). With ``check``, the file is run with onnxruntime (CPUExecutionProvider) on a
    random batch-2 input and compared with PyTorch. Returns ``{"path", "max_abs_diff", "opset"}``
    (``max_abs_diff`` is NaN without ``check``). Raises :class:`DistillkitError` if the forward does not
    return a single tensor, the export or the onnxruntime run fails, or the difference exceeds ``atol``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval()
    dummy = torch.randn(tuple(input_shape))

    with torch.no_grad():
        try:
            out = net(dummy)
        except Exception as exc:
            raise DistillkitError(
                f"ONNX export failed: forward on shape {tuple(input_shape)}: {_one_line(exc)}"
            ) from None
    if not isinstance(out, torch.Tensor):
        raise DistillkitError(
            f"ONNX export needs a forward that returns one tensor, got {type(out).__name__}"
        )

    # TorchScript exporter (dynamo=False): tried against the dynamo exporter with torch 2.14; for plain CNNs
    # it is ~70x faster (0.06 s vs 4 s), keeps the requested opset (dynamo bumps 17 -> 18 and fails to
    # convert back), needs no onnxscript and writes one small self-contained file.
    try:
        with _quiet():
            torch.onnx.export(
                net,
                (dummy,),
                str(path),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise DistillkitError(f"ONNX export of {type(model).__name__} failed: {_one_line(exc)}") from None

    result = {"path": str(path), "max_abs_diff": float("nan"), "opset": opset}
    if not check:
        return result

    import onnx
    import onnxruntime as ort

    x = torch.randn((2, *tuple(input_shape)[1:]))
    try:
        onnx.checker.check_model(str(path))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input": x.numpy()})[0]
    except Exception as exc:
        raise DistillkitError(
            f"exported ONNX model {path} does not run in onnxruntime: {_one_line(exc)}"
        ) from None
    with torch.no_grad():
        expected = net(x).numpy()
    if got.shape != expected.shape:
        raise DistillkitError(
            f"ONNX output shape {tuple(got.shape)} != PyTorch {tuple(expected.shape)} at batch 2 "
            "(is the batch dimension hard-coded in forward?)"
        )
    diff = float(np.abs(got - expected).max()) if expected.size else 0.0
    if not diff <= atol:
        raise DistillkitError(f"ONNX output differs from PyTorch by {diff:.3g} (> atol {atol:g}) for {path}")
    result["max_abs_diff"] = diff
    return result
