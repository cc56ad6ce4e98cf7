"""Export a run's checkpoint (ONNX) through geoft's export module."""

from __future__ import annotations

from pathlib import Path

from geoft.app.run_store import RunRecord
from geoft.app.trained import load_task, run_config
from geoft.errors import CheckpointError


def export_run_onnx(run: RunRecord, size: int = 64) -> Path:
    """Write ``<run>/export/model.onnx`` from the run's best checkpoint (batch and size dynamic where possible)."""
    import torch

    from geoft.export import export_onnx

    data_args = (run_config(run).get("data") or {}).get("init_args") or {}
    bands = data_args.get("output_bands") or data_args.get("dataset_bands")
    if not bands:
        raise CheckpointError(
            f"the config of run {run.id} does not name its input bands (data.init_args.dataset_bands)",
            hint="export it with the CLI: geoft export",
        )
    example = torch.zeros(1, len(bands), size, size)
    out = run.run_dir / "export" / "model.onnx"
    return Path(export_onnx(load_task(run), out, example))
