"""A callback the DDP test passes to ``geoft fit`` (``tests/scaleout`` is put on ``PYTHONPATH``)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning
import torch


class DumpState(lightning.Callback):
    """At the end of ``fit`` every rank saves its weights and the (synced) metrics it sees into ``out_dir``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_fit_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.out_dir / f"weights_{rank}.pt")
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        info = {"world_size": trainer.world_size, "metrics": metrics}
        (self.out_dir / f"metrics_{rank}.json").write_text(json.dumps(info))
