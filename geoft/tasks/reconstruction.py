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
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.mae import MaskedAutoencoder, ReconstructionOutput, masked_patch_loss, unpatchify
from geoft.models.mae_weights import continue_published_decoder
from geoft.storage import temporary_path
from geoft.tasks import building
from geoft.tasks.callbacks import SampleFigures
from geoft.tasks.metrics import ReconstructionErrors
from geoft.tasks.optimizers import check_optimizer, check_scheduler, configure_optimization
from geoft.tasks.reconstruction_args import MAE_ARGS, check_unsupported, geoft_model_args
from geoft.training_guards import OutOfMemoryGuard, TrainingGuard

ENCODER_FILE = "encoder.pt"
LOSSES = ("mse", "mae")
STAGES = ("train", "val", "test")


class ReconstructionTask(LightningModule):
    """Masked-autoencoder reconstruction (the reference's name and arguments).

    Args:
        model_args: ``backbone`` (a Prithvi backbone name, e.g. ``prithvi_eo_v2_300``), its arguments as
            ``backbone_<arg>`` (``backbone_pretrained``, ``backbone_ckpt_path``, ``backbone_bands``...),
            and the MAE's ``mask_ratio`` (0.75), ``decoder_embed_dim`` (128), ``decoder_depth`` (2),
            ``decoder_num_heads`` (4). With ``model_factory: FullModelFactory``, the reference's form:
            ``model: prithvi_eo_v2_300_mae``, ``pretrained``, and the published decoder's sizes by default.
        model_factory: ``None`` (geoft's form) or ``FullModelFactory`` (the reference's form).
        loss: ``mse`` (default) or ``mae``, on the pixels of the hidden patches.
        ignore_index: input pixels of this value count for nothing (NaN pixels never count).
        masked_metric: RMSE, MSE and MAE over the hidden patches only (default) or over every patch.
        lr, optimizer, optimizer_hparams, scheduler, scheduler_hparams: as the other tasks.
        freeze_encoder: train only the decoder (a check of the decoder alone).
        freeze_decoder: keep the decoder fixed.
        plot_on_val: log input / masked input / reconstruction figures every N validation epochs to
            loggers that take figures (False or 0: never).
        tiled_inference_parameters, modalities: the reference's arguments; refused by name when set.

    When the encoder starts from a published (or local) Prithvi MAE checkpoint, the decoder continues
    that checkpoint's decoder if its sizes match (see :mod:`geoft.models.mae_weights`).

    Logged: ``{stage}/loss`` (hidden patches), ``{stage}/RMSE``, ``{stage}/MSE``, ``{stage}/MAE``.
    ``predict_step`` returns ``reconstruction`` ``[B, L, t*h*w*C]``, ``mask`` ``[B, L]`` and ``filename``.
    """

    def __init__(
        self,
        model_args: dict[str, Any],
        model_factory: str | None = None,
        loss: str = "mse",
        ignore_index: float | None = None,
        masked_metric: bool = True,
        lr: float = 1e-3,
        optimizer: str | None = None,
        optimizer_hparams: dict[str, Any] | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict[str, Any] | None = None,
        freeze_encoder: bool = False,
        freeze_decoder: bool = False,
        plot_on_val: bool | int = False,
        tiled_inference_parameters: dict[str, Any] | None = None,
        modalities: list[str] | None = None,
        rgb_indices: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if loss not in LOSSES:
            raise ConfigError(f"unknown reconstruction loss {loss!r}", hint=f"use one of {', '.join(LOSSES)}")
        check_unsupported(tiled_inference_parameters, modalities)
        check_optimizer(optimizer or "Adam", optimizer_hparams)
        if scheduler:
            check_scheduler(scheduler, scheduler_hparams)
        self.plot_every = building.check_plot(plot_on_val)
        self.configure_models()
        self.configure_metrics()

    def configure_models(self) -> None:
        from geoft.models.factories._common import split_prefixed
        from geoft.models.factories.encoder_decoder import build_backbone

        args = geoft_model_args(self.hparams["model_factory"], self.hparams["model_args"])
        backbone = args.pop("backbone", None)
        if backbone is None:
            raise ConfigError("model_args.backbone is missing", hint="e.g. backbone: prithvi_eo_v2_300")
        mae = {k: args.pop(k) for k in MAE_ARGS if k in args}
        routed = split_prefixed(args, ("backbone",), ["backbone", *MAE_ARGS], "ReconstructionTask.model_args")
        self.model = MaskedAutoencoder(build_backbone(backbone, routed["backbone"]), **mae)
        continue_published_decoder(self.model, backbone, routed["backbone"])
        if self.hparams["freeze_encoder"]:
            self.model.freeze_encoder()
        if self.hparams["freeze_decoder"]:
            self.model.freeze_decoder()

    def configure_metrics(self) -> None:
        # keyed "<stage>_errors": a key "train" would shadow nn.Module.train
        self.errors = nn.ModuleDict({f"{stage}_errors": ReconstructionErrors() for stage in STAGES})

    def configure_callbacks(self) -> list[Callback]:
        callbacks: list[Callback] = [TrainingGuard(), OutOfMemoryGuard()]
        if self.plot_every:
            callbacks.append(SampleFigures(self.plot_every))
        return callbacks

    def forward(self, x: Tensor) -> ReconstructionOutput:
        return self.model(x)

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, ReconstructionOutput]:
        out = self(batch["image"])
        ignore = self.hparams["ignore_index"]
        loss = masked_patch_loss(out, self.hparams["loss"], ignore)
        batch_size = out.mask.shape[0]
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=batch_size)
        self.errors[f"{stage}_errors"].update(out, ignore, self.hparams["masked_metric"])
        return loss, out

    def _log_errors(self, stage: str) -> None:
        errors = self.errors[f"{stage}_errors"]
        if errors.update_called:
            self.log_dict({f"{stage}/{k}": v for k, v in errors.compute().items()})
        errors.reset()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        _, out = self._step(batch, "val")
        return self._figure_outputs(batch, out)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        _, out = self._step(batch, "test")
        return self._figure_outputs(batch, out)

    def on_train_epoch_end(self) -> None:
        self._log_errors("train")

    def on_validation_epoch_end(self) -> None:
        self._log_errors("val")

    def on_test_epoch_end(self) -> None:
        self._log_errors("test")

    def _figure_outputs(self, batch: dict[str, Any], out: ReconstructionOutput) -> dict[str, Tensor]:
        """The masked input and the reconstruction as images, for :class:`SampleFigures`."""
        if not self.plot_every:
            return {}
        image = batch["image"]
        shape = image.unsqueeze(2).shape if image.ndim == 4 else image.shape
        patch = self.model.encoder.patch_size
        hidden = out.mask.unsqueeze(-1).bool()
        masked = unpatchify(out.target.masked_fill(hidden, float("nan")), patch, shape)
        shown = unpatchify(torch.where(hidden, out.prediction.to(out.target.dtype), out.target), patch, shape)
        if image.ndim == 4:
            masked, shown = masked[:, :, 0], shown[:, :, 0]
        return {"target": masked.detach(), "output": shown.detach()}

    def sample_figure(self, image: Tensor, target: Tensor, output: Tensor, title: str) -> Any:
        from geoft.tasks.plotting import reconstruction_figure

        return reconstruction_figure(image, target, output, self.hparams["rgb_indices"], title)

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
        return configure_optimization(self, None, "val/loss")


__all__ = ["ENCODER_FILE", "ReconstructionTask"]
