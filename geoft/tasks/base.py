"""The Lightning module shared by every geoft task: hooks, steps, logging, optimisers.

In torchgeo's style, ``__init__`` saves the hyperparameters and calls three hooks:
:meth:`GeoftTask.configure_models`, :meth:`~GeoftTask.configure_losses` and
:meth:`~GeoftTask.configure_metrics`. Subclasses (:mod:`geoft.tasks.segmentation`, ``regression``,
``classification``, ``scalar_regression``) say which :class:`~geoft.task_kinds.TaskKind` they are, how a
target looks, which metrics apply, and what a prediction is.

Logged names: losses as described in :mod:`geoft.tasks.loss_handler`; metrics as
``train/<metric>``, ``val/<metric>``, ``test/<metric>`` (or ``test/<dataloader name>/<metric>`` when
``test_dataloaders_names`` is set). Training losses are logged per step, everything else per epoch.

Callbacks from ``configure_callbacks``: :class:`~geoft.training_guards.TrainingGuard` (NaN losses,
crashing workers), :class:`~geoft.training_guards.OutOfMemoryGuard`, and, where they apply,
:class:`~geoft.tasks.callbacks.ConfusionMatrices` (``task.confusion_matrices`` and
``confusion_matrices.json``) and :class:`~geoft.tasks.callbacks.SampleFigures`.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from lightning.pytorch import Callback, LightningModule
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from geoft.errors import ConfigError
from geoft.models.model import AuxiliaryHead, ModelFactory, ModelOutput
from geoft.task_kinds import TaskKind
from geoft.tasks import building
from geoft.tasks.callbacks import ConfusionMatrices, SampleFigures
from geoft.tasks.loss_handler import LossHandler
from geoft.tasks.losses import build_criterion
from geoft.tasks.optimizers import check_optimizer, check_scheduler, configure_optimization
from geoft.training_guards import OutOfMemoryGuard, TrainingGuard

# Batch keys forwarded to the model as keyword arguments (see docs/architecture.md).
MODEL_KWARGS = ("temporal_coords", "location_coords")
# Batch keys copied into predict_step's output so a writer can georeference predictions.
METADATA_KEYS = ("filename", "crs", "transform")
INFERENCE_OUTPUTS = ("prediction", "probabilities", "logits")


class GeoftTask(LightningModule):
    """Base of the geoft tasks. See the subclasses for what each one predicts.

    Args:
        model_args: keyword arguments for the model factory's ``build_model`` (e.g. ``backbone``,
            ``decoder``, ``num_classes``). With a ready ``model`` only ``num_classes`` may be given.
        model_factory: a model-factory registry name (``"EncoderDecoderFactory"``) or an object with
            ``build_model(task, **model_args)``.
        model: a ready ``nn.Module`` instead of a factory. It may return a ``ModelOutput`` or a plain
            Tensor. Not saved in hyperparameters: pass it again to ``load_from_checkpoint``.
        loss: loss name, list of names (summed), dict name -> weight, or an ``nn.Module``. None uses the
            task's default.
        aux_heads: auxiliary decoders built by the factory (``AuxiliaryHead`` or dicts).
        aux_loss: auxiliary head name -> loss weight.
        class_weights: per-class loss weights (for losses that take them).
        ignore_index: target value that counts for neither loss nor metrics (None: none).
        lr: base learning rate.
        optimizer: a ``torch.optim`` class name (default ``"Adam"``). A LightningCLI ``optimizer:``
            block replaces this (the CLI patches ``configure_optimizers``).
        optimizer_hparams: extra optimizer arguments (not ``lr``).
        scheduler: a ``torch.optim.lr_scheduler`` class name or ``"WarmupCosine"``.
        scheduler_hparams: scheduler arguments plus ``interval``, ``frequency``, ``monitor``.
        freeze_backbone: stop training the encoder.
        freeze_decoder: stop training the decoder (and necks).
        freeze_head: stop training the head(s).
        lr_overrides: parameter-name substring -> learning rate, e.g. ``{"encoder": 1e-5}``.
        class_names: names used in per-class metrics and the confusion matrix.
        plot_on_val: log sample figures every N validation epochs (True = 1, False/0 = never) on
            loggers that take images (TensorBoard, W&B).
        rgb_indices: band positions shown as red, green, blue in figures (default ``[2, 1, 0]``).
        tiled_inference_parameters: when set, ``predict_step`` runs
            :func:`geoft.tasks.tiled_inference.tiled_inference` with these parameters.
        tiled_inference_on_validation: also use tiled inference in validation.
        tiled_inference_on_testing: also use tiled inference in testing.
        test_dataloaders_names: one name per test dataloader; metrics become ``test/<name>/...``.
        output_on_inference: what ``predict_step`` returns besides ``prediction``: ``"prediction"``,
            ``"probabilities"``, ``"logits"`` or a list of them.
    """

    task_kind: ClassVar[TaskKind]  # losses, the model factory's task and the target follow from it
    default_loss: ClassVar[str]
    inference_outputs: ClassVar[tuple[str, ...]] = INFERENCE_OUTPUTS
    supports_tiled_inference: ClassVar[bool] = True
    has_confusion_matrix: ClassVar[bool] = False

    def __init__(
        self,
        model_args: dict[str, Any] | None = None,
        model_factory: str | ModelFactory | None = None,
        model: nn.Module | None = None,
        loss: str | list[str] | dict[str, float] | nn.Module | None = None,
        aux_heads: list[AuxiliaryHead | dict[str, Any]] | None = None,
        aux_loss: dict[str, float] | None = None,
        class_weights: list[float] | None = None,
        ignore_index: int | None = None,
        lr: float = 1e-3,
        optimizer: str | None = None,
        optimizer_hparams: dict[str, Any] | None = None,
        scheduler: str | None = None,
        scheduler_hparams: dict[str, Any] | None = None,
        freeze_backbone: bool = False,
        freeze_decoder: bool = False,
        freeze_head: bool = False,
        lr_overrides: dict[str, float] | None = None,
        class_names: list[str] | None = None,
        plot_on_val: bool | int = 1,
        rgb_indices: list[int] | None = None,
        tiled_inference_parameters: dict[str, Any] | None = None,
        tiled_inference_on_validation: bool = False,
        tiled_inference_on_testing: bool = False,
        test_dataloaders_names: list[str] | None = None,
        output_on_inference: str | list[str] = "prediction",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        name = type(self).__name__
        self.output_kinds = building.check_output_kinds(output_on_inference, self.inference_outputs, name)
        building.check_tiled(
            tiled_inference_parameters,
            tiled_inference_on_validation,
            tiled_inference_on_testing,
            self.supports_tiled_inference,
            name,
        )
        self.plot_every = building.check_plot(plot_on_val)
        check_optimizer(optimizer or "Adam", optimizer_hparams)
        if scheduler:
            check_scheduler(scheduler, scheduler_hparams)
        names = test_dataloaders_names
        self.test_prefixes = ["test"] if not names else [f"test/{n}" for n in names]
        self.confusion_matrices: dict[str, dict[str, Any]] = {}
        self._updated: set[str] = set()
        self._target_checked = False
        self._output_checked = False
        self.configure_models(model)
        self.configure_losses()
        self.configure_metrics()

    # -- the three hooks ---------------------------------------------------------------------------
    def configure_models(self, model: nn.Module | None = None) -> None:
        """Build ``self.model`` (from the factory, or the ready ``model`` given to ``__init__``), freeze
        the parts asked for, and settle ``self.num_classes``."""
        hp = self.hparams
        self.model = building.build_task_model(
            self.task_kind, hp["model_args"], hp["model_factory"], model, hp["aux_heads"]
        )
        building.freeze_parts(self.model, hp["freeze_backbone"], hp["freeze_decoder"], hp["freeze_head"])
        self.num_classes = (
            building.resolve_num_classes(type(self).__name__, hp["model_args"], hp.get("class_names"), model)
            if self.task_kind.uses_classes
            else None
        )

    def configure_losses(self) -> None:
        """Build ``self.criterion`` and the loss handlers (main and auxiliary outputs)."""
        hp = self.hparams
        if hp.get("class_weights") is not None and len(hp.get("class_weights")) != self.num_classes:
            raise ConfigError(
                f"class_weights has {len(hp.get('class_weights'))} values but there are {self.num_classes} classes"
                if self.task_kind.uses_classes
                else f"class_weights has no meaning for {self.task_kind}"
            )
        if not self.task_kind.uses_classes and hp.get("class_names") is not None:
            raise ConfigError(f"class_names has no meaning for {self.task_kind}; remove it")
        self.criterion = build_criterion(
            self.task_kind, hp["loss"] or self.default_loss, hp["ignore_index"], hp.get("class_weights")
        )
        self.loss_handler = LossHandler(self.criterion, hp["aux_loss"], align=self.align_auxiliary)
        self._tiled_loss_handler = LossHandler(self.criterion)  # tiled inference yields no auxiliary outputs

    def configure_metrics(self) -> None:
        """Build the train, validation and per-dataloader test metric collections."""
        metrics = self.build_metrics()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = nn.ModuleList([metrics.clone(prefix=f"{p}/") for p in self.test_prefixes])

    def configure_callbacks(self) -> list[Callback]:
        """On by default: stop on NaN/inf losses, name crashing samples, explain out-of-memory errors;
        confusion matrices and sample figures where the task has them."""
        callbacks: list[Callback] = [TrainingGuard(), OutOfMemoryGuard()]
        if self.has_confusion_matrix:
            callbacks.append(ConfusionMatrices())
        if self.plot_every:
            callbacks.append(SampleFigures(self.plot_every))
        return callbacks

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint trained by the reference resumes and predicts too: its key layout is translated."""
        from geoft.runs.reference_layout import adopt_reference_checkpoint

        adopt_reference_checkpoint(self, checkpoint, self._trainer is not None and self.trainer.training)

    # -- what subclasses define -----------------------------------------------------------------
    @abstractmethod
    def build_metrics(self) -> MetricCollection:
        """The task's metric collection (without prefix)."""

    def confusion_metric(self) -> Metric:
        """A fresh confusion-matrix metric (tasks with ``has_confusion_matrix``)."""
        raise NotImplementedError

    def prepare_target(self, target: Tensor) -> Tensor:
        """Bring the batch's target to the layout losses and metrics expect."""
        return target

    @abstractmethod
    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        """Update ``metrics`` with the model's main output and the target."""

    def hard_prediction(self, output: Tensor) -> Tensor:
        """Class indices (or values) from the main output."""
        return output

    @abstractmethod
    def inference(self, output: Tensor) -> dict[str, Tensor]:
        """``{"prediction": ..., "probabilities": ..., "logits": ...}`` for the kinds the task supports."""

    @abstractmethod
    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        """Figure of one sample (``image [C,H,W]``, target and main output without batch dimension)."""

    def align_auxiliary(self, pred: Tensor, target: Tensor) -> Tensor:
        """Make an auxiliary output comparable with the target (e.g. resize); identity by default."""
        return pred

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x: Tensor, **kwargs: Any) -> ModelOutput:
        """Run the model; a plain Tensor result is wrapped into :class:`ModelOutput`."""
        out = self.model(x, **kwargs)
        if isinstance(out, ModelOutput):
            return out
        if isinstance(out, Tensor):
            return ModelOutput(output=out)
        if hasattr(out, "output") and isinstance(out.output, Tensor):
            return ModelOutput(
                output=out.output, auxiliary_heads=dict(getattr(out, "auxiliary_heads", None) or {})
            )
        raise ConfigError(f"the model returned {type(out).__name__}; expected a ModelOutput or a Tensor")

    @staticmethod
    def _model_kwargs(batch: Mapping[str, Any]) -> dict[str, Any]:
        return {key: batch[key] for key in MODEL_KWARGS if key in batch and batch[key] is not None}

    def _infer(self, batch: Mapping[str, Any], tiled: bool) -> ModelOutput:
        x = batch["image"]
        kwargs = self._model_kwargs(batch)
        if not tiled:
            return self(x, **kwargs)
        from geoft.tasks.tiled_inference import tiled_inference

        def model_fn(tiles: Tensor, **tile_kwargs: Any) -> Tensor:
            return self(tiles, **tile_kwargs).output

        params = self.hparams.get("tiled_inference_parameters")
        return ModelOutput(output=tiled_inference(model_fn, x, params, sample_kwargs=kwargs or None))

    def _target(self, batch: Mapping[str, Any]) -> Tensor:
        key = self.task_kind.target_key
        if key not in batch:
            raise ConfigError(
                f"{type(self).__name__} needs batches with a {key!r} key; got keys {sorted(batch)}",
                hint="check that the datamodule matches the task (mask: segmentation/regression, label: "
                "classification/scalar regression)",
            )
        target = self.prepare_target(batch[key])
        if not self._target_checked:  # once: a full check per batch would cost a device sync each step
            building.check_target_values(
                target, self.task_kind, self.num_classes, self.hparams["ignore_index"]
            )
            self._target_checked = True
        return target

    def check_output(self, output: Tensor, target: Tensor | None) -> None:
        """Raise ConfigError when the model's output layout does not fit the task (checked once)."""
        building.check_output_layout(output, target, self.task_kind, self.num_classes)

    def _check_output_once(self, output: Tensor, target: Tensor | None) -> None:
        if not self._output_checked:
            self.check_output(output, target)
            self._output_checked = True

    # -- steps -----------------------------------------------------------------------------------
    def _step(
        self, batch: Mapping[str, Any], prefix: str, metrics: MetricCollection, tiled: bool, train: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        target = self._target(batch)
        output = self._infer(batch, tiled)
        self._check_output_once(output.output, target)
        handler = self._tiled_loss_handler if tiled else self.loss_handler
        losses = handler.compute(output, target)
        LossHandler.log(self.log, prefix, losses, target.shape[0], on_step=train, add_dataloader_idx=False)
        detached = output.output.detach()
        self.update_metrics(metrics, detached, target)
        self._updated.add(prefix)
        return losses["loss"], {"output": detached, "target": target}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, _ = self._step(batch, "train", self.train_metrics, tiled=False, train=True)
        return loss

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Returns the main output and target, for the callbacks (confusion matrices, figures)."""
        tiled = self.hparams.get("tiled_inference_on_validation")
        _, outputs = self._step(batch, "val", self.val_metrics, tiled=tiled, train=False)
        return outputs

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        if dataloader_idx >= len(self.test_prefixes):
            raise ConfigError(
                f"the datamodule returned more test dataloaders than test_dataloaders_names "
                f"({len(self.test_prefixes)})",
                hint="set test_dataloaders_names to one name per test dataloader",
            )
        tiled = self.hparams.get("tiled_inference_on_testing")
        metrics = self.test_metrics[dataloader_idx]
        _, outputs = self._step(batch, self.test_prefixes[dataloader_idx], metrics, tiled=tiled, train=False)
        return outputs

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Return ``prediction`` (plus ``probabilities``/``logits`` per ``output_on_inference``) on the
        CPU, and the batch's ``filename``, ``crs`` and ``transform`` (None when absent)."""
        tiled = self.hparams.get("tiled_inference_parameters") is not None
        output = self._infer(batch, tiled).output.detach().float()
        self._check_output_once(output, None)
        produced = self.inference(output)
        result: dict[str, Any] = {"prediction": produced["prediction"].cpu()}
        for kind in self.output_kinds:
            result[kind] = produced[kind].cpu()
        for key in METADATA_KEYS:
            result[key] = batch.get(key)
        return result

    # -- epoch ends ------------------------------------------------------------------------------
    def _log_metrics(self, prefix: str, metrics: MetricCollection) -> None:
        if prefix in self._updated:
            with warnings.catch_warnings():
                # ClasswiseWrapper inside a compute group warns after reset() although its values are right
                warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method.*")
                values = metrics.compute()
            self.log_dict(values, add_dataloader_idx=False)  # torchmetrics syncs across devices itself
            self._updated.discard(prefix)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train", self.train_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        for i, prefix in enumerate(self.test_prefixes):
            self._log_metrics(prefix, self.test_metrics[i])

    # -- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """Optimizer (with ``lr_overrides`` parameter groups) and optional scheduler, from the task's
        arguments. LightningCLI ``optimizer:``/``lr_scheduler:`` blocks replace this method."""
        return configure_optimization(self, self.hparams["lr_overrides"], "val/loss")


__all__ = ["GeoftTask", "INFERENCE_OUTPUTS", "METADATA_KEYS", "MODEL_KWARGS"]
