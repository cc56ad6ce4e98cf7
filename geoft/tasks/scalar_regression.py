"""Image-level regression: one number (or ``num_outputs`` numbers) per image, e.g. biomass or yield."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import MetricCollection

from geoft.errors import ConfigError
from geoft.models.model import AuxiliaryHead, ModelFactory
from geoft.task_kinds import TaskKind
from geoft.tasks import building
from geoft.tasks.base import GeoftTask
from geoft.tasks.losses import valid_mask
from geoft.tasks.metrics import scalar_regression_metrics
from geoft.tasks.plotting import label_figure


class ScalarRegressionTask(GeoftTask):
    """Regression of ``label [B]`` (float32; ``[B, num_outputs]`` for several values per image).

    The model returns ``[B, num_outputs]`` (or ``[B]``); with a model factory, ``num_outputs`` reaches
    it as ``model_args.num_outputs`` unless ``model_args`` sets it. Losses: ``mse`` (default), ``mae``,
    ``rmse``, ``huber``; targets equal to ``ignore_index`` or NaN count for nothing. Metrics: ``RMSE``,
    ``MSE``, ``MAE``, ``R2_Score`` (plus ``<metric>_<var>`` per output when there are several).
    ``predict_step``: ``prediction [B]`` (or ``[B, num_outputs]``), float32.

    Args:
        num_outputs: values predicted per image.
        var_names: one name per output, used in the per-output metric names.
        others: as :class:`geoft.tasks.base.GeoftTask` (the reference's names); ``class_*`` and tiled
            inference do not apply.
    """

    task_kind: ClassVar[TaskKind] = TaskKind.SCALAR_REGRESSION
    default_loss: ClassVar[str] = "mse"
    inference_outputs: ClassVar[tuple[str, ...]] = ("prediction",)
    supports_tiled_inference: ClassVar[bool] = False

    def __init__(
        self,
        model_args: dict[str, Any] | None = None,
        model_factory: str | ModelFactory | None = None,
        model: nn.Module | None = None,
        loss: str | list[str] | dict[str, float] | nn.Module | None = "mse",
        aux_heads: list[AuxiliaryHead | dict[str, Any]] | None = None,
        aux_loss: dict[str, float] | None = None,
        ignore_index: int | None = None,
        lr: float = 1e-3,
        num_outputs: int = 1,
        optimizer: str | None = None,
        optimizer_hparams: dict[str, Any] | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict[str, Any] | None = None,
        freeze_backbone: bool = False,
        freeze_decoder: bool = False,
        plot_on_val: bool | int = False,
        freeze_head: bool = False,
        var_names: list[str] | None = None,
        test_dataloaders_names: list[str] | None = None,
        lr_overrides: dict[str, float] | None = None,
        rgb_indices: list[int] | None = None,
    ) -> None:
        if num_outputs < 1:
            raise ConfigError(f"num_outputs must be at least 1, not {num_outputs}")
        if var_names is not None and len(var_names) != num_outputs:
            raise ConfigError(f"var_names has {len(var_names)} names but num_outputs is {num_outputs}")
        self.num_outputs = num_outputs
        super().__init__(
            model_args=model_args,
            model_factory=model_factory,
            model=model,
            loss=loss,
            aux_heads=aux_heads,
            aux_loss=aux_loss,
            ignore_index=ignore_index,
            lr=lr,
            optimizer=optimizer,
            optimizer_hparams=optimizer_hparams,
            scheduler=scheduler,
            scheduler_hparams=scheduler_hparams,
            freeze_backbone=freeze_backbone,
            freeze_decoder=freeze_decoder,
            freeze_head=freeze_head,
            lr_overrides=lr_overrides,
            plot_on_val=plot_on_val,
            rgb_indices=rgb_indices,
            test_dataloaders_names=test_dataloaders_names,
        )

    def configure_models(self, model: nn.Module | None = None) -> None:
        hp = self.hparams
        model_args = dict(hp["model_args"] or {})
        if model is None and "num_outputs" not in model_args and "num_classes" not in model_args:
            model_args["num_outputs"] = self.num_outputs
        self.model = building.build_task_model(
            self.task_kind, model_args, hp["model_factory"], model, hp["aux_heads"]
        )
        building.freeze_parts(self.model, hp["freeze_backbone"], hp["freeze_decoder"], hp["freeze_head"])
        self.num_classes = None

    def build_metrics(self) -> MetricCollection:
        return scalar_regression_metrics(self.num_outputs, self.hparams["var_names"])

    def prepare_target(self, target: Tensor) -> Tensor:
        target = target.float()
        return target.reshape(-1) if self.num_outputs == 1 else target.reshape(-1, self.num_outputs)

    def hard_prediction(self, output: Tensor) -> Tensor:
        return output.reshape(-1) if self.num_outputs == 1 else output

    def check_output(self, output: Tensor, target: Tensor | None) -> None:
        per_image = output.shape[1:].numel() if output.ndim > 1 else 1
        if per_image != self.num_outputs:
            raise ConfigError(
                f"the model's output has shape {tuple(output.shape)}, but the task predicts {self.num_outputs} "
                f"value(s) per image (expected [B, {self.num_outputs}])",
                hint="make model_args.num_outputs match num_outputs, or fix the model's last layer",
            )

    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        keep = valid_mask(target, self.hparams["ignore_index"])
        if keep.ndim > 1:  # several outputs: an image counts when all its values are known
            keep = keep.all(dim=1)
        if keep.any():
            metrics.update(self.hard_prediction(output).float()[keep], target[keep])

    def inference(self, output: Tensor) -> dict[str, Tensor]:
        return {"prediction": self.hard_prediction(output)}

    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        def text(values: Tensor) -> str:
            return ", ".join(f"{v:.3g}" for v in torch.atleast_1d(values.float()).tolist())

        truth = text(target) if target is not None else None
        return label_figure(image, truth, text(output), self.hparams["rgb_indices"], title)


__all__ = ["ScalarRegressionTask"]
