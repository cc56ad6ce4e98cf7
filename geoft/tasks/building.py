"""What a task checks and builds from its arguments: the model, frozen parts, class count, and the
one-batch checks of targets and model outputs. Every problem is a :class:`~geoft.errors.ConfigError`
(or :class:`~geoft.errors.DataError` for data) naming the argument to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from geoft.errors import ConfigError, DataError
from geoft.models.model import AuxiliaryHead, ModelFactory
from geoft.task_kinds import TaskKind


def aux_head(spec: AuxiliaryHead | Mapping[str, Any]) -> AuxiliaryHead:
    """An :class:`AuxiliaryHead` from itself or from a config dict."""
    if isinstance(spec, AuxiliaryHead):
        return spec
    if isinstance(spec, Mapping):
        try:
            return AuxiliaryHead(**spec)
        except TypeError as err:
            raise ConfigError(
                f"bad aux_heads entry {dict(spec)}: {err}",
                hint="each entry needs name, decoder and optionally decoder_args",
            ) from err
    raise ConfigError(f"aux_heads entries must be AuxiliaryHead or dicts, got {type(spec).__name__}")


def build_task_model(
    kind: TaskKind,
    model_args: Mapping[str, Any] | None,
    model_factory: str | ModelFactory | None,
    model: nn.Module | None,
    aux_heads: Sequence[AuxiliaryHead | Mapping[str, Any]] | None,
) -> nn.Module:
    """The ready ``model``, or the one ``model_factory.build_model(kind, **model_args)`` builds."""
    if model is not None and model_factory is not None:
        raise ConfigError("give either model_factory (with model_args) or a ready model, not both")
    if model is not None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if aux_heads:
            raise ConfigError("aux_heads are built by a model factory; a ready model must create them itself")
        extra = sorted(set(model_args or {}) - {"num_classes", "num_outputs"})
        if extra:
            raise ConfigError(
                f"model_args {extra} are unused with a ready model (only num_classes is read)",
                hint="pass them to your model's constructor, or use model_factory",
            )
        return model
    if model_factory is None:
        raise ConfigError(
            "no model: set model_factory (e.g. 'EncoderDecoderFactory') with model_args, or pass model="
        )
    if isinstance(model_factory, str):
        from geoft.registry import MODEL_FACTORY_REGISTRY

        factory = MODEL_FACTORY_REGISTRY.build(model_factory)
    else:
        factory = model_factory
    if not callable(getattr(factory, "build_model", None)):
        raise ConfigError(f"model_factory {type(factory).__name__} has no build_model method")
    kwargs = dict(model_args or {})
    if aux_heads:
        kwargs["aux_decoders"] = [aux_head(spec) for spec in aux_heads]
    built = factory.build_model(kind, **kwargs)
    if not isinstance(built, nn.Module):
        raise ConfigError(
            f"{type(factory).__name__}.build_model returned {type(built).__name__}, not a module"
        )
    return built


def freeze_parts(model: nn.Module, backbone: bool, decoder: bool, head: bool) -> None:
    """Call the model's ``freeze_encoder``/``freeze_decoder``/``freeze_head`` as asked."""
    for wanted, flag, method in (
        (backbone, "freeze_backbone", "freeze_encoder"),
        (decoder, "freeze_decoder", "freeze_decoder"),
        (head, "freeze_head", "freeze_head"),
    ):
        if not wanted:
            continue
        fn = getattr(model, method, None)
        if not callable(fn):
            raise ConfigError(
                f"{flag}=True but the model ({type(model).__name__}) has no {method}() method",
                hint="use a geoft Model (from a model factory), or freeze parameters yourself",
            )
        fn()


def resolve_num_classes(
    task_name: str,
    model_args: Mapping[str, Any] | None,
    class_names: Sequence[str] | None,
    model: nn.Module | None,
) -> int:
    """The number of classes, agreed on by ``model_args``, ``class_names`` and a ready model."""
    found: dict[str, int] = {}
    if model_args and model_args.get("num_classes") is not None:
        found["model_args.num_classes"] = int(model_args["num_classes"])
    if class_names:
        found["class_names"] = len(class_names)
    if model is not None and isinstance(getattr(model, "num_classes", None), int):
        found["model.num_classes"] = model.num_classes
    if not found:
        raise ConfigError(
            f"{task_name} needs the number of classes", hint="set model_args.num_classes (or class_names)"
        )
    if len(set(found.values())) > 1:
        raise ConfigError(f"inconsistent number of classes: {found}")
    value = next(iter(found.values()))
    if value < 1:
        raise ConfigError(f"num_classes must be >= 1, got {value}")
    return value


def check_output_kinds(
    output_on_inference: str | Sequence[str], allowed: Sequence[str], task_name: str
) -> tuple[str, ...]:
    """``output_on_inference`` as a tuple of kinds the task can produce."""
    kinds = (output_on_inference,) if isinstance(output_on_inference, str) else tuple(output_on_inference)
    bad = [k for k in kinds if k not in allowed]
    if bad or not kinds:
        raise ConfigError(
            f"output_on_inference {list(kinds)} is invalid for {task_name}",
            hint=f"use one or more of {', '.join(allowed)}",
        )
    return kinds


def check_tiled(
    params: Mapping[str, Any] | None, on_val: bool, on_test: bool, supported: bool, task_name: str
) -> None:
    """Tiled-inference arguments that fit together (and the task)."""
    if params is not None and not supported:
        raise ConfigError(f"tiled inference does not apply to {task_name} (one label per image)")
    if (on_val or on_test) and params is None:
        raise ConfigError("tiled_inference_on_validation/testing need tiled_inference_parameters")
    if params is not None:
        from geoft.tasks.tiled_inference import TiledInferenceParameters

        TiledInferenceParameters.from_any(params)  # raises ConfigError on bad keys or values


def check_plot(plot_on_val: bool | int) -> int:
    """Plot every N validation epochs (0: never)."""
    every = int(plot_on_val)
    if every < 0:
        raise ConfigError(f"plot_on_val must be a bool or an int >= 0, got {plot_on_val!r}")
    return every


def check_target_values(
    target: Tensor, kind: TaskKind, num_classes: int | None, ignore_index: int | None
) -> None:
    """Raise DataError when class targets hold values that are neither classes nor ``ignore_index``."""
    if not kind.uses_classes or num_classes is None:
        return
    values = torch.unique(target[~torch.isnan(target)] if target.is_floating_point() else target)
    allowed = {0, 1} if kind is TaskKind.MULTILABEL_CLASSIFICATION else set(range(num_classes))
    ignored = {int(ignore_index)} if ignore_index is not None else set()
    bad = sorted({int(v) for v in values.tolist()} - allowed - ignored)
    if bad:
        raise DataError(
            f"the {kind.target_key!r} values {bad[:10]} are neither classes ({min(allowed)}..{max(allowed)}) "
            f"nor ignore_index ({ignore_index})",
            hint="set ignore_index to the no-data value, or check num_classes and the label files",
        )


def check_output_layout(
    output: Tensor, target: Tensor | None, kind: TaskKind, num_classes: int | None
) -> None:
    """Compare the model's output layout with the task, so mistakes fail with a clear message."""
    if kind.uses_classes and (output.ndim < 2 or output.shape[1] != num_classes):
        raise ConfigError(
            f"the model's output has shape {tuple(output.shape)}, but the task has {num_classes} classes "
            f"(expected [B, {num_classes}, ...])",
            hint="make model_args.num_classes match the model, or fix the model's last layer",
        )
    if target is None or not kind.pixelwise:
        return
    spatial = output.shape[2:] if kind.uses_classes else output.shape[-target.ndim + 1 :]
    if tuple(spatial) != tuple(target.shape[1:]):
        raise ConfigError(
            f"the model's output {tuple(output.shape)} does not match the mask {tuple(target.shape)}",
            hint="pixel-wise models must return predictions at the input's height and width",
        )


__all__ = [
    "aux_head",
    "build_task_model",
    "check_output_kinds",
    "check_output_layout",
    "check_plot",
    "check_target_values",
    "check_tiled",
    "freeze_parts",
    "resolve_num_classes",
]
