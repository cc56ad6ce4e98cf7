"""Dates of samples: one file per date (time_grep), tags, dates files; temporal and location coords."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from geoft.datamodules import GenericNonGeoPixelwiseRegressionDataModule, GenericNonGeoSegmentationDataModule
from geoft.datasets.dates import TimeGrep, parse_date_text
from geoft.errors import ConfigError, DataError
from tests.data.conftest import write_tif

# day-month-year names: their sort order is not their date order
DATES = ("05012020", "10052020", "01032020")
ORIGIN = (500000.0, 5000000.0)


def series_data(
    root: Path, names=("a", "b"), dates=DATES, size: int = 16, bands: int = 2, tags: bool = False
) -> Path:
    """``root/img/<name>_<ddmmyyyy>.tif`` valued by day of year, and ``root/lbl/<name>_mask.tif``."""
    for i, name in enumerate(names):
        origin = (ORIGIN[0] + 1000 * i, ORIGIN[1])
        for text in dates:
            day = datetime.strptime(text, "%d%m%Y").timetuple().tm_yday
            path = root / "img" / (f"{name}_t{text}.tif" if tags else f"{name}_{text}.tif")
            write_tif(path, np.full((bands, size, size), float(day), np.float32), origin=origin)
            if tags:
                with rasterio.open(path, "r+") as dst:
                    dst.update_tags(
                        TIFFTAG_DATETIME=datetime.strptime(text, "%d%m%Y").strftime("%Y:%m:%d 10:00:00")
                    )
        write_tif(root / "lbl" / f"{name}_mask.tif", np.zeros((size, size), np.uint8), origin=origin)
    return root


def segmentation(root: Path, **kwargs) -> GenericNonGeoSegmentationDataModule:
    args = dict(
        train_data_root=root / "img",
        train_label_data_root=root / "lbl",
        img_grep="*.tif",
        label_grep="*_mask.tif",
        time_grep="{sample}_{date:%d%m%Y}.tif",
        num_classes=2,
        batch_size=2,
        drop_last=False,
        stats_cache_dir=str(root / "cache"),
    )
    args.update(kwargs)
    return GenericNonGeoSegmentationDataModule(**args)


def first_sample(dm) -> dict:
    dm.setup("fit")
    return dm.train_dataset[0]


def test_one_file_per_date_is_stacked_in_date_order_with_coords(tmp_path: Path) -> None:
    sample = first_sample(segmentation(series_data(tmp_path), use_metadata=True))
    assert sample["image"].shape == (2, 3, 16, 16)
    days = [5.0, 61.0, 131.0]  # 5 January, 1 March, 10 May 2020: by date, not by file name
    assert sample["image"][0, :, 0, 0].tolist() == days
    assert sample["temporal_coords"].tolist() == [[2020.0, d] for d in days]
    # the chip centre, 80 m east and south of the origin, in UTM 33N
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(
        ORIGIN[0] + 80, ORIGIN[1] - 80
    )
    assert sample["location_coords"].tolist() == pytest.approx([lat, lon], abs=1e-4)


def test_batches_carry_coords_only_with_use_metadata(tmp_path: Path) -> None:
    root = series_data(tmp_path)
    dm = segmentation(root, use_metadata=True)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 2, 3, 16, 16)
    assert batch["temporal_coords"].shape == (2, 3, 2) and batch["location_coords"].shape == (2, 2)
    assert "temporal_coords" not in first_sample(segmentation(root))


def test_regex_time_grep_and_regression_datamodule(tmp_path: Path) -> None:
    root = series_data(tmp_path)
    for name in ("a", "b"):  # pixel-wise regression targets
        write_tif(root / "lbl" / f"{name}_mask.tif", np.ones((16, 16), np.float32), origin=ORIGIN)
    dm = GenericNonGeoPixelwiseRegressionDataModule(
        train_data_root=root / "img",
        train_label_data_root=root / "lbl",
        img_grep="*.tif",
        label_grep="*_mask.tif",
        time_grep=r"(?P<sample>[a-z]+)_(?P<date>\d{8})\.tif",  # ddmmyyyy is not ISO: parsed how?
        use_metadata=True,
        stats_cache_dir=str(root / "cache"),
    )
    with pytest.raises(DataError, match=r"a_05012020\.tif.*'05012020' is not a date"):
        dm.setup("fit")
    for path in sorted((root / "img").glob("*.tif")):  # rename to yyyymmdd, which a regex date may be
        name, text = path.stem.split("_")
        path.rename(path.with_name(f"{name}_{text[4:]}{text[2:4]}{text[:2]}.tif"))
    dm.setup("fit")
    assert dm.train_dataset[0]["temporal_coords"][:, 1].tolist() == [5.0, 61.0, 131.0]


def test_dates_from_tags_when_the_pattern_has_none(tmp_path: Path) -> None:
    root = series_data(tmp_path, tags=True)
    sample = first_sample(segmentation(root, time_grep="{sample}_t*.tif", use_metadata=True))
    assert sample["temporal_coords"][:, 1].tolist() == [5.0, 61.0, 131.0]
    assert sample["image"][0, :, 0, 0].tolist() == [5.0, 61.0, 131.0]
    with rasterio.open(root / "img" / "b_t01032020.tif", "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="")
        # GDAL keeps an empty tag; a file without any date tag says which tags it looked for
    with pytest.raises(DataError, match=r"b_t01032020\.tif"):
        first_sample(segmentation(root, time_grep="{sample}_t*.tif", use_metadata=True))
    (root / "img" / "b_t01032020.tif").write_text("not a raster")  # said as such, not a raw traceback
    with pytest.raises(DataError, match=r"b_t01032020\.tif is not a readable raster"):
        first_sample(segmentation(root, time_grep="{sample}_t*.tif", use_metadata=True))


def test_single_date_files_take_their_date_from_tags(tmp_path: Path) -> None:
    root = series_data(tmp_path, dates=("01032020",), tags=True)
    sample = first_sample(segmentation(root, img_grep="*_t01032020.tif", time_grep=None, use_metadata=True))
    assert sample["image"].shape == (2, 16, 16)
    assert sample["temporal_coords"].tolist() == [[2020.0, 61.0]]


def test_time_stacks_take_dates_from_a_dates_file(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_tif(tmp_path / "img" / f"{name}.tif", np.zeros((4, 16, 16), np.float32), origin=ORIGIN)
        write_tif(tmp_path / "lbl" / f"{name}_mask.tif", np.zeros((16, 16), np.uint8), origin=ORIGIN)
    dates = tmp_path / "dates.csv"
    dates.write_text("sample,dates\na,2021-02-01;2021-03-01\nb,2021-02-02;2021-03-02\n")
    args = dict(time_grep=None, expand_temporal_dimension=True, dataset_bands=["R", "N"], use_metadata=True)
    sample = first_sample(segmentation(tmp_path, dates_file=dates, **args))
    assert sample["image"].shape == (2, 2, 16, 16)
    assert sample["temporal_coords"].tolist() == [[2021.0, 32.0], [2021.0, 60.0]]
    dates.write_text("a,2021-02-01;2021-03-01\nb,2021-02-02\n")
    with pytest.raises(DataError, match=r"'b'.*b\.tif holds 2 dates.*lists 1"):
        first_sample(segmentation(tmp_path, dates_file=dates, **args))
    with pytest.raises(DataError, match="dates_file"):  # without one, a stack's dates are unknown
        first_sample(segmentation(tmp_path, **args))


def test_bad_dates_are_named_before_training(tmp_path: Path) -> None:
    root = series_data(tmp_path)
    bad = write_tif(root / "img" / "b_32132020.tif", np.zeros((2, 16, 16), np.float32), origin=ORIGIN)
    with pytest.raises(DataError) as err:
        segmentation(root).setup("fit")
    assert str(bad) in str(err.value) and "'{sample}_{date:%d%m%Y}.tif'" in str(err.value)
    bad.unlink()
    extra = write_tif(root / "img" / "b_01062020.tif", np.zeros((2, 16, 16), np.float32), origin=ORIGIN)
    with pytest.raises(DataError) as err:  # b has 4 dates, a has 3
        segmentation(root).setup("fit")
    assert "Sample 'b'" in str(err.value) and "4 dates" in str(err.value) and str(extra) in str(err.value)
    extra.unlink()
    twin = write_tif(root / "img" / "a_05012020_v2.tif", np.zeros((2, 16, 16), np.float32), origin=ORIGIN)
    with pytest.raises(DataError) as err:
        segmentation(root, time_grep="{sample}_{date:%d%m%Y}*.tif").setup("fit")
    assert "Sample 'a'" in str(err.value) and "2020-01-05" in str(err.value) and str(twin) in str(err.value)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="needs {sample}"):
        TimeGrep.compile("{date:%Y%m%d}.tif")
    with pytest.raises(ConfigError, match="%Q"):
        TimeGrep.compile("{sample}_{date:%Q}.tif")
    with pytest.raises(ConfigError, match="exclude each other"):
        segmentation(Path("."), expand_temporal_dimension=True, dataset_bands=["R"]).build_dataset("train")


def test_date_texts() -> None:
    assert parse_date_text("2020:05:01 10:30:00") == datetime(2020, 5, 1, 10, 30)
    assert parse_date_text("2020-05-01T10:30:00Z") == datetime(2020, 5, 1, 10, 30)
    assert parse_date_text("2020122") == datetime(2020, 5, 1)
    assert parse_date_text("20200501") == datetime(2020, 5, 1)
    assert parse_date_text("May 2020") is None
    key, date = TimeGrep.compile("T*_{sample}_{date:%Y%j}.tif").key_and_date(Path("T33_x_1_2020122.tif"))
    assert (key, date) == ("x_1", datetime(2020, 5, 1))


@pytest.mark.real_data
def test_real_chips_locations_and_a_missing_date(real_data: Path) -> None:
    from geoft.datasets.dates import location_coords
    from geoft.datasets.raster import read_header

    hls = real_data / "hls_l30_chip_terratorch" / "hls_l30_texas_224.tif"  # EPSG:32614, south Texas
    info = read_header(hls)
    lat, lon = location_coords(info.crs, info.transform, info.shape, str(hls))
    assert 28.50 < lat < 28.56 and -99.61 < lon < -99.54
    s1 = real_data / "sen1floods11_sample" / "Spain_7370579_S1Hand.tif"
    info = read_header(s1)
    lat, lon = location_coords(info.crs, info.transform, info.shape, str(s1))
    assert 36 < lat < 44 and -10 < lon < 4  # Spain
    dm = GenericNonGeoSegmentationDataModule(predict_data_root=hls, num_classes=2, use_metadata=True)
    with pytest.raises(DataError, match=r"hls_l30_texas_224\.tif has no date tag"):
        dm.setup("predict")  # the chip has no date: said when the dataset is built
