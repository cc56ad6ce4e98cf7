"""SemanticSegmentationTask: training, metrics, aux heads, freezing, checkpoints, prediction, figures."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, Logger

from geoft.errors import ConfigError, DataError
from geoft.models.model import AuxiliaryHead, ModelOutput
from geoft.tasks import SemanticSegmentationTask


def _batch_loss(task: SemanticSegmentationTask, dm: Any) -> float:
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        out = task(batch["image"])
        return float(task.loss_handler.compute(out, task.prepare_target(batch["mask"]))["loss"])


def test_trains_and_logs_metric_names(tk: Any, tmp_path: Any) -> None:
    dm = tk.DataModule("segmentation", ignore_index=-1)
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3),
        model_args={"num_classes": 3},
        ignore_index=-1,
        lr=0.02,
        class_names=["low", "mid", "high"],
    )
    before = _batch_loss(task, dm)
    logger = CSVLogger(tmp_path)
    trainer = tk.trainer(max_epochs=3, logger=logger, log_every_n_steps=1)
    trainer.fit(task, dm)
    after = _batch_loss(task, dm)
    assert after < 0.8 * before
    metrics = trainer.callback_metrics
    for name in (
        "mIoU",
        "mIoU_Micro",
        "F1_Score",
        "Accuracy",
        "Pixel_Accuracy",
        "IoU_low",
        "IoU_high",
        "loss",
    ):
        assert f"val/{name}" in metrics, name
    assert "train/mIoU" in metrics and "train/loss" in metrics
    assert metrics["val/mIoU"] > 0.4
    # confusion matrix: attribute and JSON next to the CSV logs
    cm = task.confusion_matrices["val"]
    assert cm["class_names"] == ["low", "mid", "high"]
    matrix = torch.tensor(cm["matrix"])
    assert matrix.shape == (3, 3)
    # every non-ignored val pixel counted once (4 ignored px per chip)
    assert matrix.sum() == 16 * (16 * 16 - 4)
    saved = json.loads((tmp_path / "lightning_logs" / "version_0" / "confusion_matrices.json").read_text())
    assert saved["val"]["matrix"] == cm["matrix"]
    header = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "val/mIoU" in header and "train/loss" in header


def test_plain_tensor_model_is_wrapped(tk: Any) -> None:
    task = SemanticSegmentationTask(model=tk.PixelNet(3, 3), model_args={"num_classes": 3})
    out = task(torch.randn(1, 3, 8, 8))
    assert isinstance(out, ModelOutput) and out.output.shape == (1, 3, 8, 8)


def test_multiple_test_dataloaders_are_named(tk: Any) -> None:
    dm = tk.DataModule("segmentation", test_loaders=2, n=8)
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, test_dataloaders_names=["spain", "india"]
    )
    results = tk.trainer().test(task, dm, verbose=False)
    keys = set().union(*[r.keys() for r in results])
    assert {"test/spain/mIoU", "test/india/mIoU", "test/spain/loss", "test/india/IoU_2"} <= keys
    assert set(task.confusion_matrices) == {"test/spain", "test/india"}
    # two dataloaders but no names -> clear error
    task = SemanticSegmentationTask(model=tk.PixelNet(3, 3), model_args={"num_classes": 3})
    with pytest.raises(ConfigError, match="test_dataloaders_names"):
        tk.trainer().test(task, dm, verbose=False)


def test_aux_heads_from_factory_are_trained_and_logged(tk: Any, tiny_factory_name: str) -> None:
    dm = tk.DataModule("segmentation", n=8)
    task = SemanticSegmentationTask(
        model_factory=tiny_factory_name,
        model_args={"in_ch": 3, "num_classes": 3},
        aux_heads=[{"name": "aux1", "decoder": "FCNDecoder"}, AuxiliaryHead("aux2", "FCNDecoder")],
        aux_loss={"aux1": 0.5, "aux2": 0.2},
        loss={"ce": 1.0, "dice": 0.5},
    )
    call = tk.TinyFactory.calls[-1]
    assert call["task"] == "segmentation"
    assert [a.name for a in call["aux_decoders"]] == ["aux1", "aux2"]
    batch = next(iter(dm.train_dataloader()))
    losses = task.loss_handler.compute(task(batch["image"]), batch["mask"])
    assert set(losses) == {"loss", "ce_loss", "dice_loss", "aux_aux1_loss", "aux_aux2_loss"}
    expected = (
        losses["ce_loss"]
        + 0.5 * losses["dice_loss"]
        + 0.5 * losses["aux_aux1_loss"]
        + 0.2 * losses["aux_aux2_loss"]
    )
    assert torch.allclose(losses["loss"], expected)
    trainer = tk.trainer()
    aux_before = task.model.aux["aux1"].weight.detach().clone()
    trainer.fit(task, dm)
    assert not torch.equal(aux_before, task.model.aux["aux1"].weight)
    assert (
        "val/aux_aux1_loss" in trainer.callback_metrics and "train/aux_aux2_loss" in trainer.callback_metrics
    )


def test_aux_loss_must_match_heads(tk: Any, tiny_factory_name: str) -> None:
    task = SemanticSegmentationTask(
        model_factory=tiny_factory_name,
        model_args={"num_classes": 3},
        aux_heads=[{"name": "aux1", "decoder": "FCNDecoder"}],
    )
    with pytest.raises(ConfigError, match="heads without a weight: \\['aux1'\\]"):
        task.loss_handler.compute(task(torch.randn(1, 3, 8, 8)), torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ConfigError, match="bad aux_heads entry"):
        SemanticSegmentationTask(
            model_factory=tiny_factory_name, model_args={"num_classes": 3}, aux_heads=[{"nom": "x"}]
        )


@pytest.mark.parametrize(
    ("flags", "frozen"),
    [
        ({"freeze_backbone": True}, {"encoder"}),
        ({"freeze_decoder": True}, {"decoder"}),
        ({"freeze_head": True}, {"head"}),
        ({"freeze_backbone": True, "freeze_decoder": True}, {"encoder", "decoder"}),
    ],
)
def test_freezing(tk: Any, tiny_factory_name: str, flags: dict[str, bool], frozen: set[str]) -> None:
    task = SemanticSegmentationTask(model_factory=tiny_factory_name, model_args={"num_classes": 3}, **flags)
    for part in ("encoder", "decoder", "head"):
        grads = {p.requires_grad for p in getattr(task.model, part).parameters()}
        assert grads == ({False} if part in frozen else {True}), part
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    tk.trainer(max_steps=3, limit_val_batches=0).fit(task, tk.DataModule("segmentation", n=12))
    for name, param in task.model.named_parameters():
        changed = not torch.equal(before[name], param)
        assert changed == (name.split(".")[0] not in frozen), name


def test_freezing_a_plain_module_is_an_error(tk: Any) -> None:
    with pytest.raises(ConfigError, match="no freeze_encoder"):
        SemanticSegmentationTask(model=tk.PixelNet(), model_args={"num_classes": 3}, freeze_backbone=True)


def test_lr_overrides_make_param_groups(tk: Any, tiny_factory_name: str) -> None:
    task = SemanticSegmentationTask(
        model_factory=tiny_factory_name,
        model_args={"num_classes": 3},
        lr=1e-3,
        lr_overrides={"encoder": 1e-5, "head": 0.1},
        optimizer="AdamW",
        optimizer_hparams={"weight_decay": 0.05},
    )
    opt = task.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.AdamW)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert (
        by_name["encoder"]["lr"] == 1e-5 and by_name["head"]["lr"] == 0.1 and by_name["default"]["lr"] == 1e-3
    )
    assert all(g["weight_decay"] == 0.05 for g in opt.param_groups)
    enc_ids = {id(p) for p in task.model.encoder.parameters()}
    assert {id(p) for p in by_name["encoder"]["params"]} == enc_ids
    total = sum(len(g["params"]) for g in opt.param_groups)
    assert total == len(list(task.parameters()))
    with pytest.raises(ConfigError, match="match no trainable parameter"):
        SemanticSegmentationTask(
            model_factory=tiny_factory_name, model_args={"num_classes": 3}, lr_overrides={"backbone": 1e-5}
        ).configure_optimizers()


def test_checkpoint_round_trip_with_factory(tk: Any, tiny_factory_name: str, tmp_path: Any) -> None:
    dm = tk.DataModule("segmentation", n=8)
    task = SemanticSegmentationTask(
        model_factory=tiny_factory_name,
        model_args={"num_classes": 3},
        loss=["ce", "lovasz"],
        ignore_index=-1,
        scheduler="CosineAnnealingLR",
        scheduler_hparams={"T_max": 4},
    )
    trainer = tk.trainer()
    trainer.fit(task, dm)
    path = tmp_path / "task.ckpt"
    trainer.save_checkpoint(path)
    loaded = SemanticSegmentationTask.load_from_checkpoint(path)
    assert loaded.hparams["loss"] == ["ce", "lovasz"] and loaded.hparams["ignore_index"] == -1
    x = torch.randn(2, 3, 16, 16)
    task.eval()
    loaded.eval()
    assert torch.allclose(task(x).output, loaded(x).output)


def test_checkpoint_round_trip_with_ready_model(tk: Any, tmp_path: Any) -> None:
    task = SemanticSegmentationTask(model=tk.PixelNet(3, 3), model_args={"num_classes": 3})
    trainer = tk.trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(task, tk.DataModule("segmentation", n=8))
    path = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(path)
    assert "model" not in torch.load(path, weights_only=False)["hyper_parameters"]
    loaded = SemanticSegmentationTask.load_from_checkpoint(path, model=tk.PixelNet(3, 3))
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(task.eval()(x).output, loaded.eval()(x).output)


@pytest.mark.parametrize(
    "outputs",
    ["prediction", "probabilities", "logits", ["prediction", "probabilities", "logits"]],
)
def test_predict_step_outputs(tk: Any, outputs: str | list[str]) -> None:
    dm = tk.DataModule("segmentation", n=6)
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, output_on_inference=outputs
    )
    batches = tk.trainer().predict(task, dm)
    first = batches[0]
    wanted = {outputs} if isinstance(outputs, str) else set(outputs)
    assert set(first) == {"prediction", "filename", "crs", "transform"} | wanted
    assert first["prediction"].shape == (4, 16, 16) and first["prediction"].dtype == torch.int64
    assert first["filename"] == ["chip_0.tif", "chip_1.tif", "chip_2.tif", "chip_3.tif"]
    assert first["crs"] == [None] * 4 and first["transform"][1][2] == 500001.0
    if "probabilities" in wanted:
        probs = first["probabilities"]
        assert probs.shape == (4, 3, 16, 16) and torch.allclose(
            probs.sum(1), torch.ones(4, 16, 16), atol=1e-5
        )
        assert torch.equal(probs.argmax(1), first["prediction"])
    if "logits" in wanted:
        assert torch.equal(first["logits"].argmax(1), first["prediction"])


def test_bad_arguments_raise_config_errors(tk: Any, tiny_factory_name: str) -> None:
    net = tk.PixelNet()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": net}, "number of classes"),
        ({"model": net, "model_args": {"num_classes": 3}, "class_names": ["a", "b"]}, "inconsistent"),
        ({"model": net, "model_args": {"num_classes": 3, "backbone": "x"}}, "unused with a ready model"),
        ({"model": net, "model_factory": tiny_factory_name, "model_args": {"num_classes": 3}}, "not both"),
        ({"model_args": {"num_classes": 3}}, "no model"),
        ({"model": net, "model_args": {"num_classes": 3}, "loss": "bce"}, "valid names"),
        ({"model": net, "model_args": {"num_classes": 3}, "class_weights": [1.0]}, "3 classes"),
        (
            {"model": net, "model_args": {"num_classes": 3}, "output_on_inference": "probs"},
            "output_on_inference",
        ),
        ({"model": net, "model_args": {"num_classes": 3}, "optimizer": "Adamm"}, "unknown optimizer"),
        ({"model": net, "model_args": {"num_classes": 3}, "optimizer_hparams": {"betas1": 0.9}}, "betas1"),
        ({"model": net, "model_args": {"num_classes": 3}, "scheduler": "Cosine"}, "unknown scheduler"),
        (
            {"model": net, "model_args": {"num_classes": 3}, "tiled_inference_on_testing": True},
            "tiled_inference_parameters",
        ),
        (
            {"model": net, "model_args": {"num_classes": 3}, "tiled_inference_parameters": {"crops": 8}},
            "crops",
        ),
        ({"model": net, "model_args": {"num_classes": 3}, "plot_on_val": -2}, "plot_on_val"),
        ({"model_factory": "NoSuchFactory", "model_args": {"num_classes": 3}}, "Unknown model_factory"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            SemanticSegmentationTask(**kwargs)


def test_tiled_inference_in_predict_step(tk: Any) -> None:
    dm = tk.DataModule("segmentation", n=4, size=24)
    net = tk.PixelNet(3, 3)
    task = SemanticSegmentationTask(
        model=net,
        model_args={"num_classes": 3},
        output_on_inference="logits",
        tiled_inference_parameters={"crop": 16, "stride": 8},
    )
    sizes: list[tuple[int, ...]] = []
    net.register_forward_hook(lambda m, i, o: sizes.append(tuple(i[0].shape[-2:])))
    out = tk.trainer().predict(task, dm)[0]
    assert out["logits"].shape == (4, 3, 24, 24)
    assert set(sizes) == {(16, 16)}
    # a 3x3 conv net sees the same pixels inside tiles (reflect padding differs only near tile borders)
    full = net(dm.val_ds.images[:4])
    inner = (out["logits"] - full)[..., 4:-4, 4:-4]
    assert inner.abs().mean() < 0.05
    # validation and test through tiles too, when asked
    task = SemanticSegmentationTask(
        model=net,
        model_args={"num_classes": 3},
        tiled_inference_parameters={"crop": 16, "stride": 8},
        tiled_inference_on_validation=True,
        tiled_inference_on_testing=True,
    )
    sizes.clear()
    metrics = tk.trainer().validate(task, dm, verbose=False)[0]
    assert set(sizes) == {(16, 16)} and "val/mIoU" in metrics


class FigureLogger(Logger):
    """A logger whose experiment takes figures like TensorBoard's SummaryWriter (records them)."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, int]] = []

    @property
    def name(self) -> str:
        return "figures"

    @property
    def version(self) -> int:
        return 0

    @property
    def experiment(self) -> Any:
        return self

    def add_figure(self, tag: str, figure: Any, global_step: int) -> None:
        figure.canvas.draw()  # really render it
        self.figures.append((tag, global_step))

    def log_hyperparams(self, params: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass


def test_validation_figures(tk: Any, tmp_path: Any) -> None:
    dm = tk.DataModule("segmentation", n=8, ignore_index=-1)
    logger = FigureLogger()
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, ignore_index=-1, plot_on_val=2
    )
    tk.trainer(max_epochs=3, logger=[logger, CSVLogger(tmp_path)]).fit(task, dm)
    tags = [tag for tag, _ in logger.figures]
    # epochs 0 and 2 plot (every 2), 2 val batches each
    assert tags == ["val/sample_0", "val/sample_1"] * 2
    # off: no figures, and CSV-only logging works quietly
    logger = FigureLogger()
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, ignore_index=-1, plot_on_val=False
    )
    tk.trainer(logger=logger).fit(task, dm)
    assert logger.figures == []


def test_targets_outside_the_classes_get_a_clear_error(tk: Any) -> None:
    dm = tk.DataModule("segmentation", n=4, ignore_index=-1)
    task = SemanticSegmentationTask(model=tk.PixelNet(3, 3), model_args={"num_classes": 3})
    with pytest.raises(DataError, match="-1.*ignore_index"):
        tk.trainer(max_steps=1).fit(task, dm)


def test_model_output_mismatch_gets_a_clear_error(tk: Any) -> None:
    dm = tk.DataModule("segmentation", n=4)
    task = SemanticSegmentationTask(model=tk.PixelNet(3, 2), model_args={"num_classes": 3})
    with pytest.raises(ConfigError, match="3 classes"):
        tk.trainer(max_steps=1).fit(task, dm)
    task = SemanticSegmentationTask(model=torch.nn.Conv2d(3, 3, 2, stride=2), model_args={"num_classes": 3})
    with pytest.raises(ConfigError, match="does not match the mask"):
        tk.trainer(max_steps=1).fit(task, dm)


def test_bf16_mixed_training(tk: Any) -> None:
    dm = tk.DataModule("segmentation", n=8, ignore_index=-1)
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, ignore_index=-1, loss=["ce", "dice", "lovasz"]
    )
    trainer = tk.trainer(max_epochs=2, precision="bf16-mixed")
    trainer.fit(task, dm)
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert trainer.callback_metrics["val/loss"].dtype == torch.float32


@pytest.mark.parametrize("loss", ["ce", "dice", "focal", "jaccard", "lovasz"])
@pytest.mark.parametrize("ignore_index", [None, -1, 0])
def test_every_loss_through_the_task(tk: Any, loss: str, ignore_index: int | None) -> None:
    dm = tk.DataModule("segmentation", n=4, ignore_index=-1 if ignore_index == -1 else None)
    task = SemanticSegmentationTask(
        model=tk.PixelNet(3, 3), model_args={"num_classes": 3}, loss=loss, ignore_index=ignore_index
    )
    batch = next(iter(dm.train_dataloader()))
    target = task._target(batch)
    losses = task.loss_handler.compute(task(batch["image"]), target)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    grads = [p.grad for p in task.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
