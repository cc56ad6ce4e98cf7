"""``EmbeddingGenerationTask`` (the reference's name): ``geoft predict`` with it writes one embedding per
image of the datamodule's predict split, as GeoParquet or ``.npz`` (see :mod:`geoft.embeddings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule
from torch import Tensor

from geoft.embeddings import FORMATS, Embedder, EmbeddingTable, write_embeddings
from geoft.errors import ConfigError


class EmbeddingGenerationTask(LightningModule):
    """Embed images with a backbone; nothing is trained.

    Args:
        model_args: ``backbone`` (a registry name) and its arguments as ``backbone_<arg>``
            (``backbone_pretrained``, ``backbone_ckpt_path``, ``backbone_bands``...).
        output_dir: folder of the output file ``embeddings.parquet`` / ``embeddings.npz``.
        embed_file_key: the batch key naming each image (default ``filename``).
        layers: which backbone output to embed, one index (default ``[-1]``, the last).
        output_format: ``parquet`` (GeoParquet with footprints, default) or ``npz``.
        has_cls: whether the backbone's tokens start with a CLS token (default: found from the backbone).
        embedding_pooling: ``mean`` (default), ``max`` or ``cls``.
        freeze_backbone: must stay True (the task does not train).
    """

    writes_own_predictions = True  # geoft predict adds no GeoTIFF writer

    def __init__(
        self,
        model_args: dict[str, Any],
        output_dir: str = "embeddings",
        embed_file_key: str = "filename",
        layers: list[int] | None = None,
        output_format: str = "parquet",
        *,
        has_cls: bool | None = None,
        embedding_pooling: str | None = "mean",
        freeze_backbone: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if output_format not in FORMATS:
            raise ConfigError(
                f"output_format {output_format!r} is not supported", hint=f"use one of {', '.join(FORMATS)}"
            )
        layers = [-1] if layers is None else list(layers)
        if len(layers) != 1:
            raise ConfigError(f"layers must name one backbone output, got {layers}", hint="e.g. layers: [-1]")
        if not freeze_backbone:
            raise ConfigError("EmbeddingGenerationTask does not train; freeze_backbone must be true")
        from geoft.models.factories._common import split_prefixed
        from geoft.models.factories.encoder_decoder import build_backbone

        args = dict(model_args or {})
        backbone = args.pop("backbone", None)
        if backbone is None:
            raise ConfigError("model_args.backbone is missing", hint="e.g. backbone: prithvi_eo_v2_300")
        routed = split_prefixed(args, ("backbone",), ["backbone"], "EmbeddingGenerationTask.model_args")
        self.embedder = Embedder(
            build_backbone(backbone, routed["backbone"]), embedding_pooling or "mean", layers[0]
        )
        if has_cls is not None:
            self.embedder.has_cls = has_cls
        self.embedder.requires_grad_(False)
        self.table = EmbeddingTable()

    def forward(self, x: Tensor) -> Tensor:
        return self.embedder(x)

    def on_predict_epoch_start(self) -> None:
        self.table = EmbeddingTable()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        image = batch["image"]
        vectors = self(image)
        size = len(vectors)
        names = batch.get(self.hparams["embed_file_key"]) or [None] * size
        self.table.add(
            vectors,
            names,
            batch.get("transform") or [None] * size,
            batch.get("crs") or [None] * size,
            tuple(image.shape[-2:]),
        )
        return {"embedding": vectors.cpu(), "filename": names}

    def on_predict_epoch_end(self) -> None:
        if self.trainer.is_global_zero and len(self.table):
            fmt = self.hparams["output_format"]
            write_embeddings(self.table, Path(self.hparams["output_dir"]) / f"embeddings.{fmt}", fmt)

    def configure_optimizers(self) -> None:
        raise ConfigError("EmbeddingGenerationTask does not train; use geoft predict")


__all__ = ["EmbeddingGenerationTask"]
