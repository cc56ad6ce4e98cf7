"""``geoft export``: rebuild a task from its config (or its checkpoint), load the weights, export and verify."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geoft.errors import CheckpointError, ConfigError
from geoft.run_folder import deploy_config


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
    ckpt: Mapping[str, Any], config: Mapping[str, Any] | None, ckpt_path: str
) -> nn.Module:
    """Build the task from the config's ``model`` section, else from the checkpoint's hyperparameters."""
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
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{ckpt_path} has no state_dict; is it a Lightning checkpoint?")
    result = task.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{ckpt_path} does not fit the configured model: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]})",
            hint="use the config the checkpoint was trained with (its run folder's config.yaml)",
        )
    return task.eval()


def checkpoint_normalisation(ckpt: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
    """The ``means``/``stds`` a geoft datamodule stored in the checkpoint (its ``state_dict``), if any."""
    for value in ckpt.values():
        if (
            isinstance(value, Mapping)
            and isinstance(value.get("means"), list)
            and isinstance(value.get("stds"), list)
        ):
            return [float(m) for m in value["means"]], [float(s) for s in value["stds"]]
    return None


def _first(model: nn.Module, attr: str) -> Any:
    for module in model.modules():
        value = getattr(module, attr, None)
        if value is not None and not callable(value):
            return value
    return None


def example_shape(task: nn.Module, input_shape: str | None) -> tuple[int, ...]:
    """``--input_shape`` parsed, or (1, channels, [frames,] size, size) read off the model."""
    if input_shape:
        try:
            shape = tuple(int(v) for v in input_shape.replace("x", ",").split(","))
        except ValueError as err:
            raise ConfigError(f"--input_shape {input_shape!r} must be integers like 1,6,224,224") from err
        if len(shape) not in (4, 5) or min(shape) < 1:
            raise ConfigError(
                f"--input_shape {input_shape!r} must be B,C,H,W or B,C,T,H,W with positive sizes"
            )
        return shape
    channels = _first(task, "in_chans")
    if not isinstance(channels, int):
        conv = next((m for m in task.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)
        if conv is None:
            raise ConfigError("cannot tell the model's input channels", hint="pass --input_shape B,C,H,W")
        channels = conv.in_channels
    hparams = getattr(task, "hparams", {}) or {}
    tiled = hparams.get("tiled_inference_parameters") if hasattr(hparams, "get") else None
    size: Any = (tiled or {}).get("crop") or _first(task, "img_size") or 224
    height, width = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    frames = _first(task, "num_frames")
    if isinstance(frames, int) and frames > 1:
        return (1, channels, frames, int(height), int(width))
    return (1, channels, int(height), int(width))


def run_export(
    *,
    config: Mapping[str, Any] | None,
    ckpt_path: str,
    output: str,
    format: str,
    input_shape: str | None,
    static_hw: bool,
    verify: bool,
    notice: Callable[[str], None],
) -> int:
    """The ``geoft export`` command; prints what was written and how well it matches PyTorch."""
    from geoft.export import export_info, export_model, unwrap_model, verify_export

    ckpt = load_checkpoint(ckpt_path)
    task = task_from_checkpoint(ckpt, config, ckpt_path)
    model = unwrap_model(task).eval()
    shape = example_shape(task, input_shape)
    example = torch.randn(shape)
    notice(f"exporting {type(model).__name__} with example input {list(shape)} as {format}")
    path = export_model(model, output, example, format=format, dynamic_hw=False if static_hw else None)  # type: ignore[arg-type]
    info = export_info(path, format)  # type: ignore[arg-type]
    hw = "yes" if info["dynamic_hw"] else "no, " + "x".join(map(str, shape[-2:])) + " only"
    batch = "yes" if info["dynamic_batch"] else "no"
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB); dynamic batch: {batch}; dynamic height/width: {hw}"
    )
    if verify:
        inputs = [example]
        if info["dynamic_batch"]:
            inputs.append(torch.randn((2, *shape[1:])))
        if info["dynamic_hw"]:
            step = max(int(info["size_multiple"]), 8)
            inputs.append(torch.randn((1, *shape[1:-2], shape[-2] + step, shape[-1] + 2 * step)))
        worst = verify_export(model, path, format, inputs)  # type: ignore[arg-type]
        print(f"verified against PyTorch on {len(inputs)} inputs: max abs difference {worst:.2e}")
    return 0
