"""TimmModelFactory: a timm image classifier as a geoft Model."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from geoft.errors import ConfigError, OfflineError, RegistryError
from geoft.models.factories._common import CLASS_TASKS, check_task
from geoft.models.model import Model, ModelOutput, freeze_module
from geoft.models.padding import as_multiple, check_padding_mode, find_patch_size, pad_to_multiple


class TimmClassifier(Model):
    """A timm model with its own classifier; the body is the encoder, the classifier the head."""

    def __init__(self, task: str, model: nn.Module, padding: str = "reflect") -> None:
        super().__init__()
        self.task = task
        self.model = model
        embed = getattr(model, "patch_embed", None)
        self.patch_size = as_multiple(find_patch_size(embed)) if isinstance(embed, nn.Module) else None
        self.padding = check_padding_mode(padding)

    def _classifier(self) -> nn.Module:
        head = self.model.get_classifier()
        return head if isinstance(head, nn.Module) else nn.Identity()

    def freeze_encoder(self) -> None:
        head_params = {id(p) for p in self._classifier().parameters()}
        for param in self.model.parameters():
            if id(param) not in head_params:
                param.requires_grad_(False)

    def freeze_decoder(self) -> None:
        """timm classifiers have no decoder between body and classifier: nothing to freeze."""

    def freeze_head(self) -> None:
        freeze_module(self._classifier())

    def forward(self, x: Tensor, **unused: Any) -> ModelOutput:
        """Classify ``x`` ``[B, C, H, W]`` into ``[B, num_classes]`` logits."""
        given = [k for k, v in unused.items() if v is not None]
        if given:
            raise ConfigError(f"timm classifiers take only the image; got {', '.join(given)}")
        if x.ndim != 4:
            raise ConfigError(f"timm classifiers take [B, C, H, W] input, got shape {tuple(x.shape)}")
        return ModelOutput(output=self.model(pad_to_multiple(x, self.patch_size, self.padding)))


class TimmModelFactory:
    """Builds ``timm.create_model(backbone, num_classes=..., in_chans=...)`` for classification."""

    def build_model(
        self,
        task: str,
        backbone: str = "resnet18",
        num_classes: int | None = None,
        in_channels: int = 3,
        pretrained: bool = False,
        padding: str = "reflect",
        **timm_kwargs: Any,
    ) -> Model:
        """Build the timm model ``backbone`` (a ``timm_`` prefix is accepted and dropped).

        ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``drop_rate``, ``img_size``); ones the model
        does not take are a :class:`ConfigError`.
        """
        import timm

        task = check_task(task, CLASS_TASKS, "TimmModelFactory")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"{task} needs num_classes (a positive int), got {num_classes!r}")
        name = backbone[5:] if backbone.startswith("timm_") else backbone
        if not timm.is_model(name):
            import difflib

            close = difflib.get_close_matches(name, timm.list_models(), n=5)
            raise RegistryError(
                f"unknown timm model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""),
                hint="list them with timm.list_models()",
            )
        try:
            model = timm.create_model(
                name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels, **timm_kwargs
            )
        except TypeError as err:
            raise ConfigError(
                f"timm model {name!r} rejected the arguments {sorted(timm_kwargs)}: {err}",
                hint="check the argument names against the timm model's constructor",
            ) from err
        except (OSError, ConnectionError) as err:
            raise OfflineError(
                f"pretrained weights for timm model {name!r} could not be downloaded: {err}",
                hint="connect to the internet once, or use pretrained=False",
            ) from err
        return TimmClassifier(task, model, padding)
