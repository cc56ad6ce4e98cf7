"""What the Model page's form holds: the model, data and training choices, and the presets per task.

Presets are combinations known to train: Prithvi + UPerNet, Prithvi + UNet and timm ResNet + smp U-Net
for segmentation and for one value per pixel; Faster R-CNN on a ResNet or on Prithvi tiny (through the FPN neck the detection factory
adds) for object detection; Prithvi tiny or a ResNet with a regression head for one value per image, and with a linear
classification head for one class per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geoft.app.fusion_choice import FusionChoice
from geoft.task_kinds import TaskKind

# the kinds of labels the app trains on, as the Data page names them
APP_KINDS: dict[TaskKind, str] = {
    TaskKind.SEGMENTATION: "Segmentation masks (one class per pixel)",
    TaskKind.REGRESSION: "Value rasters (one value per pixel)",
    TaskKind.OBJECT_DETECTION: "Object annotations (boxes or polygons)",
    TaskKind.SCALAR_REGRESSION: "One value per image (a labels file)",
    TaskKind.CLASSIFICATION: "One class per image (class folders or a labels file)",
    TaskKind.MULTILABEL_CLASSIFICATION: "Several classes per image (a labels file)",
}


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
    kind: TaskKind = TaskKind.SEGMENTATION
    # object detection only: torchvision's framework and its arguments (``framework_*`` in model_args)
    framework: str = "faster-rcnn"
    framework_args: dict[str, Any] = field(default_factory=dict)
    anchor_sizes: list[int] | None = None
    # several modalities or dates (GenericMultiModalDataModule): how they are fused; None: one stack of bands
    fusion: FusionChoice | None = None


# small anchors and RPN/RoI samples: the chips the app trains on are small (64-512 pixels)
_DETECTION = {
    "kind": TaskKind.OBJECT_DETECTION,
    "decoder": "",
    "decoder_args": {},
    "loss": "",
    "anchor_sizes": [16, 32, 64, 128, 256],
    "framework_args": {"rpn_batch_size_per_image": 64, "box_batch_size_per_image": 128},
}
_SCALAR = {
    "kind": TaskKind.SCALAR_REGRESSION,
    "decoder": "IdentityDecoder",
    "decoder_args": {},
    "loss": "mse",
}

PRESETS: dict[str, ModelChoice] = {
    "Prithvi tiny + UPerNet": ModelChoice(),
    "Prithvi tiny + UNet": ModelChoice(decoder="UNetDecoder", decoder_args={"channels": [128, 64, 32, 16]}),
    "ResNet18 (timm) + U-Net (smp)": ModelChoice(
        backbone="timm_resnet18", band_arg="in_chans", decoder="smp_Unet", decoder_args={}
    ),
}
DETECTION_PRESETS: dict[str, ModelChoice] = {
    "Faster R-CNN + ResNet18 (timm)": ModelChoice(
        backbone="timm_resnet18",
        band_arg="in_chans",
        necks=[{"name": "FeaturePyramidNetworkNeck", "out_channel": 64}],
        **_DETECTION,
    ),
    # necks None: the factory adds SelectIndices, ReshapeTokensToImage, the pyramid and the FPN neck
    "Faster R-CNN + Prithvi tiny (FPN neck)": ModelChoice(**_DETECTION),
}
_PIXELWISE = {"kind": TaskKind.REGRESSION, "loss": "mse"}
PIXELWISE_PRESETS: dict[str, ModelChoice] = {
    "Prithvi tiny + UPerNet (one value per pixel)": ModelChoice(**_PIXELWISE),
    "ResNet18 (timm) + U-Net (smp, one value per pixel)": ModelChoice(
        backbone="timm_resnet18", band_arg="in_chans", decoder="smp_Unet", decoder_args={}, **_PIXELWISE
    ),
}
SCALAR_PRESETS: dict[str, ModelChoice] = {
    "Prithvi tiny + regression head": ModelChoice(**_SCALAR),
    "ResNet18 (timm) + regression head": ModelChoice(
        backbone="timm_resnet18", band_arg="in_chans", **_SCALAR
    ),
}
_CLASSIFICATION = {
    "kind": TaskKind.CLASSIFICATION,
    "decoder": "IdentityDecoder",
    "decoder_args": {},
    "loss": "ce",
}
CLASSIFICATION_PRESETS: dict[str, ModelChoice] = {
    "Prithvi tiny + linear head": ModelChoice(**_CLASSIFICATION),
    "ResNet18 (timm) + linear head": ModelChoice(
        backbone="timm_resnet18", band_arg="in_chans", **_CLASSIFICATION
    ),
}
_MULTILABEL = {**_CLASSIFICATION, "kind": TaskKind.MULTILABEL_CLASSIFICATION, "loss": "bce"}
MULTILABEL_PRESETS: dict[str, ModelChoice] = {
    name: ModelChoice(**{**preset.__dict__, **_MULTILABEL}) for name, preset in CLASSIFICATION_PRESETS.items()
}
TASK_PRESETS: dict[TaskKind, dict[str, ModelChoice]] = {
    TaskKind.SEGMENTATION: PRESETS,
    TaskKind.REGRESSION: PIXELWISE_PRESETS,
    TaskKind.OBJECT_DETECTION: DETECTION_PRESETS,
    TaskKind.SCALAR_REGRESSION: SCALAR_PRESETS,
    TaskKind.CLASSIFICATION: CLASSIFICATION_PRESETS,
    TaskKind.MULTILABEL_CLASSIFICATION: MULTILABEL_PRESETS,
}
LOSSES: dict[TaskKind, list[str]] = {
    TaskKind.SEGMENTATION: ["ce", "dice", "focal", "jaccard", "lovasz"],
    TaskKind.REGRESSION: ["mse", "mae", "rmse", "huber"],
    TaskKind.SCALAR_REGRESSION: ["mse", "mae", "rmse", "huber"],
    TaskKind.CLASSIFICATION: ["ce", "bce", "focal"],
    TaskKind.MULTILABEL_CLASSIFICATION: ["bce", "balanced_bce"],
    TaskKind.OBJECT_DETECTION: [],  # torchvision's detectors bring their own losses
}
DETECTION_FRAMEWORKS = ["faster-rcnn", "retinanet", "fcos"]


@dataclass
class DataChoice:
    """The data part of the form (paths are already confined by the caller)."""

    root: str
    # datamodule arguments that say where the files are: data and label roots (or labels files), greps,
    # split files, the detection label format and class field
    paths: dict[str, Any]
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
    # classification: the split folders hold one sub-folder per class, or a labels file (``*_labels_file``)
    # scalar regression: one name per value of a labels-file row (None: one unnamed value)
    value_names: list[str] | None = None
    # several modalities: every band of each modality's files, and the model's bands of each, in order
    # (``bands`` is then their concatenation); statistics per modality over every band of its files
    modality_dataset_bands: dict[str, list[str]] | None = None
    modality_bands: dict[str, list[str]] | None = None
    modality_statistics: dict[str, dict[str, list[float]]] | None = None


@dataclass
class TrainChoice:
    """The training part of the form."""

    max_epochs: int = 3
    batch_size: int = 4
    precision: str | None = None  # None: bf16 where the hardware has it, else full precision
    accelerator: str = "cpu"
    num_workers: int = 0
    seed: int = 0


def preset_kind(preset: str) -> TaskKind:
    """The task a preset is for."""
    for kind, presets in TASK_PRESETS.items():
        if preset in presets:
            return kind
    raise KeyError(preset)
