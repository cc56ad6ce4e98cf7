"""Export a run's checkpoint (ONNX) through geoft's export module."""

from __future__ import annotations

from pathlib import Path

from geoft.app.jobs import find_checkpoints
from geoft.app.run_store import RunRecord
from geoft.errors import CheckpointError


def best_checkpoint(run: RunRecord) -> Path:
    """The run's best checkpoint (not ``last``) if saved, else its newest one."""
    ckpts = find_checkpoints(run.run_dir)
    if not ckpts:
        raise CheckpointError(f"run {run.id} has no checkpoint yet", hint="train it for at least one epoch")
    best = [c for c in ckpts if not c.name.startswith("last")]
    return (best or ckpts)[0]


def export_run_onnx(run: RunRecord) -> Path:
    """Write ``<run>/export/model.onnx`` from the run's best checkpoint."""
    from geoft.export import export_onnx

    out = run.run_dir / "export" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(export_onnx(best_checkpoint(run), out))
