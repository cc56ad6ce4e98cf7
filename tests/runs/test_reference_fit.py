"""Fine-tuning further from a checkpoint the reference (TerraTorch) trained, through Lightning's hooks.

``fit --ckpt_path`` resumes it: weights translated, the reference's optimizer and scheduler states
dropped (they are in the reference's parameter order; UPerNet's fold even removes parameters), the
configured ones fresh, epoch and step counters continued. ``InitialWeights`` starts a new run from its
weights instead (epoch 0). The checkpoints are built in the published layout (see
test_reference_checkpoint), with the loop state Lightning writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from geoft.cli import main
from geoft.errors import ConfigError
from geoft.runs.initial_weights import InitialWeights
from geoft.runs.restore import build_task
from geoft.tasks import SemanticSegmentationTask
from tests.runs.test_reference_checkpoint import (
    AUX_HEADS,
    BASE_ARGS,
    DECODERS,
    geoft_task,
    reference_checkpoint,
    to_reference_layout,
)
from tests.tasks.conftest import trainer


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 6, 32, 32, generator=g)
    samples = [{"image": x, "mask": (x[0] > 0).long() + (x[1] > 0).long()} for x in images]
    return DataLoader(samples, batch_size=2)


def _trainer(tmp_path: Path, max_epochs: int, **kwargs: Any) -> lightning.Trainer:
    return trainer(max_epochs=max_epochs, default_root_dir=tmp_path, **kwargs)


def _task(decoder: str) -> SemanticSegmentationTask:
    return SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={**BASE_ARGS, **DECODERS[decoder]},
        loss="ce",
        ignore_index=-1,
        lr=1e-3,
        aux_heads=AUX_HEADS.get(decoder),
        aux_loss={head["name"]: 0.4 for head in AUX_HEADS.get(decoder, [])} or None,
    )


def reference_adam_state(layout: dict[str, torch.Tensor]) -> dict[str, Any]:
    """An Adam state after one step over the reference's own parameter list (its layout, its order)."""
    params = [
        torch.nn.Parameter(v.clone())
        for k, v in layout.items()
        if v.is_floating_point() and "running_" not in k
    ]
    adam = torch.optim.Adam(params)
    sum(p.sum() for p in params).backward()
    adam.step()
    return adam.state_dict()


def _reference_run(decoder: str, tmp_path: Path) -> tuple[SemanticSegmentationTask, Path]:
    """A reference checkpoint after one epoch: Lightning's loops and counters, the reference's weights,
    and an Adam state over the reference's own parameter list (more tensors than geoft's for UPerNet)."""
    trained = _trainer(tmp_path, max_epochs=1)
    trained.fit(_task(decoder), _data())
    lightning_state = trained._checkpoint_connector.dump_checkpoint()
    original = geoft_task(decoder)
    lightning_state["optimizer_states"] = [reference_adam_state(to_reference_layout(original))]
    for key in ("state_dict", "hyper_parameters", "callbacks", "hparams_name"):
        lightning_state.pop(key, None)
    model_args = {**BASE_ARGS, **DECODERS[decoder]}
    return original, reference_checkpoint(original, model_args, tmp_path / "ref.ckpt", lightning_state)


def _encoder_weights(task: SemanticSegmentationTask) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in task.model.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_fit_resumes_a_reference_checkpoint_with_a_fresh_optimizer(
    decoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, ckpt = _reference_run(decoder, tmp_path)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 1 and saved["global_step"] == 2 and saved["optimizer_states"][0]["state"]

    task = _task(decoder)
    losses: list[float] = []
    start: dict[str, torch.Tensor] = {}

    class Watch(lightning.Callback):
        def on_train_start(self, trainer: lightning.Trainer, pl_module: Any) -> None:
            start.update(_encoder_weights(pl_module))  # the reference's weights, restored
            assert not trainer.optimizers[0].state  # fresh: nothing of the reference's restored

        def on_train_batch_end(
            self, trainer: lightning.Trainer, pl_module: Any, outputs: Any, *_: Any
        ) -> None:
            losses.append(float(outputs["loss"]))

    fitting = _trainer(tmp_path, max_epochs=2, callbacks=[Watch()])
    fitting.fit(task, _data(), ckpt_path=str(ckpt))

    expected = original.state_dict()
    for key in ("model.encoder.patch_embed.proj.weight", "model.head.head.0.weight"):
        if key in expected:
            torch.testing.assert_close(start[f"{key.removeprefix('model.')}"], expected[key])
    assert fitting.current_epoch == 2 and fitting.global_step == 4  # epoch 1 only: counters continued
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    after = _encoder_weights(task)
    assert any(not torch.equal(start[k], after[k]) for k in start), "training changed no weight"
    err = capsys.readouterr().err
    assert "translated the reference's (TerraTorch's) checkpoint layout" in err
    assert "not restoring the optimizer" in err and "counters continue" in err and "epoch 1, step 2" in err


def test_a_weights_only_reference_checkpoint_resumes_too(tmp_path: Path) -> None:
    """The reference also writes ``{epoch}_state_dict.ckpt`` files: weights only, no optimizer state."""
    original = geoft_task("upernet")
    ckpt = reference_checkpoint(original, {**BASE_ARGS, **DECODERS["upernet"]}, tmp_path / "w.ckpt")
    state = torch.load(ckpt, weights_only=True)
    for key in ("optimizer_states", "lr_schedulers", "loops"):
        del state[key]
    torch.save(state, ckpt)
    fitting = _trainer(tmp_path, max_epochs=2)
    fitting.fit(_task("upernet"), _data(), ckpt_path=str(ckpt))
    assert fitting.global_step > 0


@pytest.mark.parametrize("decoder", ["upernet", "unet"])
def test_initial_weights_starts_a_new_run_from_the_reference_weights(
    decoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, ckpt = _reference_run(decoder, tmp_path)
    task = _task(decoder)
    loaded: dict[str, torch.Tensor] = {}

    class Watch(lightning.Callback):
        def on_train_start(self, trainer: lightning.Trainer, pl_module: Any) -> None:
            loaded.update(_encoder_weights(pl_module))

    fitting = _trainer(tmp_path, max_epochs=1, callbacks=[InitialWeights(ckpt), Watch()])
    fitting.fit(task, _data())
    assert fitting.current_epoch == 1 and fitting.global_step == 2  # a new run: counted from zero
    task.eval()
    x = torch.randn(1, 6, 32, 32)
    probe = _task(decoder).eval()
    probe.model.load_state_dict(loaded)
    with torch.no_grad():  # what training started from is the reference's model
        torch.testing.assert_close(probe.model(x).output, original.model(x).output, atol=1e-5, rtol=1e-5)
    assert "starting from the weights of" in capsys.readouterr().err

    with pytest.raises(ConfigError, match="keep one"):
        _trainer(tmp_path, max_epochs=2, callbacks=[InitialWeights(ckpt)]).fit(
            _task(decoder), _data(), ckpt_path=str(ckpt)
        )


@pytest.mark.slow
def test_geoft_fit_cli_resumes_and_starts_from_a_reference_checkpoint(
    tmp_path: Path,
    tiny_demo_workspace: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``geoft fit -c reference.yaml --ckpt_path reference.ckpt``, and ``InitialWeights`` in a config."""
    workspace = tiny_demo_workspace(
        tmp_path, {"max_epochs": 1, "limit_train_batches": 1, "limit_val_batches": 1}
    )
    monkeypatch.chdir(workspace)  # main() resolves the config's relative data roots against it
    assert main(["fit", "-c", "config.yaml", "--run_name", "first"]) == 0
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    trained = torch.load(workspace / "runs" / "first" / "checkpoints" / "last.ckpt", weights_only=False)
    task = build_task(config["model"])
    task.load_state_dict(trained["state_dict"])
    layout = to_reference_layout(task)
    trained.update(
        state_dict=layout,
        hyper_parameters={"_class_path": "terratorch.tasks.SemanticSegmentationTask"},
        optimizer_states=[reference_adam_state(layout)],
        callbacks={},
    )
    torch.save(trained, workspace / "reference.ckpt")
    config["model"]["class_path"] = "terratorch.tasks.SemanticSegmentationTask"
    config["trainer"]["max_epochs"] = 2
    (workspace / "reference.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    capsys.readouterr()

    args = ["fit", "-c", "reference.yaml", "--ckpt_path", "reference.ckpt", "--run_name", "resumed"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert (
        "translated the reference's (TerraTorch's) checkpoint layout" in err
        and "not restoring the optimizer" in err
    )
    resumed = torch.load(workspace / "runs" / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert (resumed["epoch"], resumed["global_step"]) == (trained["epoch"] + 1, trained["global_step"] + 1)

    config["trainer"]["max_epochs"] = 1
    config["trainer"]["callbacks"] = [
        {
            "class_path": "geoft.runs.initial_weights.InitialWeights",
            "init_args": {"ckpt_path": "reference.ckpt"},
        }
    ]
    (workspace / "new.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["fit", "-c", "new.yaml", "--run_name", "new"]) == 0
    assert "starting from the weights of reference.ckpt" in capsys.readouterr().err
    new = torch.load(workspace / "runs" / "new" / "checkpoints" / "last.ckpt", weights_only=False)
    assert new["global_step"] == 1  # a new run
