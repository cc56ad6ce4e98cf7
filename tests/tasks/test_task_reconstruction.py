"""ReconstructionTask: the masked-patch loss falls on demo data, and the adapted encoder loads strictly
into EncoderDecoderFactory through backbone_ckpt_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets.demo import generate_demo_dataset
from geoft.errors import ConfigError
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.models.mae import patchify
from geoft.tasks import ReconstructionTask

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
MODEL_ARGS = {
    "backbone": "prithvi_eo_tiny",
    "backbone_pretrained": False,
    "backbone_bands": BANDS,
    "backbone_img_size": 64,
    "backbone_depth": 1,
    "decoder_embed_dim": 64,
    "decoder_depth": 1,
    "mask_ratio": 0.5,
}


def test_patchify_follows_the_token_order() -> None:
    x = torch.arange(2 * 3 * 1 * 4 * 6, dtype=torch.float32).reshape(2, 3, 1, 4, 6)
    patches = patchify(x, (1, 2, 3))
    assert patches.shape == (2, 4, 18)
    # token 1 is the top row's second patch: rows 0-1, columns 3-5, channel last
    assert torch.equal(patches[0, 1].reshape(2, 3, 3)[..., 0], x[0, 0, 0, 0:2, 3:6])


def test_loss_falls_on_demo_data_and_the_encoder_loads_strictly(tmp_path: Path, tk: Any) -> None:
    torch.manual_seed(0)
    info = generate_demo_dataset(tmp_path / "demo", n_train=8, n_val=2, n_test=0, size=64, seed=2)
    args = info.datamodule_init_args()
    dm = GenericNonGeoSegmentationDataModule(**{**args, "batch_size": 4})
    task = ReconstructionTask(model_args=MODEL_ARGS, lr=3e-3)
    dm.setup("fit")
    batch = dm.batch_transform("val")(next(iter(dm.train_dataloader())))

    def loss() -> float:
        from geoft.models.mae import masked_patch_loss

        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            return float(masked_patch_loss(task.model(batch["image"], generator=g)))

    before = loss()
    trainer = tk.trainer(max_epochs=12, logger=CSVLogger(tmp_path / "logs"))
    trainer.fit(task, dm)
    after = loss()
    assert after < 0.8 * before, (before, after)
    assert "val/loss" in trainer.callback_metrics

    encoder_file = Path(trainer.logger.log_dir) / "encoder.pt"
    assert encoder_file.is_file()
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="prithvi_eo_tiny",
        decoder="UperNetDecoder",
        num_classes=5,
        backbone_ckpt_path=str(encoder_file),
        backbone_bands=BANDS,
        backbone_img_size=64,
        backbone_depth=1,
        decoder_channels=16,
    )
    report = model.encoder.load_report
    assert report is not None and any(k.startswith("decoder.") for k in report.dropped)
    adapted = task.model.encoder.state_dict()
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, adapted[key]), key
    # the task's own Lightning checkpoint loads the same way
    trainer.save_checkpoint(tmp_path / "mae.ckpt")
    again = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="prithvi_eo_tiny",
        decoder="UperNetDecoder",
        num_classes=5,
        backbone_ckpt_path=str(tmp_path / "mae.ckpt"),
        backbone_bands=BANDS,
        backbone_img_size=64,
        backbone_depth=1,
        decoder_channels=16,
    )
    assert torch.equal(again.encoder.patch_embed.proj.weight, adapted["patch_embed.proj.weight"])


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="mask_ratio"):
        ReconstructionTask(model_args={**MODEL_ARGS, "mask_ratio": 1.0})
    with pytest.raises(ConfigError, match="Prithvi encoder"):
        ReconstructionTask(model_args={"backbone": "timm_resnet18", "backbone_pretrained": False})
    with pytest.raises(ConfigError, match="reconstruction loss"):
        ReconstructionTask(model_args=MODEL_ARGS, loss="ce")
    with pytest.raises(ConfigError, match="decoder_heads"):
        ReconstructionTask(model_args={**MODEL_ARGS, "decoder_heads": 2})
