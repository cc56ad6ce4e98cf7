"""ReconstructionTask with the reference's arguments: the FullModelFactory form, ignore_index,
masked_metric, figures, and continuing the decoder of a checkpoint in the published MAE layout."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from geoft.errors import ConfigError
from geoft.models.mae import ReconstructionOutput, masked_patch_loss, patchify, unpatchify
from geoft.tasks import ReconstructionTask
from geoft.tasks.metrics import ReconstructionErrors
from geoft.tasks.reconstruction_args import PUBLISHED_DECODER, geoft_model_args

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
ENCODER = {"bands": BANDS, "img_size": 32, "depth": 1}
DECODER = {"decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}


def reference_task(**model_args: object) -> ReconstructionTask:
    return ReconstructionTask(
        model_factory="FullModelFactory",
        model_args={"model": "prithvi_eo_tiny_mae", "pretrained": False, **ENCODER, **DECODER, **model_args},
    )


def test_full_model_factory_form_means_the_published_mae() -> None:
    args = geoft_model_args(
        "terratorch.models.FullModelFactory",
        {"model": "prithvi_eo_v2_300_mae", "pretrained": True, "num_frames": 3},
    )
    assert args == {
        "backbone": "prithvi_eo_v2_300",
        "backbone_pretrained": True,
        "backbone_num_frames": 3,
        **PUBLISHED_DECODER,
    }
    task = reference_task()
    assert len(task.model.encoder.blocks) == 1 and task.model.decoder.dim == 32
    with pytest.raises(ConfigError, match="EncoderDecoderFactory.*not supported"):
        ReconstructionTask(model_factory="EncoderDecoderFactory", model_args={"backbone": "prithvi_eo_tiny"})
    with pytest.raises(ConfigError, match="Prithvi MAE"):
        ReconstructionTask(model_factory="FullModelFactory", model_args={"model": "prithvi_eo_tiny"})
    with pytest.raises(ConfigError, match="tiled_inference_parameters"):
        reference_task().__class__(
            model_args={"backbone": "prithvi_eo_tiny"}, tiled_inference_parameters={"h_crop": 8}
        )
    with pytest.raises(ConfigError, match="modalities"):
        ReconstructionTask(model_args={"backbone": "prithvi_eo_tiny"}, modalities=["S2L2A", "S1GRD"])


def test_unpatchify_inverts_patchify() -> None:
    x = torch.randn(2, 3, 4, 32, 48)
    patches = patchify(x, (2, 16, 16))
    assert torch.equal(unpatchify(patches, (2, 16, 16), x.shape), x)


def test_ignore_index_and_masked_metric() -> None:
    target = torch.tensor([[[1.0, -1.0], [2.0, 2.0]]])  # [B=1, L=2, P=2]
    prediction = torch.tensor([[[0.0, 5.0], [0.0, 0.0]]])
    out = ReconstructionOutput(prediction, target, torch.tensor([[1.0, 0.0]]))  # patch 0 hidden
    assert masked_patch_loss(out) == pytest.approx((1 + 36) / 2)
    assert masked_patch_loss(out, ignore_value=-1.0) == pytest.approx(1.0)
    hidden, every = ReconstructionErrors(), ReconstructionErrors()
    hidden.update(out, -1.0, hidden_only=True)
    every.update(out, -1.0, hidden_only=False)
    assert hidden.compute()["MSE"] == pytest.approx(1.0)
    assert every.compute()["MSE"] == pytest.approx((1 + 4 + 4) / 3)
    assert every.compute()["MAE"] == pytest.approx((1 + 2 + 2) / 3)
    assert every.compute()["RMSE"] == pytest.approx(3**0.5)


def test_validation_figure_shows_masked_input_and_reconstruction() -> None:
    task = ReconstructionTask(
        model_args={
            "backbone": "prithvi_eo_tiny",
            **{f"backbone_{k}": v for k, v in ENCODER.items()},
            **DECODER,
        },
        plot_on_val=1,
    )
    image = torch.randn(2, 6, 32, 32)
    outputs = task.validation_step({"image": image}, 0)
    masked, shown = outputs["target"], outputs["output"]
    assert masked.shape == shown.shape == image.shape
    hidden = torch.isnan(masked)
    assert 0 < hidden.float().mean() < 1  # some patches blank, not all
    assert torch.equal(shown[~hidden], image[~hidden])  # visible patches come from the input
    figure = task.sample_figure(image[0], masked[0], shown[0], "val epoch 0")
    assert [ax.get_title() for ax in figure.axes] == ["image", "masked", "reconstruction"]


def published_layout(task: ReconstructionTask, flat: bool) -> dict[str, torch.Tensor]:
    """The task's MAE as a published Prithvi-EO checkpoint: 2.0 (``encoder.``/``decoder.``) or 1.0 (flat)."""
    state = {k: v.clone() for k, v in task.model.state_dict().items()}
    state["decoder.decoder_pos_embed"] = torch.zeros(1, 5, task.model.decoder.dim)
    state["encoder.pos_embed"] = torch.zeros(1, 5, task.model.encoder.embed_dim)
    if flat:
        state = {
            k.split(".", 1)[1] if k.startswith("encoder.") else k.split(".", 1)[1]: v
            for k, v in state.items()
        }
    return state


@pytest.mark.parametrize("flat", [False, True], ids=["prithvi_eo_2", "prithvi_eo_1"])
def test_decoder_continues_a_published_checkpoint(tmp_path: Path, flat: bool) -> None:
    torch.manual_seed(0)
    source = reference_task()
    path = tmp_path / "Prithvi_MAE.pt"
    torch.save(published_layout(source, flat), path)
    task = reference_task(ckpt_path=str(path))
    for key, value in source.model.state_dict().items():
        assert torch.equal(task.model.state_dict()[key], value), key


def test_decoder_of_other_sizes_or_bands_starts_fresh_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    source = reference_task()
    path = tmp_path / "Prithvi_MAE.pt"
    torch.save(published_layout(source, flat=False), path)
    with caplog.at_level(logging.WARNING):
        wider = reference_task(ckpt_path=str(path), decoder_embed_dim=64, decoder_num_heads=4)
    assert "decoder_embed_dim: 32" in caplog.text and str(path) in caplog.text
    assert torch.equal(
        wider.model.encoder.patch_embed.proj.weight, source.model.encoder.patch_embed.proj.weight
    )

    other_bands = reference_task(
        ckpt_path=str(path), bands=["RED", "GREEN", "BLUE", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    )
    own, src = other_bands.model.decoder.state_dict(), source.model.decoder.state_dict()
    assert torch.equal(own["decoder_embed.weight"], src["decoder_embed.weight"])
    assert not torch.equal(own["decoder_pred.weight"], src["decoder_pred.weight"])


def test_a_reference_shaped_config_runs_through_geoft_fit(tmp_path: Path) -> None:
    import yaml

    from geoft.cli import main
    from geoft.datasets.demo import generate_demo_dataset

    info = generate_demo_dataset(tmp_path / "demo", n_train=4, n_val=2, n_test=0, size=32, seed=1)
    config = {
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "enable_progress_bar": False},
        "data": {
            "class_path": "terratorch.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": {**info.datamodule_init_args(), "batch_size": 2, "num_workers": 0},
        },
        "model": {
            "class_path": "terratorch.tasks.ReconstructionTask",
            "init_args": {
                "model_factory": "FullModelFactory",
                "model_args": {"model": "prithvi_eo_tiny_mae", "pretrained": False, **ENCODER, **DECODER},
                "loss": "mse",
                "ignore_index": -1,
                "freeze_encoder": False,
                "freeze_decoder": False,
                "plot_on_val": False,
            },
        },
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-4}},
    }
    path = tmp_path / "reconstruction.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path), "--trainer.default_root_dir", str(tmp_path / "runs")]) == 0
    (metrics,) = (tmp_path / "runs").rglob("metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"train/loss_epoch", "val/loss", "val/RMSE", "val/MSE", "val/MAE", "train/RMSE"} <= set(header), (
        header
    )
