"""PixelWiseModel: segmentation and pixel-wise regression (encoder -> necks -> decoder -> head)."""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models._assembly import AuxiliaryHeadModule, EncoderDecoderModel
from geoft.models.model import ModelOutput
from geoft.models.necks import NeckChain
from geoft.models.padding import crop_to
from geoft.task_kinds import PIXEL_KINDS, TaskKind


class PixelWiseModel(EncoderDecoderModel):
    """A per-pixel model. Inputs whose size is not a multiple of the patch size are padded and the
    prediction is cropped back; with ``rescale`` the prediction is bilinearly resized to the input.

    Output: ``[B, num_classes, H, W]`` logits (segmentation) or ``[B, H, W]`` (regression with
    one output; ``[B, K, H, W]`` for K outputs). See :class:`EncoderDecoderModel` for the arguments.
    """

    tasks = PIXEL_KINDS

    def __init__(
        self,
        task: str,
        encoder: nn.Module,
        decoder: nn.Module,
        head: nn.Module | None = None,
        neck: NeckChain | None = None,
        aux_heads: Mapping[str, AuxiliaryHeadModule] | None = None,
        patch_size: int | tuple[int, ...] | None = None,
        padding: str = "reflect",
        rescale: bool = True,
    ) -> None:
        super().__init__(task, encoder, decoder, head, neck, aux_heads, patch_size, padding)
        self.rescale = rescale

    def _finish(self, out: Tensor, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
        if out.ndim != 4:
            raise ConfigError(f"the {self.task} head must return [B, K, h, w], got shape {tuple(out.shape)}")
        if self.rescale and tuple(out.shape[-2:]) != padded:
            out = F.interpolate(out, size=padded, mode="bilinear", align_corners=False)
        if tuple(out.shape[-2:]) == padded:
            out = crop_to(out, size)
        if self.task == TaskKind.REGRESSION and out.shape[1] == 1:
            out = out.squeeze(1)
        return out

    def forward(
        self, x: Tensor, temporal_coords: Tensor | None = None, location_coords: Tensor | None = None
    ) -> ModelOutput:
        """Predict for ``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``)."""
        features, size, padded = self._features(x, temporal_coords, location_coords)
        output = self._finish(self.head(self.decoder(list(features))), padded, size)
        aux: dict[str, Tensor] = {}
        for name, module in self.aux_heads.items():
            aux[name] = self._finish(module(list(features)), padded, size)
        return ModelOutput(output=output, auxiliary_heads=aux)
