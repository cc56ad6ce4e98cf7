"""A file that fails to read mid-run (after the start's data check): retried, then a clear end; resume works.

The faults are made on disk during training by a Lightning callback from the run's own config: a
file that is gone for a moment (a network file system hiccup: back before the retry) and a file
truncated for good (replaced during training).
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import rasterio
import torch
import yaml

from geoft.cli import main
from geoft.datasets import read_retry

CALLBACK = textwrap.dedent(
    '''
    from pathlib import Path
    from lightning.pytorch.callbacks import Callback

    class BreakFileAtEpoch(Callback):
        """At the start of ``epoch`` (once per test: a marker file remembers), truncate or move away ``path``."""

        def __init__(self, path: str, epoch: int, how: str) -> None:
            self.path, self.epoch, self.how = Path(path), epoch, how

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            marker = self.path.with_name(self.path.name + ".broken")
            if trainer.current_epoch != self.epoch or marker.exists():
                return
            marker.write_text(self.how)
            if self.how == "move":
                self.path.rename(self.path.with_name(self.path.name + ".away"))
            else:
                data = self.path.read_bytes()
                self.path.write_bytes(data[: len(data) // 3 * 2])
    '''
)


def _workspace(root: Path, tiny_demo_workspace, monkeypatch: pytest.MonkeyPatch, how: str) -> Path:
    tiny_demo_workspace(root, {"max_epochs": 2})
    image = sorted((root / "data/demo/train/images").glob("*.tif"))[1]
    (root / "break_file.py").write_text(CALLBACK)
    monkeypatch.syspath_prepend(str(root))
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["trainer"]["callbacks"] = [
        {
            "class_path": "break_file.BreakFileAtEpoch",
            "init_args": {"path": str(image), "epoch": 1, "how": how},
        }
    ]
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(root)
    monkeypatch.setenv("GEOFT_CACHE_DIR", str(root / "cache"))
    return image


def _last(root: Path) -> Path:
    (last,) = root.glob("runs/*/checkpoints/last.ckpt")
    return last


@pytest.mark.timeout(180)
def test_a_file_gone_for_a_moment_is_read_again_and_training_completes(
    tmp_path: Path, tiny_demo_workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    image = _workspace(tmp_path, tiny_demo_workspace, monkeypatch, "move")
    waits: list[float] = []

    def storage_comes_back(seconds: float) -> None:
        waits.append(seconds)
        image.with_name(image.name + ".away").rename(image)

    monkeypatch.setattr(read_retry, "_sleep", storage_comes_back)
    with caplog.at_level(logging.WARNING, logger="geoft.datasets.read_retry"):
        assert main(["fit", "-c", "config.yaml"]) == 0
    assert waits == [read_retry.RETRY_DELAYS_S[0]]  # failed once, read on the second attempt
    warned = [r.getMessage() for r in caplog.records if r.name == "geoft.datasets.read_retry"]
    name = str(image.relative_to(tmp_path))  # as the config names it
    assert len(warned) == 1 and f"({name}) of the train dataset failed" in warned[0], warned
    assert torch.load(_last(tmp_path), weights_only=False)["global_step"] == 4  # both epochs trained


@pytest.mark.timeout(240)
def test_a_file_corrupted_mid_run_ends_it_naming_the_file_and_resume_continues(
    tmp_path: Path, tiny_demo_workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _workspace(tmp_path, tiny_demo_workspace, monkeypatch, "truncate")
    original = image.read_bytes()
    monkeypatch.setattr(read_retry, "_sleep", lambda seconds: None)  # the forked worker inherits it
    # in a DataLoader worker, so the error crosses torch's worker re-raise
    assert main(["fit", "-c", "config.yaml", "--data.init_args.num_workers", "1"]) == 2
    err = capsys.readouterr().err
    name = str(image.relative_to(tmp_path))
    assert f"({name}) of the train dataset failed 3 times during the run" in err, err
    assert "last.ckpt" in err and "Original Traceback" not in err and "Traceback" not in err, err

    last = _last(tmp_path)
    saved = torch.load(last, weights_only=False)  # the checkpoint of epoch 0 is whole
    assert (saved["epoch"], saved["global_step"]) == (0, 2)
    run = last.parent.parent
    end = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"end"' in line][-1]
    assert '"failed"' in end and image.name in end

    image.write_bytes(original)  # the file is fixed
    with rasterio.open(image) as src:
        src.read()
    assert main(["fit", "-c", "config.yaml", "--run_dir", str(run), "--ckpt_path", str(last)]) == 0
    resumed = torch.load(_last(tmp_path), weights_only=False)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 4)  # epoch 1 trained from epoch 0's state
