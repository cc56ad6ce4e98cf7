"""Any timm model as a CNN-style backbone: ``BACKBONE_REGISTRY.build("timm_resnet18", in_chans=6)``.

The model is created with ``features_only=True`` and returns a list of ``[B, C_i, H_i, W_i]`` maps;
``out_channels`` comes from timm's ``feature_info``. Weights: ``pretrained=True`` uses timm's
published weights (offline: a clear :class:`~geoft.errors.OfflineError`), ``ckpt_path=`` a local file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import unknown_arguments_message
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.downloads import hf_download, url_download
from geoft.models.backbones.features_load import load_features_checkpoint


class TimmBackbone(nn.Module):
    """A timm ``features_only`` model following geoft's backbone contract.

    Args:
        model_name: timm model name (e.g. "resnet18", "convnext_tiny", "resnet50.a1_in1k").
        pretrained: load timm's published weights for this model.
        ckpt_path: load weights from this local file instead (timm / torchvision layout; a
            classifier in the file is dropped, a first conv for other in_chans is adapted).
        in_chans: input channels.
        out_indices: feature levels to return (timm's indices; default all).
        model_kwargs: extra arguments for ``timm.create_model`` (e.g. ``drop_path_rate``).
    """

    output_format = "NCHW"

    def __init__(
        self,
        model_name: str,
        *,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        in_chans: int = 3,
        out_indices: Sequence[int] | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not timm.is_model(model_name):
            raise ConfigError(
                f"timm has no model {model_name!r}; list them with timm.list_models('*pattern*')"
            )
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ConfigError(f"in_chans must be a positive int, got {in_chans!r}")
        self.model_name = model_name
        self.in_chans = in_chans
        overlay = _pretrained_file(model_name) if pretrained and ckpt_path is None else None
        kwargs: dict[str, Any] = dict(model_kwargs or {})
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        if overlay is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(overlay)}
        self.model = _create(model_name, pretrained and ckpt_path is None, in_chans, kwargs)
        self.out_channels: list[int] = list(self.model.feature_info.channels())
        self.reductions: list[int] = list(self.model.feature_info.reduction())
        # Some timm models (Swin, ...) emit channels-last maps; the contract is NCHW.
        self.channels_last_output = str(getattr(self.model, "output_fmt", "NCHW")).upper().endswith("NHWC")
        self.load_report: LoadReport | None = None
        if ckpt_path is not None:
            first_conv = (
                self.model.pretrained_cfg.get("first_conv") if hasattr(self.model, "pretrained_cfg") else None
            )
            self.load_report = load_features_checkpoint(
                self.model, ckpt_path, name=f"timm_{model_name}", first_conv=first_conv
            )

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Feature maps for ``x`` ``[B, C, H, W]`` (or ``[B, C, 1, H, W]``)."""
        reject_extra_inputs(self.model_name, kwargs)
        features = list(self.model(as_image_batch(x, self.model_name)))
        if self.channels_last_output:
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features

    def freeze(self) -> TimmBackbone:
        """Stop gradients through every parameter."""
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _create(model_name: str, pretrained: bool, in_chans: int, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return timm.create_model(
            model_name, pretrained=pretrained, features_only=True, in_chans=in_chans, **kwargs
        )
    except TypeError as err:
        raise ConfigError(f"timm_{model_name}: {err}", hint="Check the extra model arguments.") from err
    except RuntimeError as err:
        if "features_only" in str(err) or "feature" in str(err).lower():
            raise ConfigError(f"timm model {model_name!r} cannot return feature maps: {err}") from err
        raise


def _pretrained_file(model_name: str) -> Path | None:
    """Local file of timm's pretrained weights for ``model_name``, downloading when needed.

    Returns None when timm loads the weights some other way (e.g. a custom loader).
    """
    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        raise ConfigError(
            f"timm has no pretrained weights for {model_name!r}; use pretrained=False or ckpt_path"
        )
    what = f"the pretrained weights of timm model {model_name}"
    if cfg.hf_hub_id:
        repo = cfg.hf_hub_id.split("@")[0]
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        import huggingface_hub

        for filename in names:
            cached = huggingface_hub.try_to_load_from_cache(repo, filename)
            if isinstance(cached, str):
                return Path(cached)
        return hf_download(repo, names[0], what=what)
    if cfg.url:
        return url_download(cfg.url, what=what)
    return None


def as_image_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim == 5:
        if x.shape[2] != 1:
            raise ConfigError(
                f"{name} takes single images but got {x.shape[2]} time steps ({list(x.shape)}).",
                hint="Use a Prithvi backbone for time series, or fold time into channels in the dataset.",
            )
        x = x[:, :, 0]
    if x.ndim != 4:
        raise ConfigError(f"{name} expects [B, C, H, W] input, got shape {list(x.shape)}")
    return x


def reject_extra_inputs(name: str, kwargs: dict[str, Any]) -> None:
    """Accept the contract's optional keywords only when empty; anything else is a mistake."""
    used = [k for k, v in kwargs.items() if v is not None]
    if used:
        raise ConfigError(
            f"{name} has no time or location encoding and does not use {', '.join(used)}.",
            hint="Only Prithvi *_tl backbones use temporal_coords / location_coords; set the datamodule's "
            "use_metadata: false for this backbone.",
        )


class TimmBackboneSource:
    """Registry source for the ``timm_`` prefix (see :class:`geoft.registry.Source`)."""

    def names(self) -> list[str]:
        return list(timm.list_models())

    def __contains__(self, name: str) -> bool:
        return bool(timm.is_model(name))

    def get(self, name: str) -> Callable[..., TimmBackbone]:
        return functools.partial(_build_timm, name)


_TIMM_ARGS = ("pretrained", "ckpt_path", "in_chans", "out_indices", "model_kwargs")


def _build_timm(model_name: str, *args: Any, **kwargs: Any) -> TimmBackbone:
    """Builder used by the registry: geoft's arguments, other keywords forwarded to timm."""
    if args:
        raise ConfigError(f"timm_{model_name} takes keyword arguments only, got positional {args!r}")
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in _TIMM_ARGS}
    extra = dict(own.pop("model_kwargs", None) or {})
    extra.update(kwargs)
    try:
        return TimmBackbone(model_name, model_kwargs=extra, **own)
    except ConfigError as err:
        if extra and "unexpected keyword" in str(err):
            raise ConfigError(
                unknown_arguments_message(f"timm_{model_name}", sorted(extra), list(_TIMM_ARGS))
                + " Other keywords are passed to timm.create_model, which rejected them."
            ) from err
        raise
