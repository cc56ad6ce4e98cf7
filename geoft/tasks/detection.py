"""ObjectDetectionTask: boxes (and instance masks with Mask R-CNN) with torchvision's detection frameworks.

Batches hold ``image`` ``[B, C, H, W]`` and, per image, ``boxes`` (``[N, 4]`` xyxy pixels), ``labels``
(``[N]``, ``0..num_classes-1``) and for Mask R-CNN ``masks`` (``[N, H, W]``) as lists; see
:mod:`geoft.datamodules.detection`. Names and arguments follow the reference, so its configs carry over.

Logged: ``train/loss`` and each torchvision loss (``train/loss_classifier``...) per step; per epoch
``val/mAP``, ``val/mAP_50``, ``val/mAP_75``, ``val/mAR_100``, ``val/AP/<class>`` (classes present in the
split) and, for Mask R-CNN, ``val/mask_mAP``, ``val/mask_mAP_50``, ``val/mask_mAP_75`` (same for ``test/``).
Metrics see every detection (mAP integrates over scores); ``score_threshold`` and ``iou_threshold``
(non-maximum suppression per class) filter what ``predict_step`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from lightning.pytorch import Callback, LightningModule
from torch import Tensor
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import batched_nms

from geoft.errors import ConfigError, DataError
from geoft.models.object_detection_model import ObjectDetectionModel
from geoft.tasks.optimizers import check_optimizer, check_scheduler, configure_optimization
from geoft.training_guards import TrainingGuard, out_of_memory_guard

METADATA_KEYS = ("filename", "crs", "transform")
_METRIC_NAMES = {"map": "mAP", "map_50": "mAP_50", "map_75": "mAP_75", "mar_100": "mAR_100"}


def filter_detections(
    detections: Mapping[str, Tensor], score_threshold: float, iou_threshold: float
) -> dict[str, Tensor]:
    """Keep detections scoring above ``score_threshold``, then non-maximum suppression per class."""
    keep = detections["scores"] > score_threshold
    kept = {k: v[keep] for k, v in detections.items()}
    order = batched_nms(kept["boxes"].float(), kept["scores"].float(), kept["labels"], iou_threshold)
    return {k: v[order] for k, v in kept.items()}


class ObjectDetectionTask(LightningModule):
    """Object detection (``faster-rcnn``, ``retinanet``, ``fcos``) or instance segmentation (``mask-rcnn``).

    Args:
        model_factory: a model-factory registry name (``"ObjectDetectionModelFactory"``).
        model_args: arguments of its ``build_model`` (``backbone``, ``framework``, ``num_classes``...).
        lr, optimizer, optimizer_hparams, scheduler, scheduler_hparams, lr_overrides: as for every geoft
            task (:mod:`geoft.tasks.optimizers`).
        freeze_backbone: stop training the backbone.
        freeze_decoder: stop training the necks (feature pyramid).
        freeze_head: stop training the detection heads.
        class_names: one name per object class (per-class AP and the vector files' ``class_name``).
        iou_threshold: non-maximum-suppression IoU of ``predict_step``.
        score_threshold: lowest score ``predict_step`` returns.
        boxes_field, labels_field, masks_field: batch keys of the targets.
        ignore_index: objects with this label are dropped from targets (-1: none, as in the reference).
    """

    task_kind: ClassVar[str] = "object_detection"
    checkpoint_mode: ClassVar[str] = "max"  # mAP: higher is better (geoft sweep's study direction)

    def __init__(
        self,
        model_factory: str = "ObjectDetectionModelFactory",
        model_args: dict[str, Any] | None = None,
        lr: float = 0.001,
        optimizer: str | None = None,
        optimizer_hparams: dict[str, Any] | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict[str, Any] | None = None,
        freeze_backbone: bool = False,
        freeze_decoder: bool = False,
        freeze_head: bool = False,
        class_names: list[str] | None = None,
        iou_threshold: float = 0.5,
        score_threshold: float = 0.5,
        boxes_field: str = "boxes",
        labels_field: str = "labels",
        masks_field: str = "masks",
        ignore_index: int = -1,
        lr_overrides: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(
                f"score_threshold must be in [0, 1] and iou_threshold in (0, 1], got {score_threshold}, "
                f"{iou_threshold}"
            )
        self.model = self._build_model(model_factory, model_args or {})
        self.num_classes = self.model.num_classes
        if class_names is not None and len(class_names) != self.num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} names but model_args.num_classes is {self.num_classes}",
                hint="num_classes counts object classes only (no background class)",
            )
        self.class_names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        for wanted, method in ((freeze_backbone, "freeze_encoder"), (freeze_decoder, "freeze_decoder")):
            if wanted:
                getattr(self.model, method)()
        if freeze_head:
            self.model.freeze_head()
        self.has_masks = self.model.has_masks
        self.monitor = "val/mask_mAP" if self.has_masks else "val/mAP"
        self.checkpoint_monitor = (
            self.monitor,
            self.checkpoint_mode,
        )  # read by the CLI's checkpoint callback
        self.val_metrics = self._metric()
        self.test_metrics = self._metric()
        self._check_optimisation()

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def _build_model(model_factory: str, model_args: Mapping[str, Any]) -> ObjectDetectionModel:
        from geoft.registry import MODEL_FACTORY_REGISTRY

        factory = MODEL_FACTORY_REGISTRY.build(model_factory)
        model = factory.build_model("object_detection", **dict(model_args))
        if not isinstance(model, ObjectDetectionModel):
            raise ConfigError(
                f"{model_factory} built a {type(model).__name__}; ObjectDetectionTask needs an ObjectDetectionModel",
                hint="use model_factory: ObjectDetectionModelFactory",
            )
        return model

    def _metric(self) -> MeanAveragePrecision:
        iou_type = ("bbox", "segm") if self.has_masks else "bbox"
        return MeanAveragePrecision(iou_type=iou_type, class_metrics=True, backend="pycocotools")

    def _check_optimisation(self) -> None:
        hp = self.hparams
        check_optimizer(hp["optimizer"] or "Adam", hp["optimizer_hparams"])
        if hp["scheduler"]:
            check_scheduler(hp["scheduler"], hp["scheduler_hparams"])

    # -- batches ---------------------------------------------------------------------------------
    def targets(self, batch: Mapping[str, Any]) -> list[dict[str, Tensor]]:
        """Per-image target dicts from the batch, without ``ignore_index`` objects, checked."""
        hp = self.hparams
        for key in (hp["boxes_field"], hp["labels_field"]):
            if key not in batch:
                raise ConfigError(
                    f"ObjectDetectionTask needs batches with a {key!r} key; got keys {sorted(batch)}",
                    hint="use GenericObjectDetectionDataModule, or set boxes_field/labels_field",
                )
        if self.has_masks and hp["masks_field"] not in batch:
            raise ConfigError(
                f"mask-rcnn needs instance masks in the batch ({hp['masks_field']!r}); got keys {sorted(batch)}",
                hint="label objects with polygons (GeoJSON/GeoPackage or COCO segmentation) and set return_masks",
            )
        out = []
        names = batch.get("filename") or [None] * len(batch["image"])
        for i, (boxes, labels) in enumerate(
            zip(batch[hp["boxes_field"]], batch[hp["labels_field"]], strict=True)
        ):
            keep = labels != hp["ignore_index"]
            target = {"boxes": boxes[keep].float(), "labels": labels[keep].long()}
            if self.has_masks:
                target["masks"] = batch[hp["masks_field"]][i][keep].to(torch.uint8)
            bad = target["labels"][(target["labels"] < 0) | (target["labels"] >= self.num_classes)]
            if bad.numel():
                raise DataError(
                    f"{names[i] or f'image {i}'}: labels {sorted(set(bad.tolist()))} are not classes "
                    f"0..{self.num_classes - 1}",
                    hint="check num_classes (object classes, no background) and the annotations",
                )
            out.append(target)
        return out

    def forward(self, x: Tensor, targets: list[dict[str, Tensor]] | None = None) -> Any:
        return self.model(x, targets)

    # -- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        targets = self.targets(batch)
        with out_of_memory_guard("training", batch):
            losses: dict[str, Tensor] = self.model(batch["image"], targets)
        loss = torch.stack(list(losses.values())).sum()
        size = len(targets)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=size)
        return loss

    def detect(self, image: Tensor) -> list[dict[str, Tensor]]:
        """All detections per image (eval mode), masks as ``[N, H, W]`` uint8 (threshold 0.5)."""
        detections = self.model(image)
        if self.has_masks:
            for det in detections:
                det["masks"] = (det["masks"][:, 0] > 0.5).to(torch.uint8)
        return detections

    def _evaluate(self, batch: dict[str, Any], metric: MeanAveragePrecision, stage: str) -> None:
        targets = self.targets(batch)
        with out_of_memory_guard(stage, batch):
            detections = self.detect(batch["image"])
        metric.update([{k: v.detach() for k, v in d.items()} for d in detections], targets)

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, self.val_metrics, "validation")

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Per image ``boxes`` (pixels), ``labels``, ``scores`` (and ``masks`` ``[N, H, W]`` bool) on the
        CPU, filtered by ``score_threshold`` and NMS, plus the batch's ``filename``, ``crs``, ``transform``."""
        with out_of_memory_guard("predict", batch):
            detections = self.detect(batch["image"])
        hp = self.hparams
        kept = [filter_detections(d, hp["score_threshold"], hp["iou_threshold"]) for d in detections]
        result: dict[str, Any] = {
            key: [d[key].detach().cpu() for d in kept] for key in ("boxes", "labels", "scores")
        }
        if self.has_masks:
            result["masks"] = [d["masks"].detach().cpu().bool() for d in kept]
        for key in METADATA_KEYS:
            result[key] = batch.get(key)
        return result

    # -- epoch ends ------------------------------------------------------------------------------
    def metric_values(self, metric: MeanAveragePrecision, prefix: str) -> dict[str, Tensor]:
        """``{prefix}/mAP``... from a computed MeanAveragePrecision (see the module doc)."""
        raw = metric.compute()
        out: dict[str, Tensor] = {}
        kinds = (("bbox_", ""), ("segm_", "mask_")) if self.has_masks else (("", ""),)
        for source, target in kinds:
            for key, name in _METRIC_NAMES.items():
                if target == "mask_" and key == "mar_100":
                    continue
                out[f"{prefix}/{target}{name}"] = raw[f"{source}{key}"].float()
        per_class = raw["bbox_map_per_class" if self.has_masks else "map_per_class"].reshape(-1)
        classes = raw["classes"].reshape(-1).tolist()
        for index, value in zip(classes, per_class.tolist(), strict=False):
            if 0 <= index < self.num_classes and value >= 0:  # -1: class absent from the split
                out[f"{prefix}/AP/{self.class_names[index]}"] = torch.tensor(value)
        return out

    def _log_epoch(self, metric: MeanAveragePrecision, prefix: str) -> None:
        if metric.update_count:
            self.log_dict(self.metric_values(metric, prefix))
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics, "test")

    # -- optimisation and callbacks --------------------------------------------------------------
    def configure_callbacks(self) -> list[Callback]:
        return [TrainingGuard()]

    def prediction_writer(self, output_dir: str) -> Callback:
        """The writer ``geoft predict`` uses: vector files in each image's CRS."""
        from geoft.vector_writer import VectorPredictionWriter

        return VectorPredictionWriter(output_dir)

    def configure_optimizers(self) -> dict[str, Any]:
        return configure_optimization(self, self.hparams["lr_overrides"], self.monitor)


__all__ = ["ObjectDetectionTask", "filter_detections"]
