"""The deploy config: a training config reduced to what inference needs."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_DEPLOY_DROP_TOP = ("optimizer", "lr_scheduler", "ckpt_path", "seed_everything", "run_dir")
_DEPLOY_DROP_TASK = ("optimizer", "optimizer_hparams", "scheduler", "scheduler_hparams", "lr", "lr_overrides")
_PRETRAINED_KEYS = ("backbone_pretrained", "pretrained")


def _no_downloads(args: dict[str, Any]) -> None:
    for key in _PRETRAINED_KEYS:
        if key in args:
            args[key] = False
    if args.get("backbone") == "late_fusion":
        # late fusion takes no ``pretrained``: each of its encoders downloads (or not) on its own
        _encoders_no_downloads(args)
    elif "backbone" in args and "backbone_pretrained" not in args and "pretrained" not in args:
        args["backbone_pretrained"] = False
    for key in ("backbone_kwargs", "backbone_args"):
        if isinstance(args.get(key), dict) and "pretrained" in args[key]:
            args[key]["pretrained"] = False
    args.pop("backbone_ckpt_path", None)


def _encoders_no_downloads(args: dict[str, Any]) -> None:
    """``pretrained: false`` and no ``ckpt_path`` in every entry of a late-fusion backbone's encoders."""
    nested = args.get("backbone_kwargs")
    for encoders in (
        args.get("backbone_encoders"),
        nested.get("encoders") if isinstance(nested, dict) else None,
    ):
        if not isinstance(encoders, dict):
            continue
        for spec in encoders.values():
            if isinstance(spec, dict) and "backbone" in spec:
                spec["pretrained"] = False
                spec.pop("ckpt_path", None)


def deploy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config for inference from a training config: no optimizer, scheduler, callbacks, loggers or
    weight downloads (the checkpoint holds every weight), trainer reduced to device settings."""
    out = copy.deepcopy(dict(config))
    for key in _DEPLOY_DROP_TOP:
        out.pop(key, None)
    trainer = out.get("trainer")
    if isinstance(trainer, dict):
        keep = ("accelerator", "devices", "precision", "num_nodes", "strategy")
        out["trainer"] = {k: v for k, v in trainer.items() if k in keep}
        out["trainer"]["logger"] = False
    model = out.get("model")
    if isinstance(model, dict):
        init = model.get("init_args") if isinstance(model.get("init_args"), dict) else model
        for key in _DEPLOY_DROP_TASK:
            init.pop(key, None)
        if isinstance(init.get("model_args"), dict):
            _no_downloads(init["model_args"])
    return out


def write_deploy_config(config: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(deploy_config(config), sort_keys=False))
    return path
