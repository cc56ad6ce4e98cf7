"""Batch transforms: normalisation and kornia augmentation of image and mask together, on the device.

Augmentations come from YAML as a list whose items are

* a short name: ``hflip``, ``vflip``, ``rot90``, ``rotate``, ``crop``, or any class of
  ``kornia.augmentation`` (``RandomHorizontalFlip``);
* ``{class_path: kornia.augmentation.RandomRotation, init_args: {degrees: 30}}``;
* a few albumentations names from reference configs (``HorizontalFlip``...), translated to kornia;
  ``ToTensorV2`` is ignored (samples are tensors already).

Geometric transforms apply identically to image and mask; masks use nearest neighbour, and pixels
that come from outside the image (rotation corners, padding) get ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.registry import import_object
from geoft.task_kinds import TaskKind

SHORT_NAMES: dict[str, tuple[str, dict[str, Any]]] = {
    "hflip": ("RandomHorizontalFlip", {"p": 0.5}),
    "vflip": ("RandomVerticalFlip", {"p": 0.5}),
    "rot90": ("RandomRotation90", {"times": (0, 3), "p": 1.0}),
    "rotate": ("RandomRotation", {"degrees": 30.0, "p": 0.5}),
}
ALBUMENTATIONS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "HorizontalFlip": ("RandomHorizontalFlip", {}),
    "VerticalFlip": ("RandomVerticalFlip", {}),
    "RandomRotate90": ("RandomRotation90", {"times": (0, 3)}),
    "Rotate": ("RandomRotation", {}),
    "ToTensorV2": None,
}


def _kornia_class(name: str) -> type[nn.Module]:
    cls = getattr(K, name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(
            f"Unknown augmentation {name!r}.",
            hint=f"use a kornia.augmentation class name or one of {', '.join(SHORT_NAMES)}.",
        )
    return cls


def _build_one(item: Any) -> nn.Module | None:
    if isinstance(item, nn.Module):
        return item
    if isinstance(item, str):
        if item in SHORT_NAMES:
            name, args = SHORT_NAMES[item]
            return _kornia_class(name)(**args)
        return _kornia_class(item.rsplit(".", 1)[-1] if item.startswith("kornia.") else item)()
    if not isinstance(item, dict) or "class_path" not in item:
        raise ConfigError(f"Cannot read augmentation {item!r}: expected a name or {{class_path, init_args}}.")
    unknown = set(item) - {"class_path", "init_args"}
    if unknown:
        raise ConfigError(f"Augmentation {item['class_path']!r} has unknown keys {sorted(unknown)}.")
    path, init_args = str(item["class_path"]), dict(item.get("init_args") or {})
    if path.startswith(("albumentations.", "A.")):
        short = path.rsplit(".", 1)[-1]
        if short not in ALBUMENTATIONS:
            raise ConfigError(
                f"Albumentations transform {path!r} is not supported: geoft augments batches on the device with kornia.",
                hint="use the kornia.augmentation equivalent, e.g. kornia.augmentation.RandomHorizontalFlip.",
            )
        target = ALBUMENTATIONS[short]
        if target is None:
            return None
        name, defaults = target
        args = {k: v for k, v in init_args.items() if k == "p"}
        return _kornia_class(name)(**{**defaults, **args})
    try:
        cls = import_object(path)
    except (ImportError, ConfigError) as err:
        raise ConfigError(f"Cannot import augmentation {path!r}: {err}") from err
    try:
        return cls(**init_args)
    except TypeError as err:
        raise ConfigError(f"Bad init_args for augmentation {path!r}: {err}") from err


def build_augmentations(spec: Sequence[Any] | None) -> list[nn.Module]:
    """Turn a YAML list (names, ``{class_path, init_args}`` dicts or modules) into kornia modules."""
    if spec is None:
        return []
    if isinstance(spec, (str, dict, nn.Module)):
        spec = [spec]
    return [m for m in (_build_one(item) for item in spec) if m is not None]


class BatchTransform(nn.Module):
    """Normalise ``batch["image"]`` with per-band means/stds, then apply augmentations.

    Works on ``[B, C, H, W]`` and ``[B, C, T, H, W]`` images (time steps share one random draw).
    """

    def __init__(
        self,
        means: Sequence[float] | None,
        stds: Sequence[float] | None,
        augmentations: Sequence[nn.Module] = (),
        target: TaskKind | str = TaskKind.SEGMENTATION,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if (means is None) != (stds is None):
            raise ConfigError("give both means and stds, or neither.")
        if means is not None and stds is not None:
            if len(means) != len(stds):
                raise ConfigError(f"means has {len(means)} values but stds has {len(stds)}.")
            if any(s <= 0 for s in stds):
                raise ConfigError(f"stds must be positive; got {list(stds)}.")
        self.register_buffer(
            "means", None if means is None else torch.tensor(list(means), dtype=torch.float32)
        )
        self.register_buffer("stds", None if stds is None else torch.tensor(list(stds), dtype=torch.float32))
        self.target = TaskKind.parse(target, where="BatchTransform")
        self.ignore_index = ignore_index
        augs = list(augmentations)
        keys = ["input", "mask"] if self.target.pixelwise else ["input"]
        self.augment = K.AugmentationSequential(*augs, data_keys=keys) if augs else None

    def _view(self, values: Tensor, image: Tensor) -> Tensor:
        if image.shape[1] != values.numel():
            raise ConfigError(
                f"means/stds have {values.numel()} values but the images have {image.shape[1]} bands.",
                hint="give one mean and std per output band (or leave them out to compute them).",
            )
        return values.to(image.device).view(1, -1, *([1] * (image.ndim - 2)))

    def normalize(self, image: Tensor) -> Tensor:
        if self.means is None:
            return image
        return (image - self._view(self.means, image)) / self._view(self.stds, image)

    def denormalize(self, image: Tensor) -> Tensor:
        if self.means is None:
            return image
        return image * self._view(self.stds, image) + self._view(self.means, image)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        image = self.normalize(batch["image"].float())
        if self.augment is None:
            batch["image"] = image
            return batch
        shape5 = image.shape if image.ndim == 5 else None
        if shape5 is not None:
            image = image.reshape(shape5[0], shape5[1] * shape5[2], *shape5[3:])
        if "mask" in batch and self.target.pixelwise:
            image, batch["mask"] = self._augment_with_mask(image, batch["mask"])
        else:
            image = self.augment(image)
        if shape5 is not None:
            image = image.reshape(shape5[0], shape5[1], shape5[2], *image.shape[-2:])
        batch["image"] = image
        return batch

    def _augment_with_mask(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # Pixels coming from outside the image read 0 after a geometric transform; encode the
        # target so that 0 means "no data" and decode it back to ignore_index afterwards.
        assert self.augment is not None
        if self.target is TaskKind.SEGMENTATION:
            known = (
                mask != self.ignore_index
                if self.ignore_index is not None
                else torch.ones_like(mask, dtype=torch.bool)
            )
            encoded = torch.where(known, mask + 1, torch.zeros_like(mask)).float()[:, None]
            image, out = self.augment(image, encoded)
            out = out[:, 0].round().long()
            fill = self.ignore_index if self.ignore_index is not None else 0
            return image, torch.where(out > 0, out - 1, torch.full_like(out, fill))
        valid = torch.ones_like(mask)
        image, out = self.augment(image, torch.stack([mask.float(), valid.float()], dim=1))
        fill = float(self.ignore_index) if self.ignore_index is not None else float("nan")
        return image, torch.where(out[:, 1] > 0.5, out[:, 0], torch.full_like(out[:, 0], fill))
