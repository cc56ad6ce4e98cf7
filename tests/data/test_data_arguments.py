"""The datamodules' flat arguments are declared once and reach jsonargparse: ``--help``, types, validation."""

from __future__ import annotations

import inspect

import pytest

from geoft.cli import main
from geoft.datamodules import (
    GenericNonGeoClassificationDataModule,
    GenericNonGeoPixelwiseRegressionDataModule,
    GenericNonGeoSegmentationDataModule,
)

SHARED = (
    "batch_size",
    "train_data_root",
    "img_grep",
    "dataset_bands",
    "temporal_order",
    "chip_size",
    "means",
)


def _help(capsys: pytest.CaptureFixture[str], class_path: str) -> str:
    assert main(["fit", "--data.help", class_path]) == 0
    return " ".join(capsys.readouterr().out.split())  # the wrapping follows the terminal's width


@pytest.mark.parametrize(
    "class_path, own",
    [
        ("geoft.datamodules.GenericNonGeoSegmentationDataModule", ("num_classes", "reduce_zero_label")),
        ("geoft.datamodules.GenericNonGeoPixelwiseRegressionDataModule", ("no_label_replace", "label_grep")),
        ("geoft.datamodules.GenericNonGeoClassificationDataModule", ("num_classes", "train_labels_file")),
    ],
)
def test_fit_help_lists_every_argument_with_its_type_and_help(
    capsys: pytest.CaptureFixture[str], class_path: str, own: tuple[str, ...]
) -> None:
    out = _help(capsys, class_path)
    for name in (*SHARED, *own):
        assert f"--data.{name}" in out, name
    assert "Unvalidated" not in out  # every type resolved, so jsonargparse checks values
    assert "names of the bands in each file (per time step for multi-temporal stacks)" in out
    assert "list[str | int]" in out
    assert "{channel_major,time_major}" in out


def test_a_wrongly_typed_data_argument_is_refused_by_the_parser(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "fit",
        "--data",
        "geoft.datamodules.GenericNonGeoSegmentationDataModule",
        "--data.num_classes",
        "2",
        "--data.batch_size",
        "many",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert "batch_size" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_the_three_datamodules_share_one_declaration() -> None:
    params = [
        inspect.signature(c).parameters
        for c in (
            GenericNonGeoSegmentationDataModule,
            GenericNonGeoPixelwiseRegressionDataModule,
            GenericNonGeoClassificationDataModule,
        )
    ]
    for name in SHARED:
        assert len({(p[name].annotation, p[name].default) for p in params}) == 1, name
    assert all(p[name].kind is inspect.Parameter.KEYWORD_ONLY for p in params for name in p)
