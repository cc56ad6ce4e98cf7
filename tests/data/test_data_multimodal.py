"""GenericMultiModalDataModule on generated rasters: pairing by name, grids, resampling, missing modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geoft.datamodules import GenericMultiModalDataModule
from geoft.errors import DataError
from tests.data.conftest import write_tif

NAMES = ("zeta_1", "alpha_2", "mid_3", "beta_4")  # sort orders of the folders differ by design


def make_data(root: Path, names=NAMES, s1_pixel: float = 10.0, skip_s1: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        s2 = np.full((3, 16, 16), 100.0 * (i + 1), dtype=np.float32) + rng.random(
            (3, 16, 16), dtype=np.float32
        )
        write_tif(root / "S2" / f"{name}_S2Hand.tif", s2)
        if name not in skip_s1:
            size = int(160 / s1_pixel)
            s1 = np.full((2, size, size), -float(i + 1), dtype=np.float32)
            # a prefix differs from S2's so the folders sort in another order
            write_tif(root / "S1" / f"{name}_S1Hand.tif", s1, pixel=s1_pixel)
        write_tif(root / "label" / f"{name}_LabelHand.tif", np.full((16, 16), i % 2, dtype=np.uint8))
    return root


def datamodule(root: Path, **kwargs) -> GenericMultiModalDataModule:
    args = dict(
        modalities=["S2", "S1"],
        batch_size=2,
        num_classes=2,
        train_data_root={"S2": str(root / "S2"), "S1": str(root / "S1")},
        train_label_data_root=str(root / "label"),
        image_grep={"S2": "*_S2Hand.tif", "S1": "*_S1Hand.tif"},
        label_grep="*_LabelHand.tif",
        stats_cache_dir=str(root / "cache"),
    )
    args.update(kwargs)
    return GenericMultiModalDataModule(**args)


def test_pairs_by_name_stem_and_batches_a_modality_dict(tmp_path: Path) -> None:
    dm = datamodule(make_data(tmp_path))
    ds = dm.build_dataset("train")
    for i, name in enumerate(NAMES):
        sample = ds[[r.key for r in ds.samples].index(name)]
        assert sample["image"]["S2"].mean().floor() == 100 * (i + 1)
        assert float(sample["image"]["S1"].mean()) == -(i + 1)
    dm.setup("fit")
    assert set(dm.means) == {"S2", "S1"} and len(dm.means["S2"]) == 3 and len(dm.means["S1"]) == 2
    batch = dm.normalize(next(iter(dm.train_dataloader())))
    assert batch["image"]["S2"].shape == (2, 3, 16, 16) and batch["image"]["S1"].shape == (2, 2, 16, 16)
    assert batch["mask"].dtype == torch.int64


def test_concat_bands_gives_one_tensor_in_modality_order(tmp_path: Path) -> None:
    dm = datamodule(
        make_data(tmp_path),
        concat_bands=True,
        means={"S2": [0, 0, 0], "S1": [0, 0]},
        stds={"S2": [1, 1, 1], "S1": [1, 1]},
    )
    dm.setup("fit")
    batch = dm.normalize(next(iter(dm.train_dataloader())))
    assert batch["image"].shape == (2, 5, 16, 16)
    assert (batch["image"][:, 3:] < 0).all() and (batch["image"][:, :3] > 0).all()


def test_coarser_modality_is_resampled_onto_the_label_grid(tmp_path: Path) -> None:
    dm = datamodule(make_data(tmp_path, s1_pixel=20.0), resampling={"S1": "nearest"})
    sample = dm.build_dataset("train")[0]
    assert sample["image"]["S1"].shape == (2, 16, 16)


def test_grid_mismatch_names_both_files(tmp_path: Path) -> None:
    root = make_data(tmp_path)
    write_tif(
        root / "S1" / "mid_3_S1Hand.tif", np.zeros((2, 16, 16), np.float32), origin=(600000.0, 5000000.0)
    )
    with pytest.raises(DataError) as err:
        datamodule(root).build_dataset("train")
    assert "mid_3_S1Hand.tif" in str(err.value) and "mid_3_LabelHand.tif" in str(err.value)


def test_missing_modality_is_named_or_filled_when_allowed(tmp_path: Path) -> None:
    root = make_data(tmp_path, skip_s1=("alpha_2",))
    with pytest.raises(DataError) as err:
        datamodule(root).build_dataset("train")
    assert "alpha_2" in str(err.value) and "S1" in str(err.value)
    dm = datamodule(root, allow_missing_modalities=True)
    dm.setup("fit")
    ds = dm.train_dataset
    index = [r.key for r in ds.samples].index("alpha_2")
    batch = dm.normalize(dm.collate_fn([ds[index], ds[(index + 1) % 4]]))
    assert batch["present"]["S1"].tolist() == [False, True]
    assert (batch["image"]["S1"][0] == 0).all()


def test_modality_sampling_per_training_batch(tmp_path: Path) -> None:
    dm = datamodule(make_data(tmp_path), sample_num_modalities=1)
    dm.setup("fit")
    batch = dm.normalize(next(iter(dm.train_dataloader())), training=True)
    assert len(batch["image"]) == 1


def test_time_stacks_normalise_per_modality_and_a_different_date_count_is_named(tmp_path: Path) -> None:
    root = make_data(tmp_path)
    for i, name in enumerate(NAMES):  # S2 with two dates of three bands, time-major
        dates = 3 if name == "beta_4" else 2
        write_tif(root / "S2" / f"{name}_S2Hand.tif", np.full((3 * dates, 16, 16), float(i), np.float32))
    args = dict(expand_temporal_dimension=True, dataset_bands={"S2": ["B", "G", "R"], "S1": ["VV", "VH"]})
    with pytest.raises(DataError) as err:
        datamodule(root, **args).build_dataset("train")
    assert "beta_4_S2Hand.tif" in str(err.value) and "3 dates" in str(err.value)
    write_tif(root / "S2" / "beta_4_S2Hand.tif", np.full((6, 16, 16), 3.0, np.float32))
    dm = datamodule(root, **args)
    dm.setup("fit")
    batch = dm.normalize(next(iter(dm.train_dataloader())))
    assert batch["image"]["S2"].shape == (2, 3, 2, 16, 16)
    assert batch["image"]["S1"].shape == (2, 2, 1, 16, 16)
