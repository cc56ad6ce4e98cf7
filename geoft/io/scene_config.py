"""The inputs of ``geoft predict-scene`` from its ``--input`` arguments and the training config.

``--input FILE`` once: one scene; several times: one file per date, in time order. For a config with
``modalities`` (``GenericMultiModalDataModule``): ``--input S2=s2.tif --input S1=s1.tif``, one per
modality, repeated for dates (``--input S2=may.tif --input S2=june.tif``). Per modality, the config
gives the bands (``dataset_bands`` must name every band of the file; ``output_bands`` are read),
``constant_scale``, ``resampling`` and the means/stds (else the checkpoint's); ``concat_bands`` says
whether the model takes a modality dict or the bands concatenated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio

from geoft.errors import ConfigError, DataError
from geoft.io.scene_inputs import SceneInput
from geoft.runs.restore import checkpoint_normalisation


@dataclass(frozen=True)
class ModalityInputs:
    """What ``predict-scene`` reads for a multimodal config."""

    inputs: dict[str, SceneInput]
    as_dict: bool
    no_data_replace: float | None


def split_inputs(values: Sequence[str], modalities: Sequence[str]) -> dict[str, list[str]]:
    """``["S2=a.tif", "S1=b.tif", "S2=c.tif"]`` → ``{"S2": ["a.tif", "c.tif"], "S1": ["b.tif"]}``, in
    the order of ``modalities``; every modality needs a file."""
    files: dict[str, list[str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or name not in modalities:
            raise ConfigError(
                f"--input {value!r}: the config has modalities {list(modalities)}; name the modality of "
                "each file as MODALITY=FILE",
                hint=" ".join(f"--input {m}={m.lower()}.tif" for m in modalities),
            )
        files.setdefault(name, []).append(path)
    missing = [m for m in modalities if m not in files]
    if missing:
        raise ConfigError(
            f"no --input for modalities {missing} (the config has {list(modalities)})",
            hint=" ".join(f"--input {m}=FILE" for m in missing),
        )
    return {m: files[m] for m in modalities}


def _band_indexes(
    modality: str, path: str, dataset: list[Any] | None, output: list[Any] | None
) -> list[int] | None:
    """1-based bands of ``path`` to read; its band count checked against ``dataset_bands``."""
    if dataset is None:
        if output is not None:
            raise ConfigError(f"output_bands of {modality!r} needs dataset_bands to find them in {path}")
        return None
    with rasterio.open(path) as src:
        count = src.count
    if count != len(dataset):
        raise DataError(
            f"{path} ({modality!r}) has {count} bands but dataset_bands[{modality!r}] lists {len(dataset)} "
            f"({', '.join(map(str, dataset))})",
            hint=f"give the {modality!r} file the model was trained on, with every band of dataset_bands",
        )
    missing = [b for b in output or [] if b not in dataset]
    if missing:
        raise ConfigError(f"output_bands[{modality!r}] {missing} are not in dataset_bands[{modality!r}]")
    return [dataset.index(b) + 1 for b in output] if output is not None else None


def modality_inputs(
    data: Mapping[str, Any],
    values: Sequence[str],
    ckpt: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    notice: Callable[[str], None] | None = None,
) -> ModalityInputs:
    """The scene inputs of a multimodal config's ``data.init_args`` and the ``--input`` values."""
    modalities = list(data["modalities"])
    if data.get("expand_temporal_dimension"):
        raise ConfigError(
            "predict-scene reads one file per date (--input S2=date1.tif --input S2=date2.tif); files "
            "stacking the dates (expand_temporal_dimension: true) are not read by it",
            hint="give one file per date and modality",
        )
    files = split_inputs(values, modalities)
    for m, paths in files.items():
        for path in paths:
            if not Path(path).is_file():
                raise DataError(f"--input {m}={path}: the file does not exist")
    means, stds = data.get("means"), data.get("stds")
    if not isinstance(means, Mapping) or not isinstance(stds, Mapping):
        stored = checkpoint_normalisation(ckpt() if callable(ckpt) else ckpt, per_modality=True)
        if stored is None:
            raise ConfigError(
                "neither the config (data.init_args.means/stds per modality) nor the checkpoint holds "
                "normalisation statistics",
                hint="add means and stds per modality to the config (geoft compute_statistics prints them)",
            )
        if notice is not None:
            notice("using the per-modality means/stds stored in the checkpoint")
        means, stds = stored
    bands, used = data.get("dataset_bands") or {}, data.get("output_bands") or {}
    scales, resampling = data.get("constant_scale") or {}, data.get("resampling") or {}
    inputs = {}
    for m, paths in files.items():
        if m not in means or m not in stds:
            raise ConfigError(f"the means/stds have no statistics for modality {m!r}")
        indexes = [_band_indexes(m, p, bands.get(m), used.get(m)) for p in paths]
        inputs[m] = SceneInput(
            paths=paths,
            bands=indexes[0],
            constant_scale=float(scales.get(m, 1.0)),
            normalise=([float(v) for v in means[m]], [float(v) for v in stds[m]]),
            resampling=resampling.get(m, "bilinear"),
        )
    fill = data.get("no_data_replace")  # the encoder must not see NaN: 0 unless the config says
    return ModalityInputs(inputs, not data.get("concat_bands", False), 0.0 if fill is None else float(fill))
