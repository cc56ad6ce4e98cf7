"""Any segmentation-models-pytorch decoder as a geoft decoder: ``smp_Unet``, ``smp_FPN``, ``smp_DeepLabV3Plus``...

smp builds decoders inside complete models (encoder + decoder + head). To reuse a decoder on geoft's
features, the smp model is built around a parameter-free stand-in encoder that only declares the
channels of those features; the decoder is kept and the rest thrown away. The ``DECODER_REGISTRY``
reaches this module through :class:`SMPDecoderSource`, so smp is imported only when used.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import as_channel_list, check_image_features

# smp model arguments geoft sets itself; the rest (decoder_*, upsampling, ...) users may pass
_RESERVED = {
    "encoder_name",
    "encoder_weights",
    "encoder_depth",
    "in_channels",
    "classes",
    "activation",
    "aux_params",
}
# need an encoder smp builds itself (DPT: a timm ViT with prefix tokens)
_UNSUPPORTED = {"DPT"}
_ENCODER_KEY = "geoft_feature_list"


class _FeatureListEncoder(nn.Module):
    """Stand-in smp encoder: declares channels and strides, holds no weights, is never run."""

    def __init__(self, channels: Sequence[int], depth: int, output_stride: int = 32, **unused: Any) -> None:
        super().__init__()
        if unused:
            raise ConfigError(f"unknown smp decoder argument(s): {', '.join(map(repr, unused))}")
        self._out_channels = list(channels)
        self._depth = depth
        self._output_stride = output_stride
        self._in_channels = 3

    @property
    def out_channels(self) -> list[int]:
        return self._out_channels[: self._depth + 1]

    @property
    def output_stride(self) -> int:
        return min(self._output_stride, 2**self._depth)

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Input channels do not matter: geoft's backbone reads the image."""

    def make_dilated(self, output_stride: int) -> None:
        """Dilation is the backbone's business; the decoder only needs the declared stride."""
        self._output_stride = output_stride


def smp_architectures() -> dict[str, type]:
    """smp model classes by name (``Unet``, ``FPN``, ...) whose decoders geoft can use."""
    import segmentation_models_pytorch as smp

    return {cls.__name__: cls for cls in smp._MODEL_ARCHITECTURES if cls.__name__ not in _UNSUPPORTED}


def _model_params(arch_cls: type) -> dict[str, inspect.Parameter]:
    init = inspect.unwrap(arch_cls.__init__)
    params = inspect.signature(init).parameters
    return {
        n: p for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


class SMPDecoder(nn.Module):
    """The decoder of smp architecture ``arch`` on features with channels ``embed_dim``.

    Arguments are those of the smp model class (e.g. ``decoder_channels``, ``decoder_attention_type``,
    ``upsampling`` is not used); a name without its ``decoder_`` prefix is accepted too (so the
    factory key ``decoder_channels`` reaches smp's ``decoder_channels``). smp expects features from
    shallow to deep, each half the size of the previous one, as CNN backbones give.
    """

    includes_head = False
    multi_scale = True

    def __init__(self, embed_dim: Sequence[int], arch: str, **smp_kwargs: Any) -> None:
        super().__init__()
        import segmentation_models_pytorch.encoders as smp_encoders

        archs = smp_architectures()
        if arch not in archs:
            close = difflib.get_close_matches(arch, list(archs), n=3)
            raise ConfigError(
                f"unknown smp architecture {arch!r}"
                + (f"; did you mean {', '.join(close)}?" if close else ""),
                hint=f"available: {', '.join(sorted(archs))}",
            )
        dims = as_channel_list(embed_dim, f"smp_{arch}")
        if len(dims) < 2:
            raise ConfigError(f"smp_{arch} needs at least 2 features, got channels {dims}")
        arch_cls = archs[arch]
        params = _model_params(arch_cls)
        allowed = [n for n in params if n not in _RESERVED]
        kwargs: dict[str, Any] = {}
        for key, value in smp_kwargs.items():
            name = key if key in allowed else f"decoder_{key}"
            if name not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                raise ConfigError(
                    f"smp_{arch} got unknown argument {key!r}"
                    + (f" (did you mean {close[0]!r}?)" if close else ""),
                    hint=f"it accepts: {', '.join(allowed)}",
                )
            if name in kwargs:
                raise ConfigError(f"smp_{arch}: {key!r} and {name!r} are the same argument; give it once")
            kwargs[name] = value
        depth = len(dims) - 1
        # smp's defaults assume 5 encoder stages; trim a per-stage default (Unet's decoder_channels)
        dc = params.get("decoder_channels")
        if dc is not None and "decoder_channels" not in kwargs and isinstance(dc.default, (list, tuple)):
            kwargs["decoder_channels"] = list(dc.default)[:depth]
        smp_encoders.encoders[_ENCODER_KEY] = {
            "encoder": _FeatureListEncoder,
            "params": {"channels": dims},
            "pretrained_settings": {},
        }
        try:
            model = arch_cls(
                encoder_name=_ENCODER_KEY,
                encoder_weights=None,
                encoder_depth=depth,
                in_channels=3,
                classes=1,
                **kwargs,
            )
        except ConfigError:
            raise
        except (ValueError, TypeError, KeyError, AssertionError, RuntimeError) as err:
            raise ConfigError(f"smp_{arch} cannot be built on features with channels {dims}: {err}") from err
        finally:
            smp_encoders.encoders.pop(_ENCODER_KEY, None)
        self.decoder = model.decoder
        # not every smp decoder declares its width; the segmentation head it was built with does
        head_conv = next(m for m in model.segmentation_head.modules() if isinstance(m, nn.Conv2d))
        self.out_channels = head_conv.in_channels
        self.arch_name = arch

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features, f"smp_{self.arch_name}")
        return self.decoder(list(features))


class SMPDecoderSource:
    """Registry source for ``smp_<Arch>`` decoder names (see :mod:`geoft.registry`).

    ``get`` returns ``functools.partial(SMPDecoder, arch=...)`` carrying the class attributes the
    factory reads, so built decoders are plain (picklable) :class:`SMPDecoder` instances.
    """

    def names(self) -> list[str]:
        return sorted(smp_architectures())

    def __contains__(self, name: str) -> bool:
        return name in smp_architectures()

    def get(self, name: str) -> Callable[..., SMPDecoder]:
        ctor = functools.partial(SMPDecoder, arch=name)
        ctor.includes_head = SMPDecoder.includes_head  # type: ignore[attr-defined]
        ctor.multi_scale = SMPDecoder.multi_scale  # type: ignore[attr-defined]
        return ctor
