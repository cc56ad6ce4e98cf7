"""Tell eager execution from graph capture (export, tracing, compile), where sizes may be symbolic."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def is_exporting() -> bool:
    """True inside ``torch.export`` / ONNX export / ``torch.jit.trace`` / ``torch.compile``.

    Code that caches by input size or compares sizes as Python ints must skip that path here, or the
    captured graph is fixed to the example's size.
    """
    return (
        torch.compiler.is_exporting()
        or torch.onnx.is_in_onnx_export()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    )


def _bin_matrix(size: int | torch.SymInt, bins: int, like: Tensor) -> Tensor:
    """``[bins, size]`` averaging weights of adaptive average pooling along one axis."""
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    pos = torch.arange(size, device=like.device)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` that stays size-independent in exported graphs.

    ONNX has no adaptive pooling (only global), and exporters bake the example's kernel into the
    graph; while exporting, the pooling is done as two averaging matrix products built from the
    symbolic size instead (same result). Eager mode runs the native kernel.
    """

    def forward(self, input: Tensor) -> Tensor:
        if not is_exporting():
            return super().forward(input)
        out = self.output_size
        out_h, out_w = (out, out) if isinstance(out, int) else out
        out_h = input.shape[-2] if out_h is None else out_h
        out_w = input.shape[-1] if out_w is None else out_w
        rows = _bin_matrix(input.shape[-2], out_h, input)
        cols = _bin_matrix(input.shape[-1], out_w, input)
        return torch.einsum("ph,...hw,qw->...pq", rows, input, cols)
