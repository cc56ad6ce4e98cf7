"""``GenericMultiModalDataModule``: several modalities per sample, the reference's (TerraTorch's) arguments.

Batches carry ``image`` as ``{modality: [B, C, H, W]}`` (what multimodal backbones such as TerraMind and
geoft's late-fusion encoder take) or, with ``concat_bands: true``, one tensor of the modalities' bands in
the order of ``modalities`` (for single-modal backbones, e.g. Prithvi on S2 then S1 bands). Means and
stds are per modality: given, or computed from the training split and cached, one cache per modality.
"""

# No ``from __future__ import annotations``: jsonargparse reads the dataclass field types as objects.
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchgeo.datamodules import NonGeoDataModule

from geoft.datamodules.base import split_loader
from geoft.datamodules.transforms import (
    SampleAugmentation,
    build_augmentations,
    build_sample_augmentation,
)
from geoft.datasets.multimodal import GenericMultimodalDataset, MultiModalTask, Resampling
from geoft.datasets.samples import collate_samples
from geoft.errors import ConfigError

SPLITS = ("train", "val", "test", "predict")


def collate_multimodal(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack each modality's images, and ``present`` as one bool tensor ``[B]`` per modality."""
    images = {m: torch.stack([s["image"][m] for s in samples]) for m in samples[0]["image"]}
    present = {m: torch.tensor([s["present"][m] for s in samples]) for m in samples[0]["present"]}
    rest = collate_samples([{k: v for k, v in s.items() if k not in ("image", "present")} for s in samples])
    return {"image": images, "present": present, **rest}


class SharedAugmentation:
    """Albumentations on all modalities of a sample at once (same crop, flip...) and its mask.

    The modalities lie on the label grid, so their bands are stacked, augmented as one image and split.
    """

    def __init__(self, augmentation: SampleAugmentation) -> None:
        self.augmentation = augmentation

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        images: dict[str, torch.Tensor] = sample["image"]
        flat = {m: x.reshape(-1, *x.shape[-2:]) for m, x in images.items()}
        out = self.augmentation({**sample, "image": torch.cat(list(flat.values()))})
        parts = torch.split(out["image"], [x.shape[0] for x in flat.values()])
        size = out["image"].shape[-2:]
        out["image"] = {m: p.reshape(*images[m].shape[:-2], *size) for m, p in zip(flat, parts, strict=True)}
        return out


@dataclass(eq=False, repr=False, kw_only=True)
class GenericMultiModalDataModule(NonGeoDataModule):
    """Several modalities paired by name stem, with one label raster (pixel-wise tasks) or one labels
    file (image-level tasks).

    Args:
        modalities: the modality names, e.g. ``[S2L2A, S1GRD]``; their order is the order of ``concat_bands``.
        batch_size: samples per batch.
        num_workers: data loading worker processes.
        task: ``segmentation`` or ``regression`` (pixel-wise), ``classification`` or
            ``scalar_regression`` (image-level, from a labels file).
        num_classes: segmentation or classification classes.
        num_outputs: scalar regression: values per sample.
        train_data_root: ``{modality: folder}`` of the training split (likewise val/test/predict).
        val_data_root: see ``train_data_root``.
        test_data_root: see ``train_data_root``.
        predict_data_root: see ``train_data_root``; no labels needed.
        train_label_data_root: label folder of the training split (likewise val/test); for the
            image-level tasks a labels file of ``sample,label`` rows.
        val_label_data_root: see ``train_label_data_root``.
        test_label_data_root: see ``train_label_data_root``.
        image_grep: ``{modality: glob}``; files pair by the part the wildcards match.
        label_grep: glob of the labels.
        train_split: text file of sample names (likewise val/test).
        val_split: see ``train_split``.
        test_split: see ``train_split``.
        allow_substring_file_names: a split name may match part of a file name.
        means: ``{modality: [one per output band]}``; None = computed per modality and cached.
        stds: ``{modality: [...]}``, given with ``means`` or not at all.
        dataset_bands: ``{modality: [band names]}``.
        output_bands: ``{modality: [band names]}`` to keep, in order.
        constant_scale: ``{modality: factor}``.
        no_data_replace: value for image nodata/NaN.
        no_label_replace: value for label nodata/NaN (default: ``ignore_index``).
        ignore_index: label value ignored by losses and metrics.
        expand_temporal_dimension: files stack time steps; images become ``[C, T, H, W]``.
        time_grep: ``{modality: pattern}``, one file per date, e.g. ``"{sample}_S2_{date:%Y%m%d}.tif"``
            (or a regex with groups ``sample`` and ``date``); the files found with ``image_grep`` group
            by sample into ``[C, T, H, W]``, ordered by date. The dated modalities of a sample must
            have the same dates. Without a date field the dates come from the files' tags.
        dates_file: ``{modality: file}`` of ``sample,date[,date...]`` rows: the dates of time stacks.
        use_metadata: batches carry ``temporal_coords`` ``[B, T, 2]`` (year, day of year) and
            ``location_coords`` ``[B, 2]`` (latitude, longitude of the chip centre).
        resampling: ``{modality: nearest|bilinear}`` onto the label grid (default bilinear).
        concat_bands: one image tensor of all modalities' bands (single-modal backbones).
        allow_missing_modalities: keep samples lacking some modalities (filled with zeros after
            normalisation; ``batch["present"]`` says which were there).
        sample_num_modalities: training batches keep this many modalities, drawn per batch.
        sample_replace: draw those modalities with replacement (as the reference).
        class_names: names of the classes.
        drop_last: drop the last incomplete training batch.
        pin_memory: pinned host memory.
        stats_cache_dir: where computed statistics go when a data folder is read-only.
        stats_max_samples: compute statistics from at most this many training samples.
        train_transform: albumentations items applied to every modality and the mask alike (same crop);
            likewise ``val_transform``/``test_transform``.
        val_transform: see ``train_transform``.
        test_transform: see ``train_transform``.
    """

    modalities: list[str]
    batch_size: int = 8
    num_workers: int = 0
    task: MultiModalTask = "segmentation"
    num_classes: int | None = None
    num_outputs: int = 1
    train_data_root: dict[str, str] | None = None
    val_data_root: dict[str, str] | None = None
    test_data_root: dict[str, str] | None = None
    predict_data_root: dict[str, str] | None = None
    train_label_data_root: str | None = None
    val_label_data_root: str | None = None
    test_label_data_root: str | None = None
    image_grep: dict[str, str] | None = None
    label_grep: str = "*"
    train_split: str | None = None
    val_split: str | None = None
    test_split: str | None = None
    allow_substring_file_names: bool = True
    means: dict[str, list[float]] | None = None
    stds: dict[str, list[float]] | None = None
    dataset_bands: dict[str, list[str | int]] | None = None
    output_bands: dict[str, list[str | int]] | None = None
    constant_scale: dict[str, float] | None = None
    no_data_replace: float | None = None
    no_label_replace: float | None = None
    ignore_index: int | None = None
    expand_temporal_dimension: bool = False
    time_grep: dict[str, str] | None = None
    dates_file: dict[str, str] | None = None
    use_metadata: bool = False
    resampling: dict[str, Resampling] | None = None
    concat_bands: bool = False
    allow_missing_modalities: bool = False
    sample_num_modalities: int | None = None
    sample_replace: bool = False
    class_names: list[str] | None = None
    drop_last: bool = True
    pin_memory: bool = False
    stats_cache_dir: str | None = None
    stats_max_samples: int | None = None
    train_transform: list[Any] | None = None
    val_transform: list[Any] | None = None
    test_transform: list[Any] | None = None

    def __post_init__(self) -> None:
        super().__init__(GenericMultimodalDataset, self.batch_size, self.num_workers)  # type: ignore[arg-type]
        if (self.means is None) != (self.stds is None):
            raise ConfigError("give both means and stds (per modality), or neither.")
        for name in ("means", "stds"):
            given = getattr(self, name)
            if given is not None and sorted(given) != sorted(self.modalities):
                raise ConfigError(
                    f"{name} has modalities {sorted(given)}, but modalities are {self.modalities}."
                )
        if self.task in ("segmentation", "classification") and self.num_classes is None:
            raise ConfigError(f"task {self.task!r} needs num_classes.")
        if self.sample_num_modalities is not None and self.concat_bands:
            raise ConfigError("sample_num_modalities drops modalities, which concat_bands cannot do.")
        if all(getattr(self, f"{s}_data_root") is None for s in SPLITS):
            raise ConfigError(
                "No data root is configured: set train_data_root (and val/test) or predict_data_root."
            )
        self.collate_fn = collate_multimodal
        self._augmentations: dict[str, SharedAugmentation | None] = {"predict": None}
        for split in ("train", "val", "test"):
            spec = getattr(self, f"{split}_transform")
            if build_augmentations(spec):
                raise ConfigError(
                    f"{split}_transform of GenericMultiModalDataModule: only albumentations items are "
                    "supported (they move all modalities alike); batch (kornia) transforms are not"
                )
            built = build_sample_augmentation(spec)
            self._augmentations[split] = SharedAugmentation(built) if built else None
        self.stats_source = "given" if self.means is not None else None

    # -- datasets --------------------------------------------------------------------------------
    def build_dataset(self, split: str, strict: bool = True) -> GenericMultimodalDataset:
        root = getattr(self, f"{split}_data_root")
        if root is None:
            raise ConfigError(f"No {split}_data_root is configured, so there is no {split} dataset.")
        predict = split == "predict"
        return GenericMultimodalDataset(
            data_root=root,
            modalities=self.modalities,
            label_data_root=None if predict else getattr(self, f"{split}_label_data_root"),
            image_grep=self.image_grep,
            label_grep=self.label_grep,
            split=None if predict else getattr(self, f"{split}_split"),
            allow_substring_file_names=self.allow_substring_file_names,
            dataset_bands=self.dataset_bands,
            output_bands=self.output_bands,
            constant_scale=self.constant_scale,
            no_data_replace=self.no_data_replace,
            expand_temporal_dimension=self.expand_temporal_dimension,
            resampling=self.resampling,
            allow_missing_modalities=self.allow_missing_modalities,
            task=self.task,
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            no_label_replace=self.no_label_replace,
            class_names=self.class_names,
            num_outputs=self.num_outputs,
            time_grep=self.time_grep,
            dates_file=self.dates_file,
            use_metadata=self.use_metadata,
            strict=strict,
            name=split,
        )

    def setup(self, stage: str) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}
        for split in wanted[stage]:
            if getattr(self, f"{split}_data_root") is not None:
                dataset = self.build_dataset(split)
                setattr(self, f"{split}_dataset", dataset)
                if self.class_names is None and dataset.labels is not None:
                    self.class_names = dataset.labels.class_names  # named in the labels file
        if stage == "fit":
            self.statistics()

    # -- statistics ------------------------------------------------------------------------------
    def statistics(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Per-modality means and stds: given, from a checkpoint, or computed (and cached) per modality."""
        if self.means is not None and self.stds is not None:
            return self.means, self.stds
        if self.train_data_root is None:
            raise ConfigError(
                "means and stds are not given and there is no train_data_root to compute them from."
            )
        from geoft.datasets.regression import GenericNonGeoPixelwiseRegressionDataset
        from geoft.datasets.statistics import cached_statistics

        means, stds, sources = {}, {}, []
        for m in self.modalities:
            # the modality alone, as a single-modal image dataset: statistics and their cache as for one sensor
            images = GenericNonGeoPixelwiseRegressionDataset(
                self.train_data_root[m],
                image_grep=(self.image_grep or {}).get(m, "*"),
                split=self.train_split,
                allow_substring_split_file=self.allow_substring_file_names,
                dataset_bands=(self.dataset_bands or {}).get(m),
                output_bands=(self.output_bands or {}).get(m),
                constant_scale=(self.constant_scale or {}).get(m, 1.0),
                no_data_replace=self.no_data_replace,
                expand_temporal_dimension=self.expand_temporal_dimension,
                time_grep=(self.time_grep or {}).get(m),
                with_labels=False,
                name=f"train {m}",
            )
            stats, path = cached_statistics(images, self.stats_cache_dir, self.stats_max_samples)
            means[m], stds[m] = stats.means, [s if s > 0 else 1.0 for s in stats.stds]
            sources.append(str(path))
        self.means, self.stds = means, stds
        self.stats_source = ", ".join(sources)
        return means, stds

    def state_dict(self) -> dict[str, Any]:
        return {"means": self.means, "stds": self.stds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.means is None and state_dict.get("means") is not None:
            self.means, self.stds = dict(state_dict["means"]), dict(state_dict["stds"])
            self.stats_source = "checkpoint"

    # -- batches ---------------------------------------------------------------------------------
    def _dataloader_factory(self, split: str) -> DataLoader:
        dataset = self._valid_attribute(f"{split}_dataset", "dataset")
        batch_size = self._valid_attribute(f"{split}_batch_size", "batch_size")
        return split_loader(self, dataset, batch_size, split, self._augmentations[split])

    def normalize(self, batch: dict[str, Any], training: bool = False) -> dict[str, Any]:
        """Normalise each modality; zero the missing ones; sample modalities (training); concatenate."""
        means, stds = self.statistics()
        images: dict[str, torch.Tensor] = {}
        for m, image in batch["image"].items():
            shape = (1, -1, *([1] * (image.ndim - 2)))
            mean = torch.tensor(means[m], dtype=torch.float32, device=image.device).view(shape)
            std = torch.tensor(stds[m], dtype=torch.float32, device=image.device).view(shape)
            if mean.numel() != image.shape[1]:
                raise ConfigError(
                    f"means/stds of {m!r} have {mean.numel()} values but its images have {image.shape[1]} bands."
                )
            present = batch["present"][m].to(image.device).view(-1, *([1] * (image.ndim - 1)))
            images[m] = torch.where(
                present, (image.float() - mean) / std, torch.zeros((), device=image.device)
            )
        if training and self.sample_num_modalities is not None:
            kept = (
                random.choices(self.modalities, k=self.sample_num_modalities)
                if self.sample_replace
                else (random.sample(self.modalities, self.sample_num_modalities))
            )
            images = {m: images[m] for m in self.modalities if m in kept}
        batch["image"] = (
            torch.cat([images[m] for m in self.modalities], dim=1) if self.concat_bands else images
        )
        return batch

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        training = self.trainer is not None and self.trainer.training
        return self.normalize(batch, training)

    def describe(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "modalities": list(self.modalities),
            "concat_bands": self.concat_bands,
            "batch_size": self.batch_size,
            "means": self.means,
            "stds": self.stds,
            "stats_source": self.stats_source,
            "ignore_index": self.ignore_index,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "data_roots": {
                s: {m: str(Path(p)) for m, p in (getattr(self, f"{s}_data_root") or {}).items()}
                for s in SPLITS
            },
        }
