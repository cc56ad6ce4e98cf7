"""Normalisation of a restored task: the config's, else the checkpoint's, in one place for CLI and app."""

from __future__ import annotations

import pytest

from geoft.errors import ConfigError
from geoft.runs.restore import checkpoint_normalisation, normalisation

CKPT = {"state_dict": {}, "datamodule_state": {"means": [1, 2], "stds": [3, 4]}}


def test_config_statistics_win_and_the_checkpoint_is_not_read() -> None:
    config = {"data": {"init_args": {"means": [5.0], "stds": [6.0], "constant_scale": 0.5}}}

    def never() -> dict:
        raise AssertionError("the checkpoint was read although the config has means/stds")

    norm = normalisation(config, never)
    assert (norm.means, norm.stds, norm.constant_scale, norm.no_data_replace) == ([5.0], [6.0], 0.5, 0.0)


def test_checkpoint_statistics_are_the_fallback_and_said() -> None:
    said: list[str] = []
    norm = normalisation({"data": {"init_args": {"no_data_replace": None}}}, CKPT, said.append)
    assert (norm.means, norm.stds, norm.constant_scale, norm.no_data_replace) == (
        [1.0, 2.0],
        [3.0, 4.0],
        1.0,
        None,
    )
    assert said == ["using the means/stds stored in the checkpoint"]
    assert normalisation(None, lambda: CKPT).means == [1.0, 2.0]


def test_no_statistics_anywhere_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="neither the config .* nor the checkpoint") as info:
        normalisation({"data": {"init_args": {"means": [1.0]}}}, {"state_dict": {}})
    assert "compute_statistics" in str(info.value)


def test_one_reader_for_list_and_per_modality_statistics() -> None:
    multimodal = {
        "state_dict": {},
        "datamodule_state": {"means": {"S2": [1, 2], "S1": [3]}, "stds": {"S2": [4, 5], "S1": [6]}},
    }
    assert checkpoint_normalisation(CKPT) == ([1.0, 2.0], [3.0, 4.0])
    assert checkpoint_normalisation(CKPT, per_modality=True) is None
    assert checkpoint_normalisation(multimodal) is None
    assert checkpoint_normalisation(multimodal, per_modality=True) == (
        {"S2": [1.0, 2.0], "S1": [3.0]},
        {"S2": [4.0, 5.0], "S1": [6.0]},
    )
