"""``geoft export``: rebuild a task from its config (or its checkpoint), load the weights, export and verify.

Restoring the task is :mod:`geoft.runs.restore`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from geoft.errors import ConfigError
from geoft.runs.restore import load_checkpoint, task_from_checkpoint


def _first(model: nn.Module, attr: str) -> Any:
    for module in model.modules():
        value = getattr(module, attr, None)
        if value is not None and not callable(value):
            return value
    return None


def example_shape(task: nn.Module, input_shape: str | None) -> tuple[int, ...]:
    """``--input_shape`` parsed, or (1, channels, [frames,] size, size) read off the model."""
    if input_shape:
        try:
            shape = tuple(int(v) for v in input_shape.replace("x", ",").split(","))
        except ValueError as err:
            raise ConfigError(f"--input_shape {input_shape!r} must be integers like 1,6,224,224") from err
        if len(shape) not in (4, 5) or min(shape) < 1:
            raise ConfigError(
                f"--input_shape {input_shape!r} must be B,C,H,W or B,C,T,H,W with positive sizes"
            )
        return shape
    channels = _first(task, "in_chans")
    if not isinstance(channels, int):
        conv = next((m for m in task.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)
        if conv is None:
            raise ConfigError("cannot tell the model's input channels", hint="pass --input_shape B,C,H,W")
        channels = conv.in_channels
    hparams = getattr(task, "hparams", {}) or {}
    tiled = hparams.get("tiled_inference_parameters") if hasattr(hparams, "get") else None
    size: Any = (tiled or {}).get("crop") or _first(task, "img_size") or 224
    height, width = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    frames = _first(task, "num_frames")
    if isinstance(frames, int) and frames > 1:
        return (1, channels, frames, int(height), int(width))
    return (1, channels, int(height), int(width))


def run_export(
    *,
    config: Mapping[str, Any] | None,
    ckpt_path: str,
    output: str,
    format: str,
    input_shape: str | None,
    static_hw: bool,
    verify: bool,
    notice: Callable[[str], None],
) -> int:
    """The ``geoft export`` command; prints what was written and how well it matches PyTorch."""
    from geoft.export import export_info, export_model, unwrap_model
    from geoft.export_verify import verify_export

    ckpt = load_checkpoint(ckpt_path)
    task = task_from_checkpoint(ckpt, config, ckpt_path, notice)
    model = unwrap_model(task).eval()
    shape = example_shape(task, input_shape)
    example = torch.randn(shape)
    from geoft.models.object_detection_model import ObjectDetectionModel

    if isinstance(model, ObjectDetectionModel):
        return _run_detection_export(model, output, format, example, verify, notice)
    notice(f"exporting {type(model).__name__} with example input {list(shape)} as {format}")
    path = export_model(model, output, example, format=format, dynamic_hw=False if static_hw else None)  # type: ignore[arg-type]
    info = export_info(path, format)  # type: ignore[arg-type]
    hw = "yes" if info["dynamic_hw"] else "no, " + "x".join(map(str, shape[-2:])) + " only"
    batch = "yes" if info["dynamic_batch"] else "no"
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB); dynamic batch: {batch}; dynamic height/width: {hw}"
    )
    if verify:
        inputs = [example]
        if info["dynamic_batch"]:
            inputs.append(torch.randn((2, *shape[1:])))
        if info["dynamic_hw"]:
            step = max(int(info["size_multiple"]), 8)
            inputs.append(torch.randn((1, *shape[1:-2], shape[-2] + step, shape[-1] + 2 * step)))
        worst = verify_export(model, path, format, inputs)  # type: ignore[arg-type]
        print(f"verified against PyTorch on {len(inputs)} inputs: max abs difference {worst:.2e}")
    return 0


def _run_detection_export(
    model: nn.Module,
    output: str,
    format: str,
    example: torch.Tensor,
    verify: bool,
    notice: Callable[[str], None],
) -> int:
    from geoft.detection_export import export_detection, verify_detection_onnx

    notice(
        f"exporting {type(model).__name__} ({model.framework}) with example input {list(example.shape)} as {format}"
    )
    path = export_detection(model, output, example, format)  # type: ignore[arg-type]
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB); one image per call; dynamic height/width: yes"
    )
    if verify:
        taller = torch.randn((*example.shape[:-2], example.shape[-2] + 32, example.shape[-1]))
        worst = verify_detection_onnx(model, path, [example, taller])  # type: ignore[arg-type]
        print(f"verified against PyTorch on 2 inputs: max abs difference {worst:.2e}")
    return 0
