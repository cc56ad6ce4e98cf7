"""A trained task back from its checkpoint (and config), with the normalisation it was trained with."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geoft.errors import CheckpointError, ConfigError
from geoft.runs.deploy import deploy_config
from geoft.runs.reference_layout import translate_reference_state


def build_task(model_section: Mapping[str, Any]) -> nn.Module:
    """Instantiate a LightningModule from ``{class_path, init_args}`` without downloading weights."""
    from lightning.pytorch import LightningModule

    from geoft.config import instantiate

    section = deploy_config({"model": dict(model_section)})["model"]
    return instantiate(section, LightningModule, "model")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {path} holds Python objects that are not plain weights ({str(err).splitlines()[0]})",
            hint="load it only if you trust it: torch.load(path, weights_only=False), then save its state_dict",
        ) from err
    except (RuntimeError, EOFError) as err:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or not a checkpoint): {err}"
        ) from err


def task_from_checkpoint(
    ckpt: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    ckpt_path: str,
    notice: Callable[[str], None] | None = None,
) -> nn.Module:
    """Build the task from the config's ``model`` section, else from the checkpoint's hyperparameters.

    A checkpoint trained by the reference loads too (its key layout translated, which ``notice`` is told).
    """
    if config is not None:
        if "model" not in config:
            raise ConfigError("the config has no 'model' section")
        section = config["model"]
    else:
        hparams = dict(ckpt.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        class_path = hparams.pop("_class_path", None)
        if class_path is None:
            raise ConfigError(
                f"{ckpt_path} does not say which task built it",
                hint="pass the training config with -c (the run folder's config.yaml)",
            )
        section = {"class_path": class_path, "init_args": hparams}
    task = build_task(section)
    load_task_weights(task, ckpt, ckpt_path, notice)
    return task.eval()


def load_task_weights(
    task: nn.Module,
    ckpt: Mapping[str, Any],
    ckpt_path: str | Path,
    notice: Callable[[str], None] | None = None,
) -> None:
    """Load the checkpoint's ``state_dict`` into ``task``, every key (the reference's layout translated)."""
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{ckpt_path} has no state_dict; is it a Lightning checkpoint?")
    result = task.load_state_dict(translate_reference_state(state, task, notice), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{ckpt_path} does not fit the configured model: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]})",
            hint="use the config the checkpoint was trained with (its run folder's config.yaml)",
        )


Statistics = list[float] | dict[str, list[float]]


def checkpoint_normalisation(
    ckpt: Mapping[str, Any], per_modality: bool = False
) -> tuple[Statistics, Statistics] | None:
    """The ``means``/``stds`` a geoft datamodule stored in the checkpoint, if any: lists, or with
    ``per_modality`` the ``{modality: list}`` dicts of a multimodal datamodule."""
    kind = Mapping if per_modality else list
    for value in ckpt.values():
        if not isinstance(value, Mapping):
            continue
        means, stds = value.get("means"), value.get("stds")
        if not isinstance(means, kind) or not isinstance(stds, kind):
            continue
        if per_modality:
            return (
                {m: [float(v) for v in values] for m, values in means.items()},
                {m: [float(v) for v in values] for m, values in stds.items()},
            )
        return [float(m) for m in means], [float(s) for s in stds]
    return None


@dataclass(frozen=True)
class Normalisation:
    """How a trained task expects its input: ``(x * constant_scale - means) / stds``, no-data replaced."""

    means: list[float]
    stds: list[float]
    constant_scale: float = 1.0
    no_data_replace: float | None = 0.0


def data_arguments(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``data.init_args`` of a config ({} when there is none)."""
    data = (config or {}).get("data") or {}
    return dict(data.get("init_args") or {}) if isinstance(data, Mapping) else {}


def normalisation(
    config: Mapping[str, Any] | None,
    ckpt: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    notice: Callable[[str], None] | None = None,
) -> Normalisation:
    """The config's ``data.init_args`` means/stds, else those the checkpoint stored.

    ``ckpt`` may be a function that loads it, so a config that has the statistics never reads it.
    """
    data = data_arguments(config)
    means, stds = data.get("means"), data.get("stds")
    if not isinstance(means, list) or not isinstance(stds, list):
        stored = checkpoint_normalisation(ckpt() if callable(ckpt) else ckpt)
        if stored is None:
            raise ConfigError(
                "neither the config (data.init_args.means/stds) nor the checkpoint holds normalisation statistics",
                hint="add means and stds lists to the config (geoft compute_statistics -c CONFIG prints them)",
            )
        if notice is not None:
            notice("using the means/stds stored in the checkpoint")
        means, stds = stored
    scale = data.get("constant_scale")
    return Normalisation(
        means=[float(m) for m in means],
        stds=[float(s) for s in stds],
        constant_scale=1.0 if scale is None else float(scale),
        no_data_replace=data.get("no_data_replace", 0.0),
    )
