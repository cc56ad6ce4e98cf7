"""Continued pre-training: masked-autoencoder reconstruction of unlabeled images with a Prithvi encoder.

Any geoft datamodule serves (only ``image`` is read; labels, if present, are ignored). When training
ends, the encoder is written in the published Prithvi layout to ``<log_dir>/encoder.pt`` (and
:meth:`ReconstructionTask.save_encoder` writes it anywhere); a fine-tuning config then loads it with
``model_args.backbone_ckpt_path``. The task's own Lightning checkpoint loads the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule
from torch import Tensor

from geoft.errors import ConfigError
from geoft.models.mae import MaskedAutoencoder, ReconstructionOutput, masked_patch_loss
from geoft.storage import temporary_path
from geoft.tasks.optimizers import (
    build_optimizer,
    build_scheduler,
    check_optimizer,
    check_scheduler,
    parameter_groups,
)
from geoft.training_guards import OutOfMemoryGuard, TrainingGuard

ENCODER_FILE = "encoder.pt"
MAE_ARGS = ("mask_ratio", "decoder_embed_dim", "decoder_depth", "decoder_num_heads")
LOSSES = ("mse", "mae")


class ReconstructionTask(LightningModule):
    """Masked-autoencoder reconstruction (the reference's name).

    Args:
        model_args: ``backbone`` (a Prithvi backbone name, e.g. ``prithvi_eo_v2_300``), its arguments as
            ``backbone_<arg>`` (``backbone_pretrained``, ``backbone_ckpt_path``, ``backbone_bands``...),
            and the MAE's ``mask_ratio`` (0.75), ``decoder_embed_dim`` (128), ``decoder_depth`` (2),
            ``decoder_num_heads`` (4).
        loss: ``mse`` (default) or ``mae``, on the pixels of the hidden patches.
        lr, optimizer, optimizer_hparams, scheduler, scheduler_hparams: as the other tasks.
        freeze_encoder: train only the decoder (a check of the decoder alone).
        freeze_decoder: keep the decoder fixed.

    Logged: ``train/loss``, ``val/loss``, ``test/loss`` (hidden patches only).
    ``predict_step`` returns ``reconstruction`` ``[B, L, t*h*w*C]``, ``mask`` ``[B, L]`` and ``filename``.
    """

    def __init__(
        self,
        model_args: dict[str, Any],
        loss: str = "mse",
        lr: float = 1e-3,
        optimizer: str | None = None,
        optimizer_hparams: dict[str, Any] | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict[str, Any] | None = None,
        freeze_encoder: bool = False,
        freeze_decoder: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if loss not in LOSSES:
            raise ConfigError(f"unknown reconstruction loss {loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        check_optimizer(optimizer or "Adam", optimizer_hparams)
        if scheduler:
            check_scheduler(scheduler, scheduler_hparams)
        self.configure_models()

    def configure_models(self) -> None:
        from geoft.models.factories._common import split_prefixed
        from geoft.models.factories.encoder_decoder import build_backbone

        args = dict(self.hparams["model_args"] or {})
        backbone = args.pop("backbone", None)
        if backbone is None:
            raise ConfigError("model_args.backbone is missing", hint="e.g. backbone: prithvi_eo_v2_300")
        mae = {k: args.pop(k) for k in MAE_ARGS if k in args}
        routed = split_prefixed(args, ("backbone",), ["backbone", *MAE_ARGS], "ReconstructionTask.model_args")
        self.model = MaskedAutoencoder(build_backbone(backbone, routed["backbone"]), **mae)
        if self.hparams["freeze_encoder"]:
            self.model.freeze_encoder()
        if self.hparams["freeze_decoder"]:
            self.model.freeze_decoder()

    def configure_callbacks(self) -> list[Callback]:
        return [TrainingGuard(), OutOfMemoryGuard()]

    def forward(self, x: Tensor) -> ReconstructionOutput:
        return self.model(x)

    def _step(self, batch: dict[str, Any], stage: str) -> Tensor:
        out = self(batch["image"])
        loss = masked_patch_loss(out, self.hparams["loss"])
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=out.mask.shape[0])
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        out = self(batch["image"])
        return {
            "reconstruction": out.prediction.detach().float().cpu(),
            "mask": out.mask.cpu(),
            "filename": batch.get("filename"),
        }

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The MAE's weights in the published Prithvi layout (``encoder.*``, ``decoder.*``), on the CPU."""
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def save_encoder(self, path: str | Path) -> Path:
        """Write :meth:`encoder_state_dict` to ``path`` (atomically) for ``backbone_ckpt_path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(path)
        torch.save(self.encoder_state_dict(), tmp)
        os.replace(tmp, path)
        return path

    def on_train_end(self) -> None:
        log_dir = getattr(self.logger, "log_dir", None) if self.logger is not None else None
        if log_dir and self.trainer.is_global_zero:
            self.save_encoder(Path(log_dir) / ENCODER_FILE)

    def configure_optimizers(self) -> dict[str, Any]:
        groups = parameter_groups(self.named_parameters(), None)
        hp = self.hparams
        optimizer = build_optimizer(hp["optimizer"] or "Adam", groups, hp["lr"], hp["optimizer_hparams"])
        if not hp["scheduler"]:
            return {"optimizer": optimizer}
        scheduler = build_scheduler(
            hp["scheduler"],
            optimizer,
            hp["scheduler_hparams"],
            "val/loss",
            lambda _: int(self.trainer.max_epochs),
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


__all__ = ["ENCODER_FILE", "ReconstructionTask"]
