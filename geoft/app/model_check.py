"""Build the model of a config and run one forward pass: parameter counts, output shape, time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.app.config_safety import check_class_paths
from geoft.errors import ConfigError


@dataclass(frozen=True)
class ModelReport:
    """What the dry run found."""

    total_params: int
    trainable_params: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    seconds: float
    used_real_batch: bool


def build_task(config: dict[str, Any]) -> Any:
    """Instantiate ``config["model"]`` (a geoft task) after the class-path check, as ``geoft fit`` does."""
    from lightning.pytorch import LightningModule

    from geoft.config import instantiate

    check_class_paths(config)
    model = config.get("model") or {}
    if not model.get("class_path"):
        raise ConfigError("the config has no model.class_path", hint="start from a preset")
    return instantiate(model, LightningModule, "model")


def first_batch(config: dict[str, Any]) -> dict[str, Any] | None:
    """One normalised training batch from the config's datamodule, or None when it cannot load."""
    data = config.get("data") or {}
    root = (data.get("init_args") or {}).get("train_data_root")
    roots = list(root.values()) if isinstance(root, dict) else [root]  # {modality: folder} or one folder
    if not data.get("class_path") or not root or not all(r and Path(r).is_dir() for r in roots):
        return None  # no data chosen yet: the caller says it used random input
    from lightning.pytorch import LightningDataModule

    from geoft.config import instantiate

    init = dict(data.get("init_args") or {})
    init["batch_size"] = min(int(init.get("batch_size", 2)), 2)
    init["num_workers"] = 0
    dm = instantiate({**data, "init_args": init}, LightningDataModule, "data")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    return dm.on_after_batch_transfer(batch, 0) if hasattr(dm, "on_after_batch_transfer") else batch


def dry_run(config: dict[str, Any], fallback_shape: tuple[int, int, int] = (6, 64, 64)) -> ModelReport:
    """Build the task and run a forward pass on one real batch (or random input of ``fallback_shape``)."""
    import torch

    task = build_task(config)
    total = sum(p.numel() for p in task.parameters())
    trainable = sum(p.numel() for p in task.parameters() if p.requires_grad)
    batch = first_batch(config)
    if batch is not None:
        x = batch["image"]
    else:
        x = torch.randn(1, *fallback_shape)
    task.eval()
    start = time.perf_counter()
    with torch.no_grad():
        out = task(x)
    seconds = time.perf_counter() - start
    output = getattr(out, "output", out)
    if isinstance(output, list) and output and isinstance(output[0], dict):
        output = output[0]["boxes"]  # a detector: the boxes [N, 4] found in the first image
    shape = tuple(x.shape) if not isinstance(x, dict) else tuple(next(iter(x.values())).shape)
    return ModelReport(total, trainable, shape, tuple(output.shape), seconds, batch is not None)
