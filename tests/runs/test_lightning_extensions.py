"""The Lightning logger, callbacks, checkpoint callback and CheckpointIO plugin of a run folder."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from geoft.errors import DataError
from geoft.runs.callbacks import RunEvents
from geoft.runs.checkpoint_io import AtomicCheckpointIO
from geoft.runs.folder import RunDir
from geoft.runs.logger import JsonlLogger


def test_jsonl_logger_and_atomic_checkpoints(tmp_path: Path) -> None:
    logger = JsonlLogger(tmp_path)
    logger.log_metrics({"val/loss": torch.tensor(0.5), "val/mIoU": 0.25, "epoch": 3}, step=10)
    line = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert line["event"] == "metrics" and line["stage"] == "val" and line["epoch"] == 3 and line["step"] == 10
    assert line["metrics"] == {"val/loss": 0.5, "val/mIoU": 0.25}
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / "c.ckpt")
    assert torch.load(tmp_path / "c.ckpt")["state_dict"]["w"].sum() == 2
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_last_checkpoint_is_the_latest_epoch_even_without_improvement(tmp_path: Path) -> None:
    import lightning
    import torch

    from geoft.runs.checkpoint import BestAndLastCheckpoint

    class WorseEveryEpoch(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", float(self.current_epoch))  # never improves after epoch 0

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)), batch_size=2)
    callback = BestAndLastCheckpoint(dirpath=str(tmp_path))
    trainer = lightning.Trainer(
        max_epochs=3, callbacks=[callback], logger=False, enable_progress_bar=False, num_sanity_val_steps=0
    )
    trainer.fit(WorseEveryEpoch(), data, data)
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    best = torch.load(callback.best_model_path, weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3)
    assert best["epoch"] == 0


def test_end_event_holds_the_message_geoft_prints(tmp_path: Path) -> None:
    trainer = SimpleNamespace(is_global_zero=True, checkpoint_callback=None)
    events = RunEvents(tmp_path, "fit")
    try:
        try:
            raise DataError("label 7.tif is missing", hint="run geoft validate-data")
        except DataError as inner:
            raise RuntimeError("a loader worker failed") from inner
    except RuntimeError as err:
        events.on_exception(trainer, None, err)  # type: ignore[arg-type]
    end = RunDir(tmp_path).end()
    assert end["status"] == "failed"
    assert end["error"] == "RuntimeError: a loader worker failed"
    assert end["message"] == "label 7.tif is missing\nHint: run geoft validate-data"
    assert [json.loads(line)["event"] for line in RunDir(tmp_path).metrics.read_text().splitlines()] == [
        "end"
    ]
