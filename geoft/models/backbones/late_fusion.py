"""Late fusion: one single-modal geoft backbone per modality, their features merged level by level.

The model input is the modality dict of :class:`~geoft.datamodules.multimodal.GenericMultiModalDataModule`
(``{modality: [B, C, H, W]}``); each encoder reads its modality, and the features of every level are
merged by ``mean`` (encoders with the same widths) or ``concat`` (along the feature dimension). The
merged features look like one backbone's to the necks and decoder, so any decoder works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from geoft.errors import ConfigError

MergeMethod = Literal["mean", "concat"]


class LateFusionBackbone(nn.Module):
    """Per-modality encoders whose features are merged.

    Args:
        encoders: ``{modality: {"backbone": registry name, <its arguments>...}}`` or ready modules.
        merge_method: ``mean`` (same ``out_channels`` everywhere) or ``concat``.
    """

    def __init__(
        self, encoders: Mapping[str, Mapping[str, Any] | nn.Module], merge_method: MergeMethod = "mean"
    ) -> None:
        super().__init__()
        from geoft.models.factories.encoder_decoder import build_backbone

        if not encoders:
            raise ConfigError("late fusion needs at least one encoder: encoders: {modality: {backbone: ...}}")
        if merge_method not in ("mean", "concat"):
            raise ConfigError(f"merge_method must be 'mean' or 'concat', not {merge_method!r}.")
        built: dict[str, nn.Module] = {}
        for modality, spec in encoders.items():
            if isinstance(spec, nn.Module):
                built[modality] = build_backbone(spec, {})
                continue
            if "backbone" not in spec:
                raise ConfigError(
                    f"encoders[{modality!r}] has no 'backbone' key (the registry name), got {sorted(spec)}."
                )
            args = {k: v for k, v in spec.items() if k != "backbone"}
            built[modality] = build_backbone(spec["backbone"], args)
        self.modalities = list(built)
        self.encoders = nn.ModuleDict(built)
        self.merge_method = merge_method
        formats = {m: getattr(e, "output_format", "NCHW") for m, e in built.items()}
        if len(set(formats.values())) > 1:
            raise ConfigError(f"late fusion needs encoders with one output format, got {formats}.")
        self.output_format = formats[self.modalities[0]]
        widths = {m: list(e.out_channels) for m, e in built.items()}
        if len({len(w) for w in widths.values()}) > 1:
            raise ConfigError(f"the encoders return different numbers of features: {widths}.")
        if merge_method == "mean":
            if len({tuple(w) for w in widths.values()}) > 1:
                raise ConfigError(
                    f"merge_method 'mean' needs encoders of the same widths, got {widths}.",
                    hint="use merge_method: concat, or encoders of one size.",
                )
            self.out_channels = widths[self.modalities[0]]
        else:
            self.out_channels = [sum(level) for level in zip(*widths.values(), strict=True)]
        for name in ("patch_size", "num_frames", "reductions"):
            values = {m: getattr(e, name) for m, e in built.items() if hasattr(e, name)}
            if len({repr(v) for v in values.values()}) > 1:
                raise ConfigError(f"the encoders have different {name}: {values}.")
            if values:
                setattr(self, name, next(iter(values.values())))

    def forward(self, x: Mapping[str, Tensor], **coords: Tensor) -> list[Tensor]:
        if not isinstance(x, Mapping):
            raise ConfigError(
                f"late fusion takes a {{modality: tensor}} dict, got {type(x).__name__}.",
                hint="use GenericMultiModalDataModule without concat_bands.",
            )
        unknown = sorted(set(x) - set(self.modalities))
        if unknown:
            raise ConfigError(
                f"the input has modalities {unknown} that no encoder reads ({self.modalities})."
            )
        present = [m for m in self.modalities if m in x]
        if self.merge_method == "concat" and len(present) != len(self.modalities):
            missing = sorted(set(self.modalities) - set(present))
            raise ConfigError(f"merge_method 'concat' needs every modality; the batch lacks {missing}.")
        if not present:
            raise ConfigError(f"the batch has none of the modalities {self.modalities}.")
        outputs = [list(self.encoders[m](x[m], **coords)) for m in present]
        dim = -1 if self.output_format == "tokens" else 1
        merged = []
        for level in zip(*outputs, strict=True):
            if self.merge_method == "mean":
                merged.append(torch.stack(level).mean(0))
            else:
                merged.append(torch.cat(level, dim=dim))
        return merged


def late_fusion(
    encoders: dict[str, dict[str, Any]], merge_method: MergeMethod = "mean"
) -> LateFusionBackbone:
    """Registry builder: ``backbone: late_fusion`` with ``backbone_encoders`` and ``backbone_merge_method``."""
    return LateFusionBackbone(encoders, merge_method)
