"""What PixelWiseModel and ScalarOutputModel share: the encoder -> necks -> decoder path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.model import Model, freeze_module
from geoft.models.necks import NeckChain
from geoft.models.padding import as_multiple, check_padding_mode, pad_to_multiple
from geoft.models.peft import has_adapters
from geoft.task_kinds import DENSE_AND_IMAGE_KINDS, TaskKind

TASKS: tuple[TaskKind, ...] = DENSE_AND_IMAGE_KINDS


class AuxiliaryHeadModule(nn.Module):
    """An auxiliary decoder and its head (``nn.Identity`` when the decoder includes one)."""

    def __init__(self, decoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.head = head

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.head(self.decoder(features))


class EncoderDecoderModel(Model):
    """Encoder, optional neck chain, decoder, head and auxiliary heads, with input padding.

    Args:
        task: a :class:`~geoft.task_kinds.TaskKind` (or its value).
        encoder: backbone returning a list of features.
        decoder: maps the (necked) features to one tensor.
        head: maps the decoder output to the prediction (``nn.Identity`` if the decoder includes it).
        neck: a :class:`NeckChain` (or None).
        aux_heads: name -> :class:`AuxiliaryHeadModule`, fed the same features as the decoder.
        patch_size: pad inputs to a multiple of this (an int, (h, w) or a ViT's (t, h, w)); None: no padding.
        padding: ``reflect`` (default), ``zero``, ``replicate`` or ``none``.
    """

    tasks: tuple[TaskKind, ...] = TASKS

    def __init__(
        self,
        task: TaskKind | str,
        encoder: nn.Module,
        decoder: nn.Module,
        head: nn.Module | None = None,
        neck: NeckChain | None = None,
        aux_heads: Mapping[str, AuxiliaryHeadModule] | None = None,
        patch_size: int | tuple[int, ...] | None = None,
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        try:
            kind = TaskKind.parse(task)
        except ConfigError:
            kind = None
        if kind not in self.tasks:
            raise ConfigError(
                f"{type(self).__name__} does not do task {task!r}; it does {', '.join(map(str, self.tasks))}"
            )
        self.task = kind
        self.encoder = encoder
        self.neck = neck if neck is not None else NeckChain([])
        self.decoder = decoder
        self.head = head if head is not None else nn.Identity()
        self.aux_heads = nn.ModuleDict(dict(aux_heads or {}))
        self.patch_size = as_multiple(patch_size)
        self.padding = check_padding_mode(padding)

    # -- freezing ---------------------------------------------------------------------------------
    def freeze_encoder(self) -> None:
        if has_adapters(self.encoder):
            raise ConfigError(
                "freeze_backbone would freeze the backbone's peft adapters too",
                hint="with model_args.peft_config set freeze_backbone: false; peft already keeps the "
                "backbone's own weights fixed",
            )
        freeze_module(self.encoder)

    def freeze_decoder(self) -> None:
        freeze_module(self.neck)
        freeze_module(self.decoder)
        for aux in self.aux_heads.values():
            freeze_module(aux.decoder)

    def freeze_head(self) -> None:
        freeze_module(self.head)
        for aux in self.aux_heads.values():
            freeze_module(aux.head)

    # -- forward pieces ---------------------------------------------------------------------------
    def _features(
        self, x: Tensor | Mapping[str, Tensor], temporal_coords: Tensor | None, location_coords: Tensor | None
    ) -> tuple[list[Tensor], tuple[int, int], tuple[int, int]]:
        """Pad, run the encoder and the necks; return the features, the original and the padded ``(H, W)``.

        ``x`` is one image tensor, or ``{modality: tensor}`` for multi-modal encoders (e.g. TerraMind),
        all of one height and width.
        """
        if isinstance(x, Mapping):
            return self._modality_features(x, temporal_coords, location_coords)
        if x.ndim not in (4, 5):
            raise ConfigError(
                f"model input must be [B, C, H, W] or [B, C, T, H, W], got shape {tuple(x.shape)}"
            )
        tensors = [x]
        # Plain shape entries, not int(): under torch.export they stay symbolic (dynamic height/width).
        size = (tensors[0].shape[-2], tensors[0].shape[-1])
        x = pad_to_multiple(x, self.patch_size, self.padding)
        coords: dict[str, Any] = {}
        if temporal_coords is not None:
            coords["temporal_coords"] = temporal_coords
        if location_coords is not None:
            coords["location_coords"] = location_coords
        features = self.encoder(x, **coords)
        if isinstance(features, torch.Tensor):
            features = [features]
        padded = (x.shape[-2], x.shape[-1])
        return self.neck(list(features), image_size=padded), size, padded

    def _modality_features(
        self, x: Mapping[str, Tensor], temporal_coords: Tensor | None, location_coords: Tensor | None
    ) -> tuple[list[Tensor], tuple[int, int], tuple[int, int]]:
        sizes = {name: tuple(t.shape[-2:]) for name, t in x.items()}
        if not x or len(set(sizes.values())) != 1:
            raise ConfigError(
                f"a dict input needs one or more modalities of one height and width, got sizes {sizes}",
                hint="resample the modalities to one grid before batching them",
            )
        padded_inputs = {name: pad_to_multiple(t, self.patch_size, self.padding) for name, t in x.items()}
        first = next(iter(padded_inputs.values()))
        coords = {
            k: v
            for k, v in (("temporal_coords", temporal_coords), ("location_coords", location_coords))
            if v is not None
        }
        features = self.encoder(padded_inputs, **coords)
        if isinstance(features, torch.Tensor):
            features = [features]
        padded = (first.shape[-2], first.shape[-1])
        size = next(iter(sizes.values()))
        return self.neck(list(features), image_size=padded), (int(size[0]), int(size[1])), padded
