"""ONNX export of detection models (torchvision's Faster R-CNN, RetinaNet, FCOS, Mask R-CNN on a geoft backbone).

The graph takes one image ``[1, C, H, W]`` (torchvision's detectors export for one image at a time) and
returns ``boxes`` ``[N, 4]`` (pixels), ``scores`` ``[N]``, ``labels`` ``[N]`` (and ``masks``
``[N, 1, H, W]`` for Mask R-CNN) with ``N`` varying per image. Height and width stay dynamic.
TorchScript and ``torch.export`` programs are not offered: both fail on the detectors' data-dependent
number of boxes, so :func:`export_detection` says so instead of writing a broken file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from geoft.errors import ConfigError, ExportError, first_line
from geoft.models.object_detection_model import ObjectDetectionModel


class _SingleImageDetector(nn.Module):
    def __init__(self, model: ObjectDetectionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        det = self.model(image)[0]
        outputs = (det["boxes"], det["scores"], det["labels"])
        return (*outputs, det["masks"]) if "masks" in det else outputs


def output_names(model: ObjectDetectionModel) -> list[str]:
    return ["boxes", "scores", "labels"] + (["masks"] if model.has_masks else [])


def export_detection(
    model: ObjectDetectionModel, path: str | Path, example_input: Tensor, format: str
) -> Path:
    """Write ``model`` as ONNX (the only format detection models export to; see the module doc)."""
    if format != "onnx":
        raise ExportError(
            f"detection models cannot be exported as {format}: torchvision's detectors return a data-dependent "
            "number of boxes, which torch.export and TorchScript tracing cannot represent",
            hint="use --format onnx",
        )
    if example_input.ndim != 4 or example_input.shape[0] != 1:
        raise ConfigError(
            f"detection ONNX export takes one image [1, C, H, W], got {tuple(example_input.shape)}",
            hint="pass --input_shape 1,C,H,W",
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _SingleImageDetector(model.eval())
    names = output_names(model)
    dynamic = {"image": {2: "height", 3: "width"}, **{n: {0: "detections"} for n in names}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the TorchScript-based exporter: torchvision's detection ops (RoIAlign, NMS) export through it
            torch.onnx.export(
                wrapped, (example_input,), str(path), dynamo=False, opset_version=17,
                input_names=["image"], output_names=names, dynamic_axes=dynamic,
            )  # fmt: skip
    except Exception as err:  # the exporter raises many types; report them uniformly
        raise ExportError(
            f"ONNX export of the {model.framework} model failed: {type(err).__name__}: {first_line(err)}",
            hint="torchvision documents ONNX export of its detectors for opset >= 11; a backbone layer "
            "without an ONNX equivalent can still block it",
        ) from err
    return path


def verify_detection_onnx(model: ObjectDetectionModel, path: str | Path, inputs: list[Tensor]) -> float:
    """Run the ONNX file in onnxruntime on ``inputs`` (each ``[1, C, H, W]``); return the largest box
    difference from PyTorch (pixels). Raises ExportError when the detections differ in number or class."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    model.eval()
    for x in inputs:
        with torch.no_grad():
            expected = model(x)[0]
        boxes, scores, labels = session.run(None, {"image": x.numpy()})[:3]
        if boxes.shape[0] != expected["boxes"].shape[0] or not np.array_equal(
            labels, expected["labels"].numpy()
        ):
            raise ExportError(
                f"the ONNX model found {boxes.shape[0]} objects on input {tuple(x.shape)}, PyTorch "
                f"{expected['boxes'].shape[0]} (or other classes)"
            )
        if boxes.size:
            worst = max(worst, float(np.abs(boxes - expected["boxes"].numpy()).max()))
            worst = max(worst, float(np.abs(scores - expected["scores"].numpy()).max()))
    return worst


__all__ = ["export_detection", "output_names", "verify_detection_onnx"]
