"""A Lightning callback that writes ``predict`` outputs as georeferenced GeoTIFFs, one per input file.

For each sample of a batch returned by a task's ``predict_step`` (keys ``prediction``, optional
``probabilities`` / ``logits``, and the batch's ``filename``, ``crs``, ``transform``) it writes
``<stem>_pred.tif`` (and ``<stem>_probabilities.tif`` / ``<stem>_logits.tif``) into ``output_dir``:

* class maps (segmentation) as ``uint8`` with a colour table and class names,
* regression maps and probabilities/logits as ``float32``,
* with the input file's CRS, transform and nodata mask (read from the file when it still exists and
  matches the prediction's size; otherwise the batch's ``crs``/``transform``).

Under DDP each rank writes the samples it predicted; Lightning's predict loop gives every sample to
exactly one rank, and each file is written to a temporary name and renamed, so every file is
written once and never seen half-written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from geoft.errors import ConfigError
from geoft.io.geotiff import write_array

logger = logging.getLogger(__name__)

OUTPUTS = ("prediction", "probabilities", "logits")


def _stem(filename: Any, fallback: str) -> str:
    if isinstance(filename, (str, Path)) and str(filename):
        return Path(filename).stem  # "scene.tif" -> "scene"; a band folder keeps its name
    return fallback


def _source_georef(filename: Any, shape: tuple[int, int]) -> tuple[Any, Any, np.ndarray | None] | None:
    """CRS, transform and nodata mask of the input file if it is a raster of ``shape``."""
    if not isinstance(filename, (str, Path)) or not Path(filename).is_file():
        return None
    try:
        with rasterio.open(filename) as src:
            if (src.height, src.width) != shape:
                return None
            mask = src.dataset_mask() == 0
            return src.crs, src.transform, (mask if mask.any() else None)
    except rasterio.RasterioIOError:
        return None


class GeoTiffPredictionWriter(BasePredictionWriter):
    """Write predictions as GeoTIFFs.

    Args:
        output_dir: folder for the files (created).
        outputs: which of ``prediction``, ``probabilities``, ``logits`` to write (those the task returns).
        kind: ``classes`` (uint8 class map) or ``float`` (regression); default: from the task
            (``classes`` when it has ``num_classes``).
        class_names: names embedded in class maps (default: the task's ``class_names``).
        class_colors: ``"#rrggbb"`` or ``[r, g, b]`` per class (default: a distinct palette).
        suffix: appended to the input file's stem for the class/value map.
        overwrite: replace existing files (else an existing file is an error naming it).
    """

    def __init__(
        self,
        output_dir: str | Path,
        outputs: Sequence[str] = ("prediction",),
        kind: Literal["classes", "float"] | None = None,
        class_names: Sequence[str] | None = None,
        class_colors: Sequence[str | Sequence[int]] | None = None,
        suffix: str = "_pred",
        overwrite: bool = True,
    ) -> None:
        super().__init__(write_interval="batch")
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ConfigError(f"unknown prediction outputs {unknown}; choose from {list(OUTPUTS)}")
        if kind not in (None, "classes", "float"):
            raise ConfigError(f"kind must be 'classes' or 'float', got {kind!r}")
        self.output_dir = Path(output_dir)
        self.outputs = tuple(outputs)
        self.kind = kind
        self.class_names = list(class_names) if class_names is not None else None
        self.class_colors = list(class_colors) if class_colors is not None else None
        self.suffix = suffix
        self.overwrite = overwrite
        self.written: list[Path] = []

    def _resolve(self, pl_module: LightningModule) -> tuple[str, int | None, list[str] | None]:
        num_classes = getattr(pl_module, "num_classes", None)
        kind = self.kind or ("classes" if num_classes else "float")
        names = self.class_names
        if names is None:
            hparams = getattr(pl_module, "hparams", {}) or {}
            names = hparams.get("class_names") if hasattr(hparams, "get") else None
        return kind, num_classes, (list(names) if names else None)

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, dict) or "prediction" not in prediction:
            raise ConfigError(
                f"{type(pl_module).__name__}.predict_step returned {type(prediction).__name__}; the GeoTIFF writer "
                "needs a dict with 'prediction' (and 'filename', 'crs', 'transform')"
            )
        kind, num_classes, names = self._resolve(pl_module)
        preds: torch.Tensor = prediction["prediction"]
        if preds.ndim < 3:
            raise ConfigError(
                f"predictions of shape {tuple(preds.shape)} are not maps; GeoTIFF output is for pixel-wise tasks",
                hint="for classification, read the predictions returned by trainer.predict instead",
            )
        size = len(preds)
        filenames = prediction.get("filename") or [None] * size
        crs_list = prediction.get("crs") or [None] * size
        transforms = prediction.get("transform") or [None] * size
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i in range(size):
            stem = _stem(filenames[i], f"batch{batch_idx}_rank{trainer.global_rank}_{i}")
            pred = preds[i].numpy()
            georef = _source_georef(filenames[i], pred.shape[-2:])
            crs, transform, nodata = georef if georef else (crs_list[i], _transform(transforms[i]), None)
            self._write(
                self.output_dir / f"{stem}{self.suffix}.tif",
                pred,
                kind,
                crs,
                transform,
                nodata,
                num_classes,
                names,
            )
            for extra in ("probabilities", "logits"):
                if extra in self.outputs and extra in prediction:
                    band_names = [f"{extra[0]}({n})" for n in names] if names else None
                    values = prediction[extra][i].numpy()
                    self._write(
                        self.output_dir / f"{stem}_{extra}.tif",
                        values,
                        "float",
                        crs,
                        transform,
                        nodata,
                        None,
                        band_names,
                    )

    def _write(
        self,
        path: Path,
        array: np.ndarray,
        kind: str,
        crs: Any,
        transform: Any,
        nodata: np.ndarray | None,
        num_classes: int | None,
        names: list[str] | None,
    ) -> None:
        if path.exists() and not self.overwrite:
            raise ConfigError(f"{path} exists; remove it or set overwrite=True")
        if kind == "classes":
            write_array(
                path, array, kind="classes", crs=crs, transform=transform, nodata_mask=nodata,
                num_classes=num_classes, class_names=names, class_colors=self.class_colors,
            )  # fmt: skip
        else:
            write_array(
                path, array, kind="float", crs=crs, transform=transform, nodata_mask=nodata, band_names=names
            )
        self.written.append(path)


def _transform(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    return tuple(float(v) for v in list(value)[:6])
