"""Check an exported file against PyTorch: the same outputs on each input, within a tolerance."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from geoft.errors import ConfigError, ExportError
from geoft.export import FORMATS, ExportFormat, _prepare, onnx_metadata, unwrap_model


def verify_onnx(
    model: nn.Module,
    path: str | Path,
    inputs: Sequence[torch.Tensor] | torch.Tensor,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> float:
    """Run ``path`` in onnxruntime on each input and compare with PyTorch; return the largest abs difference.

    Raises:
        ExportError: if shapes differ or values differ by more than ``atol + rtol * |expected|``.
    """
    import numpy as np
    import onnxruntime as ort

    wrapped = _prepare(model, pad_to_patch=True)
    meta = onnx_metadata(path)
    multiple = int(meta.get("geoft_size_multiple", "1"))
    dynamic_hw = json.loads(meta.get("geoft_dynamic_hw", "false"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    for x in [inputs] if isinstance(inputs, torch.Tensor) else list(inputs):
        if dynamic_hw and (x.shape[-2] % multiple or x.shape[-1] % multiple):
            raise ExportError(
                f"{path} takes heights and widths that are multiples of {multiple}; got {tuple(x.shape)}",
                hint=f"pad inputs to a multiple of {multiple}, or use tiled inference with such a crop",
            )
        with torch.no_grad():
            expected = wrapped(x).float().cpu().numpy()
        try:
            got = session.run(None, {name: x.cpu().numpy()})[0]
        except Exception as err:
            raise ExportError(
                f"onnxruntime could not run {path} on an input of shape {tuple(x.shape)}: {err}",
                hint="the graph may have fixed sizes; see geoft.export.onnx_metadata(path)",
            ) from err
        if got.shape != expected.shape:
            raise ExportError(
                f"ONNX output shape {got.shape} != PyTorch {expected.shape} for input {tuple(x.shape)}"
            )
        diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            raise ExportError(
                f"ONNX output differs from PyTorch by up to {diff:.3g} for input {tuple(x.shape)} "
                f"(rtol={rtol}, atol={atol})"
            )
        worst = max(worst, diff)
    return worst


def _verify_torch(
    model: nn.Module,
    run: Callable[[torch.Tensor], torch.Tensor],
    what: str,
    inputs: Sequence[torch.Tensor] | torch.Tensor,
    atol: float,
) -> float:
    """Compare ``run`` (a loaded TorchScript module or torch.export program) with PyTorch on each input."""
    wrapped = _prepare(model, pad_to_patch=True)
    worst = 0.0
    for x in [inputs] if isinstance(inputs, torch.Tensor) else list(inputs):
        with torch.no_grad():
            expected, got = wrapped(x), run(x)
        if got.shape != expected.shape:
            raise ExportError(f"{what} output shape {tuple(got.shape)} != PyTorch {tuple(expected.shape)}")
        diff = float((got - expected).abs().max()) if got.numel() else 0.0
        if diff > atol + 1e-3 * float(expected.abs().max()):
            raise ExportError(f"{what} output differs from PyTorch by up to {diff:.3g}")
        worst = max(worst, diff)
    return worst


def verify_torchscript(
    model: nn.Module, path: str | Path, inputs: Sequence[torch.Tensor] | torch.Tensor, *, atol: float = 1e-4
) -> float:
    """Compare a TorchScript file with PyTorch on each input; return the largest abs difference."""
    return _verify_torch(model, torch.jit.load(str(path)), "TorchScript", inputs, atol)


def verify_pt2(
    model: nn.Module, path: str | Path, inputs: Sequence[torch.Tensor] | torch.Tensor, *, atol: float = 1e-4
) -> float:
    """Compare a saved ``torch.export`` program with PyTorch on each input; return the largest abs difference."""
    return _verify_torch(model, torch.export.load(str(path)).module(), "torch.export program", inputs, atol)


def verify_export(
    model: nn.Module, path: str | Path, format: ExportFormat, inputs: Sequence[torch.Tensor] | torch.Tensor
) -> float:
    """Verify a file of any format against PyTorch; returns the largest abs difference."""
    verifiers = {"onnx": verify_onnx, "torchscript": verify_torchscript, "pt2": verify_pt2}
    if format not in verifiers:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    return verifiers[format](unwrap_model(model).eval(), path, inputs)
