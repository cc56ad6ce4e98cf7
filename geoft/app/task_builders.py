"""One builder per task kind: the ``data`` and ``model`` sections of a ``geoft fit`` config from the form.

Each builder returns the datamodule's and the task's ``init_args`` (their classes are :data:`CLASSES`); the
parts every kind shares (bands, statistics, backbone, LoRA) are built once here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from geoft.app.form_choices import DETECTION_FRAMEWORKS, DataChoice, FusionChoice, ModelChoice, TrainChoice
from geoft.app.fusion_choice import fused_backbone_args, multimodal_data_args
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind

Sections = tuple[dict[str, Any], dict[str, Any]]  # the datamodule's and the task's init_args


def image_data_args(data: DataChoice, train: TrainChoice) -> dict[str, Any]:
    """Datamodule arguments every kind reads the images with: paths, bands, nodata, statistics, loading."""
    if data.modality_bands is not None:
        raise ConfigError(
            "the app builds configs of several modalities or dates for segmentation masks only",
            hint="upload a YAML config with GenericMultiModalDataModule for this task",
        )
    init: dict[str, Any] = {
        **copy.deepcopy(data.paths),
        "dataset_bands": list(data.dataset_bands or data.bands),
        "batch_size": train.batch_size,
        "num_workers": train.num_workers,
    }
    if data.dataset_bands and list(data.dataset_bands) != list(data.bands):
        missing = [b for b in data.bands if b not in data.dataset_bands]
        if missing:
            raise ConfigError(f"input bands {', '.join(missing)} are not bands of the files")
        init["output_bands"] = list(data.bands)
    if data.no_data_replace is not None:
        init["no_data_replace"] = data.no_data_replace
    if data.rgb_bands and all(b in data.bands for b in data.rgb_bands):
        init["rgb_indices"] = [data.bands.index(b) for b in data.rgb_bands]
    if data.means is not None and data.stds is not None:
        init["means"] = list(data.means)
        init["stds"] = list(data.stds)
    return init


def multimodal_image_args(data: DataChoice, model: ModelChoice, train: TrainChoice) -> dict[str, Any]:
    """``GenericMultiModalDataModule`` arguments of the images: paths, bands per modality, statistics."""
    init = multimodal_data_args(
        data.paths,
        data.modality_dataset_bands or dict(data.modality_bands or {}),
        dict(data.modality_bands or {}),
        data.modality_statistics,
        model.fusion or FusionChoice(),
    )
    init.update({"batch_size": train.batch_size, "num_workers": train.num_workers})
    if data.no_data_replace is not None:
        init["no_data_replace"] = data.no_data_replace
    return init


def backbone_args(model: ModelChoice, data: DataChoice) -> dict[str, Any]:
    """The ``backbone*`` part of ``model_args`` (the same for every factory)."""
    if data.modality_bands is not None:
        from geoft.app.backbone_choice import band_argument

        fusion = model.fusion or FusionChoice()
        names = {model.backbone, *fusion.encoders.values()}
        return fused_backbone_args(
            model.backbone,
            {n: band_argument(n) for n in names},
            dict(data.modality_bands),
            model.backbone_pretrained,
            dict(model.backbone_args),
            fusion,
        )
    return {
        "backbone": model.backbone,
        "backbone_pretrained": model.backbone_pretrained,
        **(
            {"backbone_bands": list(data.bands)}
            if model.band_arg == "bands"
            else {"backbone_in_chans": len(data.bands)}
        ),
        **{f"backbone_{k}": v for k, v in model.backbone_args.items()},
    }


def _lora(model: ModelChoice) -> dict[str, Any]:
    if not model.lora_rank:
        return {}
    if model.freeze_backbone:
        raise ConfigError(
            "LoRA and 'Freeze backbone' exclude each other: LoRA keeps the backbone's weights fixed and "
            "trains its adapters; freezing the backbone would freeze the adapters too"
        )
    return {
        "peft_config": {
            "method": "LORA",
            "peft_config_kwargs": {"r": int(model.lora_rank), "lora_alpha": int(model.lora_alpha)},
        }
    }


def encoder_decoder_args(model: ModelChoice, data: DataChoice, num_classes: int | None) -> dict[str, Any]:
    """``model_args`` for the encoder-decoder factory (segmentation, pixel-wise and scalar regression)."""
    args: dict[str, Any] = {
        **backbone_args(model, data),
        "decoder": model.decoder,
        **{f"decoder_{k}": v for k, v in model.decoder_args.items()},
    }
    if num_classes is not None:
        args["num_classes"] = num_classes
    if model.necks is not None:
        args["necks"] = copy.deepcopy(model.necks)
    if model.head_dropout:
        args["head_dropout"] = model.head_dropout
    args.update(_lora(model))
    return args


def _class_args(data: DataChoice) -> dict[str, Any]:
    return {"num_classes": len(data.class_names), "class_names": list(data.class_names)}


def _common_task_args(model: ModelChoice) -> dict[str, Any]:
    return {
        "lr": model.lr,
        "optimizer": model.optimizer,
        "freeze_backbone": model.freeze_backbone,
        "freeze_decoder": model.freeze_decoder,
    }


def _encoder_decoder_task(
    model: ModelChoice, data: DataChoice, init: dict[str, Any], num_classes: int | None
) -> dict[str, Any]:
    """The task of an encoder-decoder model: its ``model_args``, loss, optimizer, classes, RGB bands."""
    task: dict[str, Any] = {
        "model_factory": "EncoderDecoderFactory",
        "model_args": encoder_decoder_args(model, data, num_classes),
        "loss": model.loss,
        **_common_task_args(model),
    }
    if num_classes is not None:
        task["class_names"] = list(data.class_names)
    if "rgb_indices" in init:
        task["rgb_indices"] = list(init["rgb_indices"])
    return task


def segmentation_sections(data: DataChoice, model: ModelChoice, train: TrainChoice) -> Sections:
    if len(data.class_names) < 2:
        raise ConfigError(
            "segmentation needs at least two classes", hint="name every class, background included"
        )
    images = (
        image_data_args(data, train)
        if data.modality_bands is None
        else multimodal_image_args(data, model, train)
    )
    init = {**images, **_class_args(data), **copy.deepcopy(data.extra)}
    task = _encoder_decoder_task(model, data, init, len(data.class_names))
    if data.ignore_index is not None:
        task["ignore_index"] = data.ignore_index
        init["ignore_index"] = data.ignore_index
    return init, task


def pixelwise_regression_sections(data: DataChoice, model: ModelChoice, train: TrainChoice) -> Sections:
    init = {**image_data_args(data, train), **copy.deepcopy(data.extra)}
    task = _encoder_decoder_task(model, data, init, None)
    if data.ignore_index is not None:  # target pixels with this value count in no loss and no metric
        task["ignore_index"] = data.ignore_index
        init["ignore_index"] = data.ignore_index
    return init, task


def classification_sections(data: DataChoice, model: ModelChoice, train: TrainChoice) -> Sections:
    if len(data.class_names) < 2:
        raise ConfigError("classification needs at least two classes", hint="name every class")
    init = {**image_data_args(data, train), **_class_args(data), **copy.deepcopy(data.extra)}
    if model.kind == TaskKind.MULTILABEL_CLASSIFICATION:
        init["multi_label"] = True
    return init, _encoder_decoder_task(model, data, init, len(data.class_names))


def detection_sections(data: DataChoice, model: ModelChoice, train: TrainChoice) -> Sections:
    if not data.class_names:
        raise ConfigError(
            "object detection needs at least one object class", hint="name the classes of the objects"
        )
    if model.framework not in DETECTION_FRAMEWORKS:
        raise ConfigError(
            f"unknown detector {model.framework!r}", hint=f"choose one of {', '.join(DETECTION_FRAMEWORKS)}"
        )
    if model.lora_rank:
        raise ConfigError(
            "LoRA is not available for object detection", hint="train the whole backbone or freeze it"
        )
    init = {**image_data_args(data, train), **_class_args(data), **copy.deepcopy(data.extra)}
    args: dict[str, Any] = {
        **backbone_args(model, data),
        "framework": model.framework,
        "num_classes": len(data.class_names),
    }
    if model.anchor_sizes is not None:
        args["anchor_sizes"] = list(model.anchor_sizes)
    if model.necks is not None:
        args["necks"] = copy.deepcopy(model.necks)
    # the RPN and RoI sampling arguments exist for the R-CNNs only
    if model.framework == "faster-rcnn":
        args.update({f"framework_{k}": v for k, v in model.framework_args.items()})
    task: dict[str, Any] = {
        "model_factory": "ObjectDetectionModelFactory",
        "model_args": args,
        **_common_task_args(model),
        "class_names": list(data.class_names),
    }
    return init, task


def scalar_regression_sections(data: DataChoice, model: ModelChoice, train: TrainChoice) -> Sections:
    names = list(data.value_names or [])
    num_outputs = max(1, len(names))
    init = image_data_args(data, train)
    init["num_outputs"] = num_outputs
    init.update(copy.deepcopy(data.extra))
    task: dict[str, Any] = {
        "model_factory": "EncoderDecoderFactory",
        "model_args": encoder_decoder_args(model, data, None),
        "loss": model.loss,
        **_common_task_args(model),
        "num_outputs": num_outputs,
    }
    if num_outputs > 1:
        task["var_names"] = names
    if "rgb_indices" in init:
        task["rgb_indices"] = list(init["rgb_indices"])
    return init, task


MULTIMODAL_DATAMODULE = "geoft.datamodules.GenericMultiModalDataModule"
CLASSES: dict[TaskKind, tuple[str, str]] = {  # datamodule and task
    TaskKind.SEGMENTATION: (
        "geoft.datamodules.GenericNonGeoSegmentationDataModule",
        "geoft.tasks.SemanticSegmentationTask",
    ),
    TaskKind.REGRESSION: (
        "geoft.datamodules.GenericNonGeoPixelwiseRegressionDataModule",
        "geoft.tasks.PixelwiseRegressionTask",
    ),
    TaskKind.CLASSIFICATION: (
        "geoft.datamodules.GenericNonGeoClassificationDataModule",
        "geoft.tasks.ClassificationTask",
    ),
    TaskKind.MULTILABEL_CLASSIFICATION: (
        "geoft.datamodules.GenericNonGeoClassificationDataModule",
        "geoft.tasks.MultiLabelClassificationTask",
    ),
    TaskKind.OBJECT_DETECTION: (
        "geoft.datamodules.GenericObjectDetectionDataModule",
        "geoft.tasks.ObjectDetectionTask",
    ),
    TaskKind.SCALAR_REGRESSION: (
        "geoft.datamodules.GenericNonGeoScalarRegressionDataModule",
        "geoft.tasks.ScalarRegressionTask",
    ),
}
BUILDERS: dict[TaskKind, Callable[[DataChoice, ModelChoice, TrainChoice], Sections]] = {
    TaskKind.SEGMENTATION: segmentation_sections,
    TaskKind.REGRESSION: pixelwise_regression_sections,
    TaskKind.CLASSIFICATION: classification_sections,
    TaskKind.MULTILABEL_CLASSIFICATION: classification_sections,
    TaskKind.OBJECT_DETECTION: detection_sections,
    TaskKind.SCALAR_REGRESSION: scalar_regression_sections,
}


def task_kind_of(config: dict[str, Any]) -> TaskKind | None:
    """The kind of a config's task (its class's ``task_kind``), None when the class is not a geoft task."""
    import geoft.tasks

    name = str((config.get("model") or {}).get("class_path") or "").rsplit(".", 1)[-1]
    try:
        task_class = getattr(geoft.tasks, name)
        return TaskKind.parse(task_class.task_kind)
    except (AttributeError, ImportError, ConfigError):
        return None
