"""Fuzz the arguments of the segmentation datamodule on a tiny valid dataset: a batch or a GeoftError."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets import generate_demo_dataset
from geoft.errors import ConfigError, GeoftError

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fuzz_dm") / "demo"
    info = generate_demo_dataset(root, n_train=3, n_val=1, n_test=0, size=16)
    args = info.datamodule_init_args()
    args["stats_cache_dir"] = str(root.parent / "stats")
    return args


band_names = st.sampled_from([*BANDS, "B99", "red", ""])
numbers = st.one_of(st.none(), st.lists(st.floats(-10, 3000, allow_nan=False), max_size=8))
# Each example breaks a few arguments of an otherwise valid call, so both outcomes are exercised.
JUNK: dict[str, st.SearchStrategy[Any]] = {
    "dataset_bands": st.one_of(
        st.none(),
        st.permutations(BANDS),
        st.lists(band_names, max_size=7),
        st.lists(st.integers(-2, 8), max_size=7),
    ),
    "output_bands": st.one_of(st.none(), st.lists(band_names, max_size=4)),
    "img_grep": st.sampled_from(["*", "*.png", "nothing_*", "[", "**/*.tif"]),
    "label_grep": st.sampled_from(["*", "*.jpg", "?"]),
    "means": numbers,
    "stds": numbers,
    "num_classes": st.integers(-1, 7),
    "batch_size": st.integers(-1, 5),
    "chip_size": st.one_of(st.none(), st.integers(-1, 40), st.lists(st.integers(-1, 40), max_size=3)),
    "pad_to_multiple": st.one_of(st.none(), st.integers(-1, 16)),
    "constant_scale": st.sampled_from([0.0001, 0.0, -1.0]),
    "rgb_indices": st.one_of(st.none(), st.lists(st.integers(-1, 8), max_size=4)),
    "ignore_index": st.one_of(st.none(), st.integers(-1, 300)),
    "no_data_replace": st.one_of(st.none(), st.floats(-5, 5)),
}


@pytest.mark.timeout(60)
@settings(
    max_examples=35,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(broken=st.lists(st.sampled_from(sorted(JUNK)), max_size=3, unique=True), data=st.data())
def test_datamodule_arguments(demo, broken, data):
    args = {**demo, "batch_size": 2, "class_names": None, "ignore_index": 255}
    for name in broken:
        args[name] = data.draw(JUNK[name], label=name)
    try:
        dm = GenericNonGeoSegmentationDataModule(**args)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
    except GeoftError as err:
        assert str(err).strip()
        return
    assert batch["image"].ndim == 4 and batch["image"].dtype == torch.float32
    assert batch["mask"].shape[0] == batch["image"].shape[0] <= args["batch_size"]


@pytest.mark.timeout(60)
def test_valid_arguments_give_a_batch(demo):
    dm = GenericNonGeoSegmentationDataModule(
        **{**demo, "batch_size": 2, "output_bands": ["RED", "NIR_NARROW"], "means": None, "stds": None}
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 2, 16, 16)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chip_size", [-1, 0, [], [8], [8, 8, 8], 3.5, [1.5, 2]])
def test_bad_chip_size_is_a_config_error(demo, chip_size):  # -1 and [] used to crash in numpy
    with pytest.raises(ConfigError, match="chip_size"):
        dm = GenericNonGeoSegmentationDataModule(**{**demo, "chip_size": chip_size, "ignore_index": 255})
        dm.setup("fit")
