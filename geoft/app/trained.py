"""A finished run's config and trained task, for the pages that predict with it or export it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from geoft.app.config_safety import check_class_paths
from geoft.app.run_store import RunRecord
from geoft.errors import CheckpointError, ConfigError


def run_config(run: RunRecord) -> dict[str, Any]:
    """The run's resolved config (its class paths checked: run folders may hold uploaded configs)."""
    try:
        config = yaml.safe_load(run.config_path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the config of run {run.id}: {err}") from err
    check_class_paths(config)
    return config


def best_checkpoint(run: RunRecord) -> Path:
    """The run's best checkpoint (not ``last``) if saved, else its newest one."""
    best = run.folder.best()
    if best is None:
        raise CheckpointError(f"run {run.id} has no checkpoint yet", hint="train it for at least one epoch")
    return best


def load_task(run: RunRecord, checkpoint: Path | None = None) -> Any:
    """The run's task rebuilt from its config and ``checkpoint`` (default: the best), on CPU, in eval mode."""
    from geoft.runs.restore import load_checkpoint, task_from_checkpoint

    ckpt_path = checkpoint or best_checkpoint(run)
    return task_from_checkpoint(load_checkpoint(ckpt_path), run_config(run), str(ckpt_path)).eval()
