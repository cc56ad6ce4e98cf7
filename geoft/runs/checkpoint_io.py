"""The CheckpointIO plugin of a run folder: atomic checkpoint files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from geoft.storage import storage_error, temporary_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints to a temporary file and renames it, so a crash never leaves a truncated checkpoint.

    Local checkpoints are streamed straight into the temporary file next to the final one (Lightning's
    own writer stages them in the system temp folder, which can fill up although the run's disk has
    room). A failed write (disk full, file-size limit) removes the temporary file, leaves the previous
    checkpoints as they were and raises a :class:`~geoft.storage.StorageError` naming the checkpoint.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote (fsspec) paths: Lightning's writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        import torch

        final = Path(path)
        tmp = temporary_path(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())  # the rename must not land before the data
            os.replace(tmp, final)
        except Exception as err:
            kept = "the checkpoints saved before are intact" if any(final.parent.glob("*.ckpt")) else ""
            found = storage_error(err, final, "checkpoint", kept)
            if found is None:
                raise
            raise found from err
        finally:
            tmp.unlink(missing_ok=True)
