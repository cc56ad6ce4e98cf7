"""What the hardware can do, for defaults that follow it (precision, optimizer kernels)."""

from __future__ import annotations

import functools

import torch


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True where oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_precision(accelerator: str = "auto") -> str:
    """geoft's default training precision: bf16 autocast where the hardware runs it natively.

    ``bf16-mixed`` keeps fp32 weights and computes losses in fp32; a test checks that it reaches the
    same validation metric as fp32 on the demo data. Elsewhere: ``16-mixed`` on older GPUs, ``32-true`` on
    CPUs without native bf16.
    """
    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu:
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16-mixed"
        return "16-mixed"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"
