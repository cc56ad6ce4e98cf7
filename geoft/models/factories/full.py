"""FullModelFactory: any complete model (image in, prediction out) with geoft's padding and rescaling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.factories._common import PIXEL_TASKS, check_task
from geoft.models.model import Model, ModelOutput, freeze_module
from geoft.models.padding import as_multiple, check_padding_mode, crop_to, pad_to_multiple
from geoft.models.signature import check_kwargs
from geoft.task_kinds import TaskKind


class FullModel(Model):
    """Wraps a complete model. Its output may be a tensor, a ModelOutput, or a list (the last is used)."""

    def __init__(
        self,
        task: str,
        model: nn.Module,
        rescale: bool = True,
        padding: str = "reflect",
        patch_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.model = model
        self.rescale = rescale
        self.padding = check_padding_mode(padding)
        self.patch_size = as_multiple(patch_size)

    def freeze_encoder(self) -> None:
        freeze_module(getattr(self.model, "encoder", self.model))

    def freeze_decoder(self) -> None:
        decoder = getattr(self.model, "decoder", None)
        if decoder is None:
            raise ConfigError(f"{type(self.model).__name__} has no 'decoder' attribute to freeze")
        freeze_module(decoder)

    def freeze_head(self) -> None:
        head = getattr(self.model, "head", None)
        if head is not None:
            freeze_module(head)

    def forward(self, x: Tensor, **coords: Any) -> ModelOutput:
        """Run the wrapped model; keyword arguments with a value are passed on."""
        size = (int(x.shape[-2]), int(x.shape[-1]))
        padded = pad_to_multiple(x, self.patch_size, self.padding)
        out = self.model(padded, **{k: v for k, v in coords.items() if v is not None})
        aux: dict[str, Tensor] = {}
        if isinstance(out, ModelOutput):
            out, aux = out.output, dict(out.auxiliary_heads)
        elif isinstance(out, (list, tuple)):
            out = out[-1]
        if not isinstance(out, torch.Tensor):
            raise ConfigError(f"{type(self.model).__name__} returned {type(out).__name__}, not a tensor")
        if self.task in PIXEL_TASKS:
            out = self._pixel(out, tuple(padded.shape[-2:]), size)
            aux = {k: self._pixel(v, tuple(padded.shape[-2:]), size) for k, v in aux.items()}
        return ModelOutput(output=out, auxiliary_heads=aux)

    def _pixel(self, out: Tensor, padded: tuple[int, ...], size: tuple[int, int]) -> Tensor:
        if out.ndim == 3:
            out = out.unsqueeze(1)
        if self.rescale and tuple(out.shape[-2:]) != padded:
            out = F.interpolate(out, size=padded, mode="bilinear", align_corners=False)
        if tuple(out.shape[-2:]) == padded:
            out = crop_to(out, size)
        if self.task == TaskKind.REGRESSION and out.shape[1] == 1:
            out = out.squeeze(1)
        return out


class FullModelFactory:
    """Wraps a model given as a module or a ``"package.module:callable"`` import path."""

    def build_model(
        self,
        task: str,
        model: str | nn.Module,
        model_kwargs: Mapping[str, Any] | None = None,
        rescale: bool = True,
        padding: str = "reflect",
        patch_size: int | Sequence[int] | None = None,
    ) -> Model:
        """Build (if needed) and wrap ``model`` for ``task``.

        ``patch_size`` defaults to the model's ``patch_size`` attribute, if any.
        """
        from geoft.registry import import_object

        task = check_task(task, factory="FullModelFactory")
        kwargs = dict(model_kwargs or {})
        if isinstance(model, nn.Module):
            if kwargs:
                raise ConfigError("model_kwargs were given, but the model is an already built module")
            module = model
        else:
            if ":" not in model:
                raise ConfigError(
                    f"FullModelFactory needs a model module or an import path 'package.module:callable', got {model!r}",
                    hint="for a registered backbone with a decoder use EncoderDecoderFactory",
                )
            ctor = import_object(model)
            check_kwargs(ctor, kwargs, f"model {model!r}")
            module = ctor(**kwargs)
            if not isinstance(module, nn.Module):
                raise ConfigError(f"{model!r} built a {type(module).__name__}, not a torch module")
        if patch_size is None:
            patch_size = getattr(module, "patch_size", None)
        return FullModel(task, module, rescale=rescale, padding=padding, patch_size=patch_size)
