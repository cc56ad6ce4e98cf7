"""Build a ``geoft fit`` config (the same YAML the CLI reads) from form values, and read one back.

The choices and presets are :mod:`geoft.app.form_choices`'; the sections per task kind
:mod:`geoft.app.task_builders`'.
"""

from __future__ import annotations

from typing import Any

import yaml

from geoft.app.config_safety import check_class_paths
from geoft.app.form_choices import (
    APP_KINDS,
    CLASSIFICATION_PRESETS,
    DETECTION_FRAMEWORKS,
    DETECTION_PRESETS,
    LOSSES,
    MULTILABEL_PRESETS,
    PIXELWISE_PRESETS,
    PRESETS,
    SCALAR_PRESETS,
    TASK_PRESETS,
    DataChoice,
    ModelChoice,
    TrainChoice,
    preset_kind,
)
from geoft.app.task_builders import (
    BUILDERS,
    CLASSES,
    MULTIMODAL_DATAMODULE,
    encoder_decoder_args,
    task_kind_of,
)
from geoft.errors import ConfigError

__all__ = [
    "APP_KINDS",
    "CLASSIFICATION_PRESETS",
    "DETECTION_FRAMEWORKS",
    "DETECTION_PRESETS",
    "LOSSES",
    "MULTILABEL_PRESETS",
    "PIXELWISE_PRESETS",
    "PRESETS",
    "SCALAR_PRESETS",
    "TASK_PRESETS",
    "DataChoice",
    "ModelChoice",
    "TrainChoice",
    "available_accelerators",
    "band_statistics",
    "best_precision",
    "build_config",
    "config_from_yaml",
    "config_to_yaml",
    "model_args",
    "preset_kind",
    "task_kind_of",
]


def model_args(model: ModelChoice, data: DataChoice) -> dict[str, Any]:
    """``model_args`` for the encoder-decoder factory of a segmentation model."""
    return encoder_decoder_args(model, data, len(data.class_names))


def build_config(data: DataChoice, model: ModelChoice, train: TrainChoice) -> dict[str, Any]:
    """A complete ``geoft fit`` config for the preset's task (``model.kind``)."""
    builder = BUILDERS.get(model.kind)
    if builder is None:
        raise ConfigError(
            f"the app builds no {model.kind} config", hint="upload a YAML config for this task instead"
        )
    if not data.bands:
        raise ConfigError("choose at least one input band")
    if train.max_epochs < 1 or train.batch_size < 1:
        raise ConfigError("epochs and batch size must be at least 1")
    init_data, task = builder(data, model, train)
    data_class, task_class = CLASSES[model.kind]
    if data.modality_bands is not None:
        data_class = MULTIMODAL_DATAMODULE
    config = {
        "seed_everything": train.seed,
        "trainer": {
            "accelerator": train.accelerator,
            "devices": 1,
            "precision": train.precision or best_precision(train.accelerator),
            "max_epochs": train.max_epochs,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,  # the app follows metrics.jsonl; bars only clutter the log
        },
        "data": {"class_path": data_class, "init_args": init_data},
        "model": {"class_path": task_class, "init_args": task},
    }
    check_class_paths(config)
    return config


def config_to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def config_from_yaml(text: str | bytes) -> dict[str, Any]:
    """Parse an uploaded YAML config; refuse non-mappings and classes outside allowed packages."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"the config is not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError("the config must be a YAML mapping with trainer/data/model sections")
    missing = [k for k in ("data", "model") if k not in config]
    if missing:
        raise ConfigError(
            f"the config has no {', '.join(missing)} section", hint="start from a preset and edit it"
        )
    # weights_only: false would let Lightning fully unpickle a checkpoint (arbitrary code).
    if config.get("weights_only") not in (None, True):
        raise ConfigError(
            f"web configs may not set weights_only: {config['weights_only']!r}; checkpoints are loaded as plain weights",
            hint="remove weights_only from the config",
        )
    check_class_paths(config)
    return config


def best_precision(accelerator: str) -> str:
    """bf16 where the hardware has it, else full precision (see :func:`geoft.hardware.default_precision`)."""
    from geoft.hardware import default_precision

    return default_precision(accelerator)


def available_accelerators() -> list[str]:
    import torch

    return (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]


def band_statistics(
    stats: dict[str, list[float]] | None, dataset_bands: list[str], bands: list[str]
) -> tuple[list[float] | None, list[float] | None]:
    """Means and stds of ``bands`` from statistics computed over every band of the files."""
    if not stats or len(stats.get("means") or []) != len(dataset_bands):
        return None, None
    index = [dataset_bands.index(b) for b in bands]
    return [stats["means"][i] for i in index], [stats["stds"][i] for i in index]
