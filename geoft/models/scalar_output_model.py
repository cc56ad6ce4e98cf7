"""ScalarOutputModel: image-level classification (single- or multi-label) and scalar regression."""

from __future__ import annotations

from torch import Tensor

from geoft.errors import ConfigError
from geoft.models._assembly import EncoderDecoderModel
from geoft.models.model import ModelOutput
from geoft.task_kinds import IMAGE_KINDS


class ScalarOutputModel(EncoderDecoderModel):
    """Encoder -> necks -> decoder -> linear head; output ``[B, num_classes]`` logits (``[B, num_outputs]``
    values for scalar regression).

    Inputs are padded to a multiple of the patch size (ViTs need it). A decoder that includes its
    head and returns a map ``[B, K, h, w]`` is averaged over space. See
    :class:`~geoft.models._assembly.EncoderDecoderModel` for the arguments.
    """

    tasks = IMAGE_KINDS

    @staticmethod
    def _as_vector(out: Tensor) -> Tensor:
        if out.ndim == 4:
            return out.mean(dim=(2, 3))
        if out.ndim != 2:
            raise ConfigError(f"a classification head must return [B, K], got shape {tuple(out.shape)}")
        return out

    def forward(
        self, x: Tensor, temporal_coords: Tensor | None = None, location_coords: Tensor | None = None
    ) -> ModelOutput:
        """Classify ``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``)."""
        features, _, _ = self._features(x, temporal_coords, location_coords)
        output = self._as_vector(self.head(self.decoder(list(features))))
        aux = {name: self._as_vector(module(list(features))) for name, module in self.aux_heads.items()}
        return ModelOutput(output=output, auxiliary_heads=aux)
