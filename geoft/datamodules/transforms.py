"""Batch transforms: normalisation and kornia augmentation of image and mask together, on the device.

Augmentations come from YAML as a list whose items are

* a short name: ``hflip``, ``vflip``, ``rot90``, ``rotate``, ``crop``, or any class of
  ``kornia.augmentation`` (``RandomHorizontalFlip``);
* ``{class_path: kornia.augmentation.RandomRotation, init_args: {degrees: 30}}``;
* any albumentations transform (``{class_path: albumentations.Rotate, init_args: {limit: 30}}``):
  these run per sample, before normalisation, exactly as the reference runs them (measured in
  ``benchmarks/augmentation_albumentations.py``: a kornia translation is not pixel-equal for rotations
  and borders); ``ToTensorV2`` and the reference's temporal flatten/unflatten markers are no-ops
  (samples are tensors, and time steps are folded into channels for albumentations anyway).

Geometric transforms apply identically to image and mask; masks use nearest neighbour, and pixels
that come from outside the image (rotation corners, padding) get ``ignore_index``.
"""

from __future__ import annotations

import difflib
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
# Items that need no work here: samples are tensors already, and time steps are folded into channels.
NO_OPS = (
    "ToTensorV2",
    "FlattenTemporalIntoChannels",
    "UnflattenTemporalFromChannels",
    "FlattenSamplesIntoChannels",
    "UnflattenSamplesFromChannels",
)


class FlattenTemporalIntoChannels:
    """The reference's marker around albumentations on time series; geoft folds time into channels itself."""


class UnflattenTemporalFromChannels(FlattenTemporalIntoChannels):
    """See :class:`FlattenTemporalIntoChannels`."""


FlattenSamplesIntoChannels = FlattenTemporalIntoChannels
UnflattenSamplesFromChannels = UnflattenTemporalFromChannels


def _kornia_class(name: str) -> type[nn.Module]:
    cls = getattr(K, name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(
            f"Unknown augmentation {name!r}.",
            hint=f"use a kornia.augmentation class name or one of {', '.join(SHORT_NAMES)}.",
        )
    return cls


def _is_albumentations(path: str) -> bool:
    return path.startswith(("albumentations.", "A.")) or path in NO_OPS or path.rpartition(".")[2] in NO_OPS


def _albumentations_1_flip(A: Any, p: float) -> Any:
    """albumentations 1.x ``Flip`` (removed in 2.0): horizontal, vertical or both, each a third of the time."""
    both = A.Sequential([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=1.0)
    return A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0), both], p=p)


def _albumentations_transform(path: str, init_args: dict[str, Any]) -> Any | None:
    """One albumentations transform from its config name, or None for the no-op markers."""
    short = path.rpartition(".")[2]
    if short in NO_OPS:
        return None
    try:
        import albumentations as A
    except ImportError as err:
        raise ConfigError(
            f"augmentation {path!r} needs albumentations", hint="pip install albumentations"
        ) from err
    if short == "Flip" and not hasattr(A, "Flip"):
        return _albumentations_1_flip(A, float(init_args.get("p", 0.5)))
    cls = getattr(A, short, None)
    if cls is None and not path.startswith("A."):
        try:
            cls = import_object(path)
        except (ImportError, ConfigError):
            cls = None
    if not isinstance(cls, type):
        names = [n for n in dir(A) if n[:1].isupper()]
        close = difflib.get_close_matches(short, names, n=3, cutoff=0.6)
        raise ConfigError(
            f"Unknown augmentation {path!r}: albumentations has no transform {short!r}.",
            hint=f"did you mean {', '.join(close)}?" if close else "see https://albumentations.ai/docs/",
        )
    from geoft.config.checks import check_keys

    check_keys(list(init_args), cls, f"augmentation {path}")
    try:
        return cls(**init_args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Bad init_args for augmentation {path!r}: {str(err).splitlines()[0]}") from err


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
    try:
        cls = import_object(path)
    except (ImportError, ConfigError) as err:
        raise ConfigError(f"Cannot import augmentation {path!r}: {err}") from err
    try:
        return cls(**init_args)
    except TypeError as err:
        raise ConfigError(f"Bad init_args for augmentation {path!r}: {err}") from err


def _split(spec: Sequence[Any] | None) -> tuple[list[Any], list[Any]]:
    """(albumentations items, batch items) of a transform list."""
    if spec is None:
        return [], []
    if isinstance(spec, (str, dict, nn.Module)):
        spec = [spec]
    sample: list[Any] = []
    batch: list[Any] = []
    for item in spec:
        if isinstance(item, dict):
            path = item.get("class_path")
        elif isinstance(item, str):
            path = item
        else:  # jsonargparse may hand over instances it built from {class_path, init_args}
            path = f"{type(item).__module__}.{type(item).__name__}"
        if isinstance(path, str) and _is_albumentations(path):
            sample.append(item)
        else:
            batch.append(item)
    return sample, batch


def build_augmentations(spec: Sequence[Any] | None) -> list[nn.Module]:
    """The batch (kornia) part of a YAML transform list; albumentations items go to
    :func:`build_sample_augmentation`."""
    return [m for m in (_build_one(item) for item in _split(spec)[1]) if m is not None]


class SampleAugmentation:
    """Albumentations transforms applied to each sample as the reference does (image and mask together).

    Images ``[C, H, W]`` (or ``[C, T, H, W]``, time folded into channels so every step moves alike)
    become ``H x W x C`` float32 arrays; masks keep their values (nearest-neighbour for geometry).
    """

    def __init__(self, transforms: list[Any]) -> None:
        import albumentations as A

        self.transforms = transforms
        self.compose = A.Compose(transforms)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image: Tensor = sample["image"]
        shape = image.shape
        array = image.reshape(-1, *shape[-2:]).permute(1, 2, 0).numpy().astype("float32", copy=False)
        inputs: dict[str, Any] = {"image": array}
        mask = sample.get("mask")
        if isinstance(mask, Tensor):
            inputs["mask"] = mask.numpy().astype("float32", copy=False)
        out = self.compose(**inputs)
        result = torch.from_numpy(out["image"]).permute(2, 0, 1).contiguous()
        sample = dict(sample)
        sample["image"] = result.reshape(*shape[:-2], *result.shape[-2:]).to(image.dtype)
        if isinstance(mask, Tensor):
            sample["mask"] = torch.from_numpy(out["mask"]).to(mask.dtype)
        return sample

    def __repr__(self) -> str:
        return f"SampleAugmentation({self.transforms})"


def build_sample_augmentation(spec: Sequence[Any] | None) -> SampleAugmentation | None:
    """The albumentations part of a YAML transform list (None when it has none)."""
    built = []
    for item in _split(spec)[0]:
        if not isinstance(item, (dict, str)):
            if type(item).__name__ not in NO_OPS:
                built.append(item)
            continue
        path = item["class_path"] if isinstance(item, dict) else item
        args = dict(item.get("init_args") or {}) if isinstance(item, dict) else {}
        transform = _albumentations_transform(str(path), args)
        if transform is not None:
            built.append(transform)
    return SampleAugmentation(built) if built else None


class AugmentingCollate:
    """Collate after a per-sample augmentation (runs in the loader's workers, like the reference)."""

    def __init__(self, augmentation: SampleAugmentation, collate: Any) -> None:
        self.augmentation = augmentation
        self.collate = collate

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collate([self.augmentation(s) for s in samples])


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
