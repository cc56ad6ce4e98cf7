"""Export a whole geoft model (encoder, decoder and head) to ONNX, TorchScript or a torch.export program.

The exported graph takes one image tensor (``[B, C, H, W]`` or ``[B, C, T, H, W]``) and returns the
model's main output as a tensor. Batch, height and width are dynamic where the architecture allows.
ViT backbones need ``H, W`` to be multiples of their patch size ``m``: a dynamic graph then takes
multiples of ``m`` (recorded as ``size_multiple`` in the file's metadata); a fixed-size graph
exported from an example that is not a multiple pads inside the graph and crops the output back.

:func:`geoft.export_verify.verify_onnx` runs the file in onnxruntime and compares it with PyTorch.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from geoft.errors import ConfigError, ExportError, first_line
from geoft.models.padding import find_patch_size, pad_bottom_right
from geoft.models.peft import merged_adapters

ExportFormat = Literal["onnx", "torchscript", "pt2"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "pt2")
PT2_METADATA = "geoft_metadata.json"
_T = TypeVar("_T")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside a Lightning task (its ``.model``), or ``model`` itself, with any peft adapters
    merged into its weights (a copy then), so that the export needs no peft."""
    try:
        import lightning.pytorch as pl
    except ImportError:  # pragma: no cover - lightning is a dependency
        return model
    if isinstance(model, pl.LightningModule) and isinstance(getattr(model, "model", None), nn.Module):
        model = model.model
    return merged_adapters(model)


def _own_padding_multiple(model: nn.Module) -> int:
    """The multiple a geoft encoder-decoder model pads its inputs to itself (1 if it does not pad)."""
    from geoft.models._assembly import EncoderDecoderModel

    if isinstance(model, EncoderDecoderModel) and model.patch_size is not None and model.padding != "none":
        return math.lcm(*model.patch_size)
    return 1


def spatial_multiple(model: nn.Module) -> int:
    """The input size multiple the model needs: the patch size of its ViT parts, or the multiple a geoft
    encoder-decoder model pads to (a CNN's deepest stride), else 1."""
    multiple = _own_padding_multiple(model)
    for module in model.modules():
        patch = find_patch_size(module) if getattr(module, "output_format", None) == "tokens" else None
        if patch is None:
            continue
        sizes = [patch] if isinstance(patch, int) else list(patch)[-2:]
        for size in sizes:
            multiple = math.lcm(multiple, int(size))
    return multiple


class ExportableModel(nn.Module):
    """Tensor in, tensor out: pads ``H, W`` to ``multiple`` (reflect), runs the model, crops back.

    Args:
        model: a geoft :class:`~geoft.models.Model` (returning ``ModelOutput``) or any module returning a tensor.
        multiple: pad inputs to this multiple (1: no padding).
        size_multiple: dynamic heights and widths are multiples of this (default: ``multiple``); larger
            than ``multiple`` for models that pad themselves.
    """

    def __init__(self, model: nn.Module, multiple: int = 1, size_multiple: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.multiple = int(multiple)
        self.size_multiple = int(size_multiple or multiple)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2], image.shape[-1]
        x = image
        if self.multiple > 1:  # padded on every traced size (no shortcut for sizes that need none)
            pad_h = (self.multiple - height % self.multiple) % self.multiple
            pad_w = (self.multiple - width % self.multiple) % self.multiple
            x = pad_bottom_right(x, pad_h, pad_w, "reflect")
        out = self.model(x)
        out = out.output if hasattr(out, "output") else out
        if out.ndim >= 3:  # pixel-wise outputs: crop the padding off
            out = out[..., :height, :width]
        return out


def _prepare(model: nn.Module, pad_to_patch: bool) -> ExportableModel:
    net = unwrap_model(model)
    needed = spatial_multiple(net)
    # geoft encoder-decoder models pad (with their own padding mode) and crop themselves
    pad = 1 if not pad_to_patch or _own_padding_multiple(net) > 1 else needed
    return ExportableModel(net, pad, size_multiple=needed).eval()


def _check_input(example_input: torch.Tensor) -> None:
    if not isinstance(example_input, torch.Tensor) or example_input.ndim not in (4, 5):
        shape = getattr(example_input, "shape", None)
        raise ConfigError(f"example input must be a [B, C, H, W] or [B, C, T, H, W] tensor, got {shape}")


def _dynamic_shapes(example_input: torch.Tensor, batch: bool, hw: bool, multiple: int) -> dict[str, Any]:
    """Dynamic dims for torch.export. With a size multiple ``m > 1``, height and width are ``m * k``:
    torch.export cannot prove in-graph padding arithmetic safe for every size, but with multiples of
    ``m`` the padding is statically zero."""
    dims: dict[int, Any] = {}
    if batch:
        dims[0] = torch.export.Dim("batch", min=1, max=4096)
    if hw:
        h_axis, w_axis = example_input.ndim - 2, example_input.ndim - 1
        if multiple > 1:
            for axis, name in ((h_axis, "height"), (w_axis, "width")):
                if example_input.shape[axis] % multiple:
                    raise ConfigError(
                        f"example input {name} {example_input.shape[axis]} is not a multiple of {multiple}",
                        hint=f"use an example input whose height and width are multiples of {multiple}",
                    )
            # at least two patches per side: torch.export specialises sizes of one
            dims[h_axis] = multiple * torch.export.Dim("height_patches", min=2, max=16384 // multiple)
            dims[w_axis] = multiple * torch.export.Dim("width_patches", min=2, max=16384 // multiple)
        else:
            dims[h_axis] = torch.export.Dim("height", min=2, max=16384)
            dims[w_axis] = torch.export.Dim("width", min=2, max=16384)
    return {"image": dims}


def _export_program(
    wrapped: ExportableModel, example_input: torch.Tensor, dynamic_batch: bool, dynamic_hw: bool
) -> torch.export.ExportedProgram:
    """``torch.export`` the wrapper with the requested dynamic axes (raises ExportError / ConfigError)."""
    if dynamic_batch and example_input.shape[0] == 1:
        # torch.export specialises dimensions of size 1; trace with two samples to keep the batch free.
        example_input = torch.cat([example_input, example_input])
    shapes = _dynamic_shapes(example_input, dynamic_batch, dynamic_hw, wrapped.size_multiple)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            return torch.export.export(wrapped, (example_input,), dynamic_shapes=shapes)
    except Exception as err:  # torch.export raises many types; report them uniformly
        raise ExportError(
            f"torch.export failed: {type(err).__name__}: {first_line(err)}",
            hint="try dynamic_hw=False or another example input size",
        ) from err


def _with_hw_fallback(
    wrapped: ExportableModel,
    example_input: torch.Tensor,
    dynamic_hw: bool | None,
    build: Callable[[bool], _T],
) -> tuple[_T, bool]:
    """Run ``build(dynamic_hw)``; with ``dynamic_hw=None`` try dynamic height/width first and fall back
    to the example's fixed size, with a warning saying why. Returns the result and whether H/W are dynamic."""
    if dynamic_hw is not None:
        return build(dynamic_hw), dynamic_hw
    try:
        return build(True), True
    except (ExportError, ConfigError) as err:
        warnings.warn(
            f"{type(wrapped.model).__name__} cannot be exported with dynamic height/width "
            f"({first_line(err)}); exporting for the fixed size {tuple(example_input.shape[-2:])}. "
            "Run other sizes through tiled inference with that crop.",
            stacklevel=3,
        )
        return build(False), False


def _metadata(
    example_input: torch.Tensor, dynamic_batch: bool, dynamic_hw: bool, multiple: int
) -> dict[str, str]:
    return {
        "geoft_input_shape": json.dumps(list(example_input.shape)),
        "geoft_dynamic_batch": json.dumps(dynamic_batch),
        "geoft_dynamic_hw": json.dumps(dynamic_hw),
        "geoft_size_multiple": str(multiple),
    }


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example_input: torch.Tensor,
    *,
    dynamic_batch: bool = True,
    dynamic_hw: bool | None = None,
    pad_to_patch: bool = True,
    opset: int | None = None,
) -> Path:
    """Export ``model`` (a task or a model) to ONNX: ``torch.export``, then ``torch.onnx.export``.

    Args:
        example_input: a representative input; its channel (and time) sizes are fixed in the graph.
        dynamic_batch: keep the batch size dynamic.
        dynamic_hw: ``True``: height/width must be dynamic; ``False``: fixed to the example's;
            ``None``: dynamic if the architecture allows, else fixed with a warning that says so.
        pad_to_patch: pad inputs inside the graph to the ViT patch-size multiple.
        opset: ONNX opset (default: the exporter's).

    Returns:
        The path written. Its metadata (:func:`onnx_metadata`) records the example shape, which axes
        are dynamic and the size multiple.
    """
    import onnx

    _check_input(example_input)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _prepare(model, pad_to_patch)

    def build(hw: bool) -> None:
        program = _export_program(wrapped, example_input, dynamic_batch, hw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=FutureWarning)
                torch.onnx.export(
                    program,
                    (example_input,),
                    str(path),
                    dynamo=True,
                    input_names=["image"],
                    output_names=["output"],
                    opset_version=opset,
                    external_data=False,
                    verbose=False,
                )
        except Exception as err:  # the exporter raises many types; report them uniformly
            raise ExportError(
                f"ONNX conversion failed: {type(err).__name__}: {first_line(err)}",
                hint="try --format pt2 (torch.export), which supports more operators",
            ) from err

    _, hw = _with_hw_fallback(wrapped, example_input, dynamic_hw, build)
    proto = onnx.load(str(path))
    for key, value in _metadata(example_input, dynamic_batch, hw, wrapped.size_multiple).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (geoft writes input shape and dynamic axes there)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def export_torchscript(
    model: nn.Module, path: str | Path, example_input: torch.Tensor, *, pad_to_patch: bool = True
) -> Path:
    """Trace ``model`` to TorchScript (``torch.jit.load``-able). Shapes other than the example's may not
    trace correctly for every architecture; verify with :func:`geoft.export_verify.verify_torchscript`."""
    _check_input(example_input)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _prepare(model, pad_to_patch)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # jit is deprecated upstream and warns on every trace
            traced = torch.jit.trace(wrapped, example_input, check_trace=False)
            traced.save(str(path))
    except Exception as err:
        raise ExportError(
            f"TorchScript tracing failed: {type(err).__name__}: {err}", hint="try --format pt2"
        ) from err
    return path


def export_pt2(
    model: nn.Module,
    path: str | Path,
    example_input: torch.Tensor,
    *,
    dynamic_batch: bool = True,
    dynamic_hw: bool | None = True,
) -> Path:
    """Save a ``torch.export`` program (``torch.export.load(path).module()(x)``)."""
    _check_input(example_input)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _prepare(model, pad_to_patch=True)
    program, hw = _with_hw_fallback(
        wrapped,
        example_input,
        dynamic_hw,
        lambda hw: _export_program(wrapped, example_input, dynamic_batch, hw),
    )
    meta = _metadata(example_input, dynamic_batch, hw, wrapped.size_multiple)
    torch.export.save(program, str(path), extra_files={PT2_METADATA: json.dumps(meta)})
    return path


def export_info(path: str | Path, format: ExportFormat) -> dict[str, Any]:
    """What an exported file accepts: ``input_shape``, ``dynamic_batch``, ``dynamic_hw``, ``size_multiple``."""
    if format == "onnx":
        raw = onnx_metadata(path)
    elif format == "pt2":
        extra = {PT2_METADATA: ""}
        torch.export.load(str(path), extra_files=extra)
        raw = json.loads(extra[PT2_METADATA] or "{}")
    else:
        raw = {}
    if not raw:  # traced TorchScript is specialised to the example it saw
        return {"input_shape": None, "dynamic_batch": False, "dynamic_hw": False, "size_multiple": 1}
    return {
        "input_shape": json.loads(raw["geoft_input_shape"]),
        "dynamic_batch": json.loads(raw["geoft_dynamic_batch"]),
        "dynamic_hw": json.loads(raw["geoft_dynamic_hw"]),
        "size_multiple": int(raw["geoft_size_multiple"]),
    }


def export_model(
    model: nn.Module,
    path: str | Path,
    example_input: torch.Tensor,
    *,
    format: ExportFormat = "onnx",
    dynamic_hw: bool | None = None,
) -> Path:
    """Export a task or model in ``format`` (``onnx``, ``torchscript`` or ``pt2``)."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    model = unwrap_model(model).eval()
    from geoft.models.object_detection_model import ObjectDetectionModel

    if isinstance(model, ObjectDetectionModel):  # boxes, not a tensor map: its own export (ONNX only)
        from geoft.detection_export import export_detection

        return export_detection(model, path, example_input, format)
    if format == "onnx":
        return export_onnx(model, path, example_input, dynamic_hw=dynamic_hw)
    if format == "torchscript":
        return export_torchscript(model, path, example_input)
    return export_pt2(model, path, example_input, dynamic_hw=dynamic_hw)
