"""Main loss plus weighted auxiliary-head losses, and their logging.

Logged names (``<stage>`` is ``train``, ``val``, ``test`` or ``test/<dataloader name>``):

* ``<stage>/loss``: the total that is optimised;
* ``<stage>/<name>_loss``: each part of a combined main loss (e.g. ``train/dice_loss``);
* ``<stage>/aux_<head>_loss``: each auxiliary head's (unweighted) loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from geoft.errors import ConfigError
from geoft.models.model import ModelOutput

Criterion = Callable[[Tensor, Tensor], Tensor | dict[str, Tensor]]


def _total(value: Tensor | Mapping[str, Tensor]) -> Tensor:
    return value["loss"] if isinstance(value, Mapping) else value


class LossHandler:
    """Compute ``criterion`` on the main output and on every auxiliary head, weighted by ``aux_loss``.

    Args:
        criterion: built by :func:`geoft.tasks.losses.build_criterion` (or any callable).
        aux_loss: auxiliary head name -> weight. Every auxiliary output of the model needs a weight.
        align: optional ``(pred, target) -> pred`` applied to auxiliary outputs (e.g. resize to the target).
    """

    def __init__(
        self,
        criterion: Criterion,
        aux_loss: Mapping[str, float] | None = None,
        align: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        self.criterion = criterion
        self.aux_loss = dict(aux_loss or {})
        self.align = align

    def compute(self, output: ModelOutput, target: Tensor) -> dict[str, Tensor]:
        """Return ``{"loss": total, ...parts}``; losses are computed in float32 outside autocast."""
        aux_names = set(output.auxiliary_heads)
        if aux_names != set(self.aux_loss):
            missing = sorted(aux_names - set(self.aux_loss))
            unused = sorted(set(self.aux_loss) - aux_names)
            raise ConfigError(
                "aux_loss does not match the model's auxiliary heads: "
                f"heads without a weight: {missing or 'none'}; weights without a head: {unused or 'none'}",
                hint="give aux_loss one weight per auxiliary head name, e.g. aux_loss: {aux_fcn: 0.4}",
            )
        device_type = output.output.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            main = self.criterion(output.output.float(), target)
            losses: dict[str, Tensor] = {}
            if isinstance(main, Mapping):
                losses.update({f"{name}_loss": value for name, value in main.items() if name != "loss"})
            total = _total(main)
            for name, weight in self.aux_loss.items():
                pred = output.auxiliary_heads[name].float()
                if self.align is not None:
                    pred = self.align(pred, target)
                value = _total(self.criterion(pred, target))
                losses[f"aux_{name}_loss"] = value
                total = total + weight * value
        losses["loss"] = total
        return losses

    @staticmethod
    def log(
        log_fn: Callable[..., Any],
        prefix: str,
        losses: Mapping[str, Tensor],
        batch_size: int,
        on_step: bool,
        add_dataloader_idx: bool = True,
    ) -> None:
        """Log every loss under ``<prefix>/<name>`` (the total as ``<prefix>/loss``, shown in the progress bar).

        Training logs per step (``on_step=True``), evaluation per epoch, so names carry no
        ``_step``/``_epoch`` suffix.
        """
        for name, value in losses.items():
            log_fn(
                f"{prefix}/{name}",
                value.detach(),
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=name == "loss",
                batch_size=batch_size,
                sync_dist=not on_step,
                add_dataloader_idx=add_dataloader_idx,
            )


__all__ = ["LossHandler"]
