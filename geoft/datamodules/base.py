"""Shared machinery of the generic datamodules: datasets per split, statistics, batch transforms.

Built on torchgeo's :class:`~torchgeo.datamodules.NonGeoDataModule`. Subclasses say which dataset
class to build; its arguments are the datamodule's of the same name plus the split's own
(:meth:`~GenericDataModuleBase.dataset_arguments`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import DataLoader, Dataset
from torchgeo.datamodules import NonGeoDataModule

from geoft.datamodules.arguments import passed_through
from geoft.datamodules.transforms import (
    AugmentingCollate,
    BatchTransform,
    build_augmentations,
    build_sample_augmentation,
)
from geoft.datasets.samples import collate_samples
from geoft.errors import ConfigError, DataError
from geoft.task_kinds import TaskKind

SPLITS = ("train", "val", "test", "predict")


def load_values(value: list[float] | tuple[float, ...] | str | Path | None, name: str) -> list[float] | None:
    """Means/stds given inline, or as a file (JSON/YAML list, or numbers separated by spaces/commas/lines)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{name} must be numbers, got {list(value)}.") from err
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{name}: {value!r} is neither a list of numbers nor an existing file.")
    text = path.read_text()
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, dict) and name in loaded:
        loaded = loaded[name]
    if isinstance(loaded, list):
        return load_values(loaded, name)
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError as err:
        raise ConfigError(f"{name} file {path} does not hold a list of numbers.") from err


def split_loader(
    datamodule: Any, dataset: Dataset, batch_size: int, split: str, augmentation: Any | None
) -> DataLoader:
    """The loader of a split: shuffled for training, per-sample ``augmentation`` (albumentations)
    before ``datamodule.collate_fn``, and the datamodule's workers, ``drop_last`` and ``pin_memory``."""
    drop_last = split == "train" and datamodule.drop_last
    if drop_last and len(dataset) < batch_size:  # type: ignore[arg-type]
        warnings.warn(
            f"The train split has {len(dataset)} samples, fewer than batch_size {batch_size}; "  # type: ignore[arg-type]
            "keeping the incomplete batch instead of dropping every sample.",
            stacklevel=3,
        )
        drop_last = False
    return DataLoader(
        dataset=dataset,
        batch_size=batch_size,
        shuffle=split == "train",
        num_workers=datamodule.num_workers,
        collate_fn=datamodule.collate_fn
        if augmentation is None
        else AugmentingCollate(augmentation, datamodule.collate_fn),
        drop_last=drop_last,
        pin_memory=datamodule.pin_memory,
        persistent_workers=datamodule.num_workers > 0,
    )


class GenericDataModuleBase(NonGeoDataModule):
    """Datasets per split, means/stds (given, cached or computed), mixed-size checks, batch transforms.

    Subclasses are dataclasses of the argument groups in :mod:`geoft.datamodules.arguments`
    (``LoaderArguments``, ``SplitArguments`` and ``RasterArguments`` at least) and name their
    ``dataset_class``.
    """

    target_kind: TaskKind = TaskKind.SEGMENTATION
    dataset_class: type[Dataset]
    ignore_index: int | None = None  # pixel-wise datamodules take it as an argument

    # the LoaderArguments fields, set by the dataclass __init__ before __post_init__ runs
    batch_size: int
    num_workers: int
    means: list[float] | None
    stds: list[float] | None
    train_transform: list[Any] | None
    val_transform: list[Any] | None
    test_transform: list[Any] | None
    drop_last: bool
    pin_memory: bool
    check_stackability: bool
    stats_cache_dir: str | None
    stats_max_samples: int | None
    data_check: str
    # and those of SplitArguments and RasterArguments that this class reads
    img_grep: str
    dataset_bands: list[Any] | None
    output_bands: list[Any] | None
    predict_dataset_bands: list[Any] | None
    predict_output_bands: list[Any] | None
    temporal_order: str

    def __post_init__(self) -> None:
        super().__init__(type(self).dataset_class, self.batch_size, self.num_workers)  # type: ignore[arg-type]
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {self.batch_size}.")
        self.means = load_values(self.means, "means")
        self.stds = load_values(self.stds, "stds")
        if (self.means is None) != (self.stds is None):
            raise ConfigError(
                "give both means and stds, or neither (then they are computed from the training data)."
            )
        self.stats_source = "given" if self.means is not None else None
        self.collate_fn = collate_samples
        self._augmentations = {
            "train": build_augmentations(self.train_transform),
            "val": build_augmentations(self.val_transform),
            "test": build_augmentations(self.test_transform),
            "predict": [],  # predictions keep their geometry, so the map stays right
        }
        self._sample_augmentations = {
            "train": build_sample_augmentation(self.train_transform),
            "val": build_sample_augmentation(self.val_transform),
            "test": build_sample_augmentation(self.test_transform),
            "predict": None,
        }
        self._batch_transforms: dict[str, BatchTransform] = {}
        self.predict_dataset_bands = self.predict_dataset_bands or self.dataset_bands
        self.predict_output_bands = self.predict_output_bands or self.output_bands
        if self.temporal_order not in ("channel_major", "time_major"):
            raise ConfigError(
                f"temporal_order must be 'channel_major' or 'time_major', not {self.temporal_order!r}."
            )

    # -- subclass hooks --------------------------------------------------------------------------
    def data_root(self, split: str) -> Any:
        """The configured data root of a split (None when the split is not configured)."""
        return getattr(self, f"{split}_data_root")

    def check_roots(self) -> None:
        if all(self.data_root(s) is None for s in SPLITS):
            raise ConfigError(
                "No data root is configured: set train_data_root (and val/test) or predict_data_root."
            )

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        """The dataset's arguments for ``split``: those it shares by name with the datamodule, and the
        split's own (root, split file, bands for prediction)."""
        predict = split == "predict"
        args = passed_through(self, self.dataset_class)
        args.update(
            data_root=self.data_root(split),
            image_grep=self.img_grep,
            split=None if predict else getattr(self, f"{split}_split"),
            with_labels=not predict,
        )
        if predict:
            args.update(
                dataset_bands=self.predict_dataset_bands,
                output_bands=self.predict_output_bands,
            )
        return args

    # -- datasets --------------------------------------------------------------------------------
    def build_dataset(self, split: str, strict: bool = True) -> Any:
        """The dataset of a split (``train``, ``val``, ``test`` or ``predict``)."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, not {split!r}.")
        if self.data_root(split) is None:
            raise ConfigError(f"No {split}_data_root is configured, so there is no {split} dataset.")
        return self.dataset_class(**self.dataset_arguments(split), strict=strict, name=split)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.train_dataset = self.build_dataset("train")
            self.val_dataset = self.build_dataset("val") if self.data_root("val") is not None else None
            self.run_data_check({"train": self.train_dataset, "val": self.val_dataset})
            self.statistics()
            self.check_statistics_length(self.train_dataset, "train")
        elif stage == "validate":
            self.val_dataset = self.build_dataset("val")
            self.run_data_check({"val": self.val_dataset})
            self.check_statistics_length(self.val_dataset, "val")
        elif stage == "test":
            self.test_dataset = self.build_dataset("test")
            self.run_data_check({"test": self.test_dataset})
            self.check_statistics_length(self.test_dataset, "test")
        elif stage == "predict":
            self.predict_dataset = self.build_dataset("predict")
            self.check_statistics_length(self.predict_dataset, "predict")

    def run_data_check(self, datasets: dict[str, Any]) -> None:
        """The full data check (``data_check: full``): refuse to start, listing every problem of every
        split in use. Each DDP rank runs it; after the first, the per-file cache makes it free.

        When the training statistics are still to be computed, the check's read of each training
        file computes them too (one read of the files instead of two)."""
        if self.data_check != "full":
            return
        from geoft.datasets.data_check import check_dataset_files, check_with_statistics
        from geoft.datasets.validation import format_problems

        problems = []
        for split, dataset in datasets.items():
            if dataset is None:
                continue
            if split == "train" and self.means is None:
                found, measured = check_with_statistics(
                    dataset, split, self.stats_cache_dir, self.stats_max_samples
                )
                if measured is not None:
                    self.use_statistics(*measured)
                problems += found
            else:
                problems += check_dataset_files(dataset, split, self.stats_cache_dir)[0]
        if any(p.severity == "error" for p in problems):
            raise DataError(
                "The data check found problems before the first step:\n" + format_problems(problems),
                hint="fix or remove the files named above (geoft validate-data -c CONFIG lists the same), "
                "or set data.init_args.data_check: headers to skip reading the pixels.",
            )

    def check_statistics_length(self, dataset: Any, split: str) -> None:
        """Given means/stds must have one value per output band (checked from a header, early)."""
        if self.means is None or not dataset.samples:
            return
        channels = dataset.reader.num_channels()
        if channels is None:
            from geoft.datasets.raster import read_header

            channels = read_header(dataset.samples[0].image).count
        if channels != len(self.means):
            raise ConfigError(
                f"means/stds have {len(self.means)} values but the {split} images have {channels} output bands.",
                hint="give one mean and std per output band, or leave them out to compute them from the training data.",
            )

    # -- statistics ------------------------------------------------------------------------------
    def statistics(self) -> tuple[list[float], list[float]]:
        """Means and stds: given, restored from a checkpoint, or computed from the training split (cached)."""
        if self.means is None or self.stds is None:
            if self.data_root("train") is None:
                raise ConfigError(
                    "means and stds are not given and there is no train_data_root to compute them from.",
                    hint="give means/stds, or load a checkpoint trained by geoft (it stores them).",
                )
            from geoft.datasets.statistics import cached_statistics

            train = self.train_dataset if self.train_dataset is not None else self.build_dataset("train")
            self.use_statistics(*cached_statistics(train, self.stats_cache_dir, self.stats_max_samples))
        return self.means, self.stds

    def use_statistics(self, stats: Any, path: Path) -> None:
        """Normalise with computed :class:`~geoft.datasets.statistics.DatasetStatistics` (cached in ``path``)."""
        self.means, self.stds = stats.means, [s if s > 0 else 1.0 for s in stats.stds]
        self.stats_source = str(path)

    def batch_transform(self, split: str) -> BatchTransform:
        if split not in self._batch_transforms:
            means, stds = self.statistics()
            self._batch_transforms[split] = BatchTransform(
                means, stds, self._augmentations[split], self.target_kind, self.ignore_index
            )
        return self._batch_transforms[split]

    def state_dict(self) -> dict[str, Any]:
        return {"means": self.means, "stds": self.stds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.means is None and state_dict.get("means") is not None:
            self.means, self.stds = list(state_dict["means"]), list(state_dict["stds"])
            self.stats_source = "checkpoint"
            self._batch_transforms.clear()

    # -- loaders ---------------------------------------------------------------------------------
    def check_sizes(self, dataset: Any, batch_size: int, split: str) -> None:
        """Mixed chip sizes cannot be batched: say so from the headers, before any loading."""
        shapes = dataset.shapes()
        if len(shapes) <= 1 or batch_size == 1 or not self.check_stackability:
            return
        parts = [
            f"{h}x{w}: {len(files)} (e.g. {Path(files[0]).name})" for (h, w), files in sorted(shapes.items())
        ]
        raise DataError(
            f"The {split} images have {len(shapes)} different sizes, so they cannot be batched: "
            + "; ".join(parts),
            hint="set chip_size (centre crop/pad to one size), pad_to_multiple, or batch_size: 1.",
        )

    def _dataloader_factory(self, split: str) -> DataLoader:
        if getattr(self, f"{split}_dataset") is None and self.data_root(split) is None:
            raise ConfigError(
                f"The {split} dataloader was requested but no {split}_data_root is configured.",
                hint=f"set {split}_data_root"
                + (
                    " (or trainer limit_val_batches: 0 to train without validation)."
                    if split == "val"
                    else "."
                ),
            )
        dataset = self._valid_attribute(f"{split}_dataset", "dataset")
        batch_size = self._valid_attribute(f"{split}_batch_size", "batch_size")
        self.check_sizes(dataset, batch_size, split)
        return split_loader(self, dataset, batch_size, split, self._sample_augmentations[split])

    def _current_split(self) -> str:
        trainer = self.trainer
        if trainer is None:
            return "val"
        if trainer.training:
            return "train"
        if trainer.testing:
            return "test"
        if trainer.predicting:
            return "predict"
        return "val"

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Normalise and augment the batch on the device it was moved to."""
        return self.batch_transform(self._current_split())(batch)

    def describe(self) -> dict[str, Any]:
        """What the datamodule knows, for logs and the app (JSON-serialisable)."""
        return json.loads(
            json.dumps(
                {
                    "class": type(self).__name__,
                    "batch_size": self.batch_size,
                    "means": self.means,
                    "stds": self.stds,
                    "stats_source": self.stats_source,
                    "ignore_index": self.ignore_index,
                    "num_classes": getattr(self, "num_classes", None),
                    "class_names": getattr(self, "class_names", None),
                    "output_bands": getattr(self, "output_bands", None)
                    or getattr(self, "dataset_bands", None),
                },
                default=str,
            )
        )
