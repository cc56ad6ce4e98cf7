"""SMPModelFactory: a complete segmentation-models-pytorch model (encoder + decoder + head) as a geoft Model."""

from __future__ import annotations

import difflib
from typing import Any

from torch import Tensor, nn

from geoft.errors import ConfigError, OfflineError
from geoft.models.factories._common import PIXEL_TASKS, check_task
from geoft.models.model import Model, ModelOutput, freeze_module
from geoft.models.padding import check_padding_mode, crop_to, pad_to_multiple
from geoft.task_kinds import TaskKind

_RESERVED = ("encoder_name", "encoder_weights", "in_channels", "classes", "aux_params")


class SMPModel(Model):
    """Wraps an smp model: pads inputs to its output stride, crops and squeezes the prediction."""

    def __init__(self, task: str, model: nn.Module, stride: int, padding: str = "reflect") -> None:
        super().__init__()
        self.task = task
        self.model = model
        self.stride = stride
        self.padding = check_padding_mode(padding)

    def freeze_encoder(self) -> None:
        freeze_module(self.model.encoder)

    def freeze_decoder(self) -> None:
        freeze_module(self.model.decoder)

    def freeze_head(self) -> None:
        freeze_module(self.model.segmentation_head)

    def forward(self, x: Tensor, **unused: Any) -> ModelOutput:
        """Predict for ``x`` ``[B, C, H, W]``; ``temporal_coords``/``location_coords`` are not supported."""
        given = [k for k, v in unused.items() if v is not None]
        if given:
            raise ConfigError(f"smp models take only the image; got {', '.join(given)}")
        if x.ndim != 4:
            raise ConfigError(f"smp models take [B, C, H, W] input, got shape {tuple(x.shape)}")
        size = (int(x.shape[-2]), int(x.shape[-1]))
        out = self.model(pad_to_multiple(x, (self.stride, self.stride), self.padding))
        out = crop_to(out, size)
        if self.task == TaskKind.REGRESSION and out.shape[1] == 1:
            out = out.squeeze(1)
        return ModelOutput(output=out)


class SMPModelFactory:
    """Builds any smp architecture (``Unet``, ``FPN``, ``DeepLabV3Plus``...) with an smp encoder."""

    def build_model(
        self,
        task: str,
        backbone: str = "resnet18",
        model: str = "Unet",
        in_channels: int = 3,
        num_classes: int | None = None,
        pretrained: bool | str = False,
        padding: str = "reflect",
        **model_kwargs: Any,
    ) -> Model:
        """Build ``model`` with the smp encoder ``backbone``.

        Args:
            task: ``segmentation`` or ``regression``.
            backbone: smp encoder name (``resnet18``, ``efficientnet-b0``, ``tu-<timm name>``...).
            model: smp architecture class name.
            in_channels: input bands.
            num_classes: classes (segmentation); must be unset for regression (one output).
            pretrained: False, True (``imagenet``), or a weights name; needs the internet the first time.
            padding: how inputs are padded to the encoder's output stride.
            **model_kwargs: other arguments of the smp class (``decoder_channels``, ``encoder_depth``...),
                checked against its signature.
        """
        import segmentation_models_pytorch as smp

        from geoft.models.decoders.smp import _model_params

        task = check_task(task, PIXEL_TASKS, "SMPModelFactory")
        archs = {cls.__name__: cls for cls in smp._MODEL_ARCHITECTURES}
        if model not in archs:
            close = difflib.get_close_matches(model, list(archs), n=3)
            raise ConfigError(
                f"unknown smp model {model!r}" + (f"; did you mean {', '.join(close)}?" if close else ""),
                hint=f"available: {', '.join(sorted(archs))}",
            )
        if task is TaskKind.REGRESSION:
            if num_classes is not None:
                raise ConfigError("num_classes is not used for regression; leave it unset")
            classes = 1
        elif not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"segmentation needs num_classes (a positive int), got {num_classes!r}")
        else:
            classes = num_classes
        params = _model_params(archs[model])
        allowed = [n for n in params if n not in _RESERVED]
        unknown = [k for k in model_kwargs if k not in allowed]
        if unknown:
            raise ConfigError(
                f"smp {model} got unknown argument(s): {', '.join(map(repr, unknown))}",
                hint=f"it accepts: {', '.join(allowed)}",
            )
        weights = "imagenet" if pretrained is True else (pretrained or None)
        try:
            net = archs[model](
                encoder_name=backbone,
                encoder_weights=weights,
                in_channels=in_channels,
                classes=classes,
                **model_kwargs,
            )
        except KeyError as err:
            raise ConfigError(f"smp cannot build {model} with encoder {backbone!r}: {err}") from err
        except (OSError, ConnectionError) as err:
            raise OfflineError(
                f"pretrained weights for smp encoder {backbone!r} could not be downloaded: {err}",
                hint="connect to the internet once, or use pretrained=False",
            ) from err
        stride = int(getattr(net.encoder, "output_stride", 32))
        return SMPModel(task, net, stride, padding)
