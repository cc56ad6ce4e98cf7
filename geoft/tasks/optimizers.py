"""Optimizers and learning-rate schedulers by name, with per-parameter learning-rate overrides.

* ``optimizer``: any class in :mod:`torch.optim` (``"AdamW"``), arguments in ``optimizer_hparams``.
* ``scheduler``: any class in :mod:`torch.optim.lr_scheduler` (``"CosineAnnealingLR"``), or
  ``"WarmupCosine"`` (linear warm-up then cosine decay). ``scheduler_hparams`` holds the scheduler's
  arguments plus Lightning's ``interval`` (``"epoch"``/``"step"``), ``frequency`` and ``monitor``.
* ``SequentialLR`` takes ``schedulers`` as a dict ``{"LinearLR": {...}, "CosineAnnealingLR": {...}}``
  (the reference's layout) or a list of one-key dicts, plus ``milestones``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, ReduceLROnPlateau, SequentialLR

from geoft.errors import ConfigError

LIGHTNING_SCHEDULER_KEYS = ("interval", "frequency", "monitor")


def _public_classes(module: Any, base: type) -> list[str]:
    return sorted(
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")
    )


def _check_kwargs(cls: type, kwargs: Mapping[str, Any], skip: int, what: str) -> None:
    """Raise ConfigError naming keyword arguments ``cls`` does not take (``skip`` leading positionals)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + skip :]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ConfigError(
            f"{what} {cls.__name__} got unknown argument(s) {unknown}",
            hint=f"{cls.__name__} accepts: {', '.join(sorted(names))}",
        )


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], lr_overrides: Mapping[str, float] | None
) -> list[dict[str, Any]]:
    """Split trainable parameters into groups: one per ``lr_overrides`` substring, then the rest.

    A parameter goes to the first override whose key is a substring of its name. Frozen parameters
    (``requires_grad=False``) are left out.

    Raises:
        ConfigError: an override key matches no trainable parameter (likely a typo).
    """
    overrides = dict(lr_overrides or {})
    groups: dict[str, list[nn.Parameter]] = {key: [] for key in overrides}
    rest: list[nn.Parameter] = []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        key = next((k for k in overrides if k in name), None)
        (groups[key] if key is not None else rest).append(param)
    empty = [key for key, params in groups.items() if not params]
    if empty:
        raise ConfigError(
            f"lr_overrides key(s) {empty} match no trainable parameter name",
            hint="keys are substrings of parameter names such as 'model.encoder.' or 'decoder'; "
            "list names with [n for n, _ in task.named_parameters()]",
        )
    out = [{"params": params, "lr": float(overrides[key]), "name": key} for key, params in groups.items()]
    if rest:
        out.append({"params": rest, "name": "default"})
    if not out:
        raise ConfigError("the model has no trainable parameters (everything is frozen)")
    return out


def _optimizer_class(name: str, hparams: Mapping[str, Any] | None) -> type[Optimizer]:
    cls = getattr(torch.optim, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, Optimizer)):
        raise ConfigError(
            f"unknown optimizer {name!r}",
            hint=f"use a torch.optim class: {', '.join(_public_classes(torch.optim, Optimizer))}",
        )
    if "lr" in (hparams or {}):
        raise ConfigError("set the learning rate with the task's lr argument, not optimizer_hparams.lr")
    _check_kwargs(cls, dict(hparams or {}), skip=1, what="optimizer")
    return cls


def check_optimizer(name: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Raise ConfigError for an unknown optimizer or arguments it does not take (builds nothing)."""
    _optimizer_class(name, hparams)


def build_optimizer(
    name: str, params: Iterable[Any], lr: float, hparams: Mapping[str, Any] | None = None
) -> Optimizer:
    """Build ``torch.optim.<name>(params, lr=lr, **hparams)``."""
    cls = _optimizer_class(name, hparams)
    kwargs = dict(hparams or {})
    if cls in (torch.optim.Adam, torch.optim.AdamW) and "fused" not in kwargs and "foreach" not in kwargs:
        params = [
            {**group, "params": list(group["params"])} if isinstance(group, dict) else group
            for group in params
        ]
        # The fused kernel is 4-5x faster per optimizer step than the default on CPU and GPU, same result.
        kwargs["fused"] = _fused_kernel_applies(params)
    return cls(params, lr=lr, **kwargs)


def _fused_kernel_applies(params: list[Any]) -> bool:
    """True when every parameter is a floating-point tensor on a device the fused Adam kernels support."""
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    return bool(tensors) and all(
        isinstance(t, torch.Tensor) and t.is_floating_point() and t.device.type in ("cpu", "cuda")
        for t in tensors
    )


def warmup_cosine(
    optimizer: Optimizer,
    warmup_iters: int,
    total_iters: int,
    start_factor: float = 1e-3,
    eta_min: float = 0.0,
) -> LRScheduler:
    """Linear warm-up over ``warmup_iters`` from ``start_factor * lr`` to ``lr``, then cosine decay to
    ``eta_min`` at ``total_iters`` (iterations are steps or epochs, following ``interval``)."""
    if warmup_iters < 0 or total_iters <= warmup_iters:
        raise ConfigError(
            f"WarmupCosine needs 0 <= warmup_iters < total_iters, got warmup_iters={warmup_iters}, "
            f"total_iters={total_iters}"
        )
    if not 0 < start_factor <= 1:
        raise ConfigError(f"WarmupCosine start_factor must be in (0, 1], got {start_factor}")
    cosine = CosineAnnealingLR(optimizer, T_max=total_iters - warmup_iters, eta_min=eta_min)
    if warmup_iters == 0:
        return cosine
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_iters)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_iters])


def _scheduler_class(name: str, kwargs: Mapping[str, Any]) -> type | None:
    """Check one scheduler's name and arguments (recursing into SequentialLR's); None for WarmupCosine."""
    if name == "WarmupCosine":
        _check_kwargs_fn(warmup_cosine, kwargs)
        if "warmup_iters" not in kwargs:
            raise ConfigError(
                "WarmupCosine needs scheduler_hparams.warmup_iters (steps or epochs of warm-up)"
            )
        return None
    cls = getattr(torch.optim.lr_scheduler, name, None)
    valid = (LRScheduler, ReduceLROnPlateau)
    if not (inspect.isclass(cls) and issubclass(cls, valid)) or name.startswith("_"):
        names = sorted(set(_public_classes(torch.optim.lr_scheduler, LRScheduler)) | {"ReduceLROnPlateau"})
        raise ConfigError(
            f"unknown scheduler {name!r}",
            hint=f"use WarmupCosine or a torch.optim.lr_scheduler class: {', '.join(names)}",
        )
    if cls is SequentialLR:
        nested = _nested_schedulers(kwargs.get("schedulers"))
        for sub_name, sub_kwargs in nested:
            _scheduler_class(sub_name, dict(sub_kwargs or {}))
        if "milestones" not in kwargs or len(kwargs["milestones"]) != len(nested) - 1:
            raise ConfigError("SequentialLR needs scheduler_hparams.milestones: one per transition")
    if name == "LambdaLR":
        raise ConfigError(
            "LambdaLR needs a Python function; use WarmupCosine or LinearLR/SequentialLR in configs"
        )
    _check_kwargs(cls, kwargs, skip=1, what="scheduler")
    return cls


def _scheduler_object(
    name: str, optimizer: Optimizer, kwargs: dict[str, Any], total_iters: Callable[[], int]
) -> LRScheduler | ReduceLROnPlateau:
    """Instantiate one scheduler (recursing into SequentialLR's sub-schedulers)."""
    cls = _scheduler_class(name, kwargs)
    if cls is None:
        if "total_iters" not in kwargs:
            kwargs["total_iters"] = total_iters()
        return warmup_cosine(optimizer, **kwargs)
    if cls is SequentialLR:
        kwargs = dict(kwargs)
        kwargs["schedulers"] = [
            _scheduler_object(sub_name, optimizer, dict(sub_kwargs or {}), total_iters)
            for sub_name, sub_kwargs in _nested_schedulers(kwargs.get("schedulers"))
        ]
    return cls(optimizer, **kwargs)


def _check_kwargs_fn(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    names = list(inspect.signature(fn).parameters)[1:]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ConfigError(
            f"WarmupCosine got unknown argument(s) {unknown}", hint=f"it accepts: {', '.join(names)}"
        )


def _nested_schedulers(spec: Any) -> list[tuple[str, Mapping[str, Any] | None]]:
    if isinstance(spec, Mapping) and spec:
        return list(spec.items())
    if isinstance(spec, list) and spec and all(isinstance(s, Mapping) and len(s) == 1 for s in spec):
        return [next(iter(s.items())) for s in spec]
    raise ConfigError(
        "SequentialLR needs scheduler_hparams.schedulers: {LinearLR: {...}, CosineAnnealingLR: {...}} "
        "or a list of one-key dicts"
    )


def _split_lightning_keys(
    hparams: Mapping[str, Any] | None, default_monitor: str
) -> tuple[dict[str, Any], str, int, str]:
    kwargs = dict(hparams or {})
    interval = kwargs.pop("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler_hparams.interval must be 'epoch' or 'step', got {interval!r}")
    frequency = int(kwargs.pop("frequency", 1))
    monitor = kwargs.pop("monitor", default_monitor)
    return kwargs, interval, frequency, monitor


def check_scheduler(name: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Raise ConfigError for an unknown scheduler or bad ``scheduler_hparams`` (builds nothing)."""
    kwargs, _, _, _ = _split_lightning_keys(hparams, "val/loss")
    _scheduler_class(name, kwargs)
    if name == "WarmupCosine" and "total_iters" in kwargs and kwargs["total_iters"] <= kwargs["warmup_iters"]:
        raise ConfigError(
            f"WarmupCosine needs 0 <= warmup_iters < total_iters, got warmup_iters={kwargs['warmup_iters']}, "
            f"total_iters={kwargs['total_iters']}"
        )


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    hparams: Mapping[str, Any] | None,
    default_monitor: str,
    total_iters: Callable[[str], int],
) -> dict[str, Any]:
    """Build a Lightning ``lr_scheduler`` config dict for ``torch.optim.lr_scheduler.<name>``.

    Args:
        default_monitor: metric watched by ReduceLROnPlateau when ``monitor`` is not given.
        total_iters: given the interval (``"epoch"``/``"step"``), returns the run's length in it (used
            by WarmupCosine when ``total_iters`` is not set).
    """
    kwargs, interval, frequency, monitor = _split_lightning_keys(hparams, default_monitor)
    scheduler = _scheduler_object(name, optimizer, kwargs, lambda: total_iters(interval))
    return {"scheduler": scheduler, "interval": interval, "frequency": frequency, "monitor": monitor}


def run_length(trainer: Any, interval: str) -> int:
    """The length of ``trainer``'s run in ``interval`` units: optimizer steps or epochs."""
    if interval == "step":
        return int(trainer.estimated_stepping_batches)
    if trainer.max_epochs is None or trainer.max_epochs < 1:
        raise ConfigError(
            "WarmupCosine with interval 'epoch' needs trainer.max_epochs or scheduler_hparams.total_iters"
        )
    return int(trainer.max_epochs)


def configure_optimization(
    module: Any, lr_overrides: Mapping[str, float] | None, default_monitor: str
) -> dict[str, Any]:
    """What a task's ``configure_optimizers`` returns, from its ``optimizer``, ``lr``, ``optimizer_hparams``,
    ``scheduler`` and ``scheduler_hparams`` hyperparameters (Adam when no optimizer is named)."""
    hp = module.hparams
    groups = parameter_groups(module.named_parameters(), lr_overrides)
    optimizer = build_optimizer(hp["optimizer"] or "Adam", groups, hp["lr"], hp["optimizer_hparams"])
    if not hp["scheduler"]:
        return {"optimizer": optimizer}
    scheduler = build_scheduler(
        hp["scheduler"],
        optimizer,
        hp["scheduler_hparams"],
        default_monitor,
        lambda interval: run_length(module.trainer, interval),
    )
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


__all__ = [
    "build_optimizer",
    "build_scheduler",
    "check_optimizer",
    "check_scheduler",
    "configure_optimization",
    "parameter_groups",
    "run_length",
    "warmup_cosine",
]
