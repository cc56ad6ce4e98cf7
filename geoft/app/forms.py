"""Build a ``geoft fit`` config (the same YAML the CLI reads) from form values, and read one back.

Presets are combinations known to train: Prithvi + UPerNet, Prithvi + UNet, timm ResNet + smp U-Net.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from geoft.app.config_safety import check_class_paths
from geoft.errors import ConfigError

TASK_CLASS = "geoft.tasks.SemanticSegmentationTask"
DATAMODULE_CLASS = "geoft.datamodules.GenericNonGeoSegmentationDataModule"


@dataclass
class ModelChoice:
    """The model part of the form."""

    backbone: str = "prithvi_eo_tiny"
    # None: the factory adds what the backbone needs (logged); []: no necks; a list: exactly these
    necks: list[dict[str, Any]] | None = None
    # how the backbone learns the input bands: by name ("bands") or by count ("in_chans")
    band_arg: str = "bands"
    decoder: str = "UperNetDecoder"
    decoder_args: dict[str, Any] = field(default_factory=lambda: {"channels": 64})
    head_dropout: float = 0.0
    backbone_pretrained: bool = False
    backbone_args: dict[str, Any] = field(default_factory=dict)
    freeze_backbone: bool = False
    freeze_decoder: bool = False
    # LoRA adapters on the backbone (peft): rank; None trains the whole backbone
    lora_rank: int | None = None
    lora_alpha: int = 16
    loss: str = "ce"
    optimizer: str = "AdamW"
    lr: float = 1e-3


PRESETS: dict[str, ModelChoice] = {
    "Prithvi tiny + UPerNet": ModelChoice(),
    "Prithvi tiny + UNet": ModelChoice(decoder="UNetDecoder", decoder_args={"channels": [128, 64, 32, 16]}),
    "ResNet18 (timm) + U-Net (smp)": ModelChoice(
        backbone="timm_resnet18", band_arg="in_chans", decoder="smp_Unet", decoder_args={}
    ),
}


@dataclass
class DataChoice:
    """The data part of the form (paths are already confined by the caller)."""

    root: str
    paths: dict[str, Any]  # train/val/test data and label roots, greps, split files (datamodule_paths)
    class_names: list[str]
    bands: list[str]
    means: list[float] | None = None
    stds: list[float] | None = None
    ignore_index: int | None = None
    # every band of the files, in file order; ``bands`` above is the model's subset, in its order
    dataset_bands: list[str] | None = None
    no_data_replace: float | None = None  # value for image nodata pixels (None: they are an error)
    rgb_bands: list[str] | None = None  # red, green, blue (names in ``bands``) for previews
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainChoice:
    """The training part of the form."""

    max_epochs: int = 3
    batch_size: int = 4
    precision: str | None = None  # None: bf16 where the hardware has it, else full precision
    accelerator: str = "cpu"
    num_workers: int = 0
    seed: int = 0


def model_args(model: ModelChoice, data: DataChoice) -> dict[str, Any]:
    """``model_args`` for the encoder-decoder factory."""
    args: dict[str, Any] = {
        "backbone": model.backbone,
        "backbone_pretrained": model.backbone_pretrained,
        **(
            {"backbone_bands": list(data.bands)}
            if model.band_arg == "bands"
            else {"backbone_in_chans": len(data.bands)}
        ),
        **{f"backbone_{k}": v for k, v in model.backbone_args.items()},
        "decoder": model.decoder,
        **{f"decoder_{k}": v for k, v in model.decoder_args.items()},
        "num_classes": len(data.class_names),
    }
    if model.necks is not None:
        args["necks"] = copy.deepcopy(model.necks)
    if model.head_dropout:
        args["head_dropout"] = model.head_dropout
    if model.lora_rank:
        if model.freeze_backbone:
            raise ConfigError(
                "LoRA and 'Freeze backbone' exclude each other: LoRA keeps the backbone's weights fixed and "
                "trains its adapters; freezing the backbone would freeze the adapters too"
            )
        args["peft_config"] = {
            "method": "LORA",
            "peft_config_kwargs": {"r": int(model.lora_rank), "lora_alpha": int(model.lora_alpha)},
        }
    return args


def build_config(data: DataChoice, model: ModelChoice, train: TrainChoice) -> dict[str, Any]:
    """A complete ``geoft fit`` config."""
    if len(data.class_names) < 2:
        raise ConfigError(
            "segmentation needs at least two classes", hint="name every class, background included"
        )
    if not data.bands:
        raise ConfigError("choose at least one input band")
    if train.max_epochs < 1 or train.batch_size < 1:
        raise ConfigError("epochs and batch size must be at least 1")
    init_data: dict[str, Any] = {
        **copy.deepcopy(data.paths),
        "dataset_bands": list(data.dataset_bands or data.bands),
        "num_classes": len(data.class_names),
        "class_names": list(data.class_names),
        "batch_size": train.batch_size,
        "num_workers": train.num_workers,
        **copy.deepcopy(data.extra),
    }
    if data.dataset_bands and list(data.dataset_bands) != list(data.bands):
        missing = [b for b in data.bands if b not in data.dataset_bands]
        if missing:
            raise ConfigError(f"input bands {', '.join(missing)} are not bands of the files")
        init_data["output_bands"] = list(data.bands)
    if data.no_data_replace is not None:
        init_data["no_data_replace"] = data.no_data_replace
    if data.rgb_bands and all(b in data.bands for b in data.rgb_bands):
        init_data["rgb_indices"] = [data.bands.index(b) for b in data.rgb_bands]
    if data.means is not None and data.stds is not None:
        init_data["means"] = list(data.means)
        init_data["stds"] = list(data.stds)
    task: dict[str, Any] = {
        "model_factory": "EncoderDecoderFactory",
        "model_args": model_args(model, data),
        "loss": model.loss,
        "lr": model.lr,
        "optimizer": model.optimizer,
        "freeze_backbone": model.freeze_backbone,
        "freeze_decoder": model.freeze_decoder,
        "class_names": list(data.class_names),
    }
    if "rgb_indices" in init_data:
        task["rgb_indices"] = list(init_data["rgb_indices"])
    if data.ignore_index is not None:
        task["ignore_index"] = data.ignore_index
        init_data["ignore_index"] = data.ignore_index
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
        "data": {"class_path": DATAMODULE_CLASS, "init_args": init_data},
        "model": {"class_path": TASK_CLASS, "init_args": task},
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
