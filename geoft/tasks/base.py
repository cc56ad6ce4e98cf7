"""The Lightning module shared by every geoft task: model building, steps, logging, optimisers.

Subclasses (:mod:`geoft.tasks.segmentation`, ``regression``, ``classification``) only say how a
target looks, which metrics and losses apply, and what a prediction is.

Logged names: losses as described in :mod:`geoft.tasks.loss_handler`; metrics as
``train/<metric>``, ``val/<metric>``, ``test/<metric>`` (or ``test/<dataloader name>/<metric>`` when
``test_dataloaders_names`` is set). Training losses are logged per step, everything else per epoch.

Confusion matrices (segmentation and classification) of the last validation/test epoch are kept in
``task.confusion_matrices`` (``{"val": {"epoch", "class_names", "matrix"}, "test": ...}``, rows are
true classes, columns predicted ones) and written to ``<logger.log_dir>/confusion_matrices.json`` when
the trainer has a logger with a ``log_dir``.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from lightning.pytorch import Callback, LightningModule
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from geoft.errors import ConfigError, DataError
from geoft.models.model import AuxiliaryHead, ModelFactory, ModelOutput
from geoft.tasks.loss_handler import LossHandler
from geoft.tasks.losses import build_criterion
from geoft.tasks.optimizers import build_optimizer, build_scheduler, parameter_groups
from geoft.tasks.plotting import can_log_figures, log_figure
from geoft.training_guards import TrainingGuard, out_of_memory_guard

# Batch keys forwarded to the model as keyword arguments (see docs/architecture.md).
MODEL_KWARGS = ("temporal_coords", "location_coords")
# Batch keys copied into predict_step's output so a writer can georeference predictions.
METADATA_KEYS = ("filename", "crs", "transform")
INFERENCE_OUTPUTS = ("prediction", "probabilities", "logits")
PLOT_BATCHES = 4  # validation/test batches per plotting epoch that get a figure (first sample each)


def _aux_head(spec: AuxiliaryHead | Mapping[str, Any]) -> AuxiliaryHead:
    if isinstance(spec, AuxiliaryHead):
        return spec
    if isinstance(spec, Mapping):
        try:
            return AuxiliaryHead(**spec)
        except TypeError as err:
            raise ConfigError(
                f"bad aux_heads entry {dict(spec)}: {err}",
                hint="each entry needs name, decoder and optionally decoder_args",
            ) from err
    raise ConfigError(f"aux_heads entries must be AuxiliaryHead or dicts, got {type(spec).__name__}")


class GeoftTask(LightningModule):
    """Base of the four geoft tasks. See the subclasses for what each one predicts.

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

    task_kind: ClassVar[str]  # key in geoft.tasks.losses.TASK_LOSSES
    factory_task: ClassVar[str]  # task name given to ModelFactory.build_model
    default_loss: ClassVar[str]
    target_key: ClassVar[str]  # "mask" or "label"
    inference_outputs: ClassVar[tuple[str, ...]] = INFERENCE_OUTPUTS
    uses_classes: ClassVar[bool] = True
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
        self.model = self._build_model(model_args, model_factory, model, aux_heads)
        self._freeze(freeze_backbone, freeze_decoder, freeze_head)
        self.num_classes = (
            self._resolve_num_classes(model_args, class_names, model) if self.uses_classes else None
        )
        if class_weights is not None and len(class_weights) != self.num_classes:
            raise ConfigError(
                f"class_weights has {len(class_weights)} values but there are {self.num_classes} classes"
                if self.uses_classes
                else f"class_weights has no meaning for {self.task_kind}"
            )
        if not self.uses_classes and class_names is not None:
            raise ConfigError(f"class_names has no meaning for {self.task_kind}; remove it")
        self.criterion = build_criterion(
            self.task_kind, loss or self.default_loss, ignore_index, class_weights
        )
        self.loss_handler = LossHandler(self.criterion, aux_loss, align=self.align_auxiliary)
        self._tiled_loss_handler = LossHandler(self.criterion)  # tiled inference yields no auxiliary outputs
        self.output_kinds = self._check_outputs(output_on_inference)
        self._check_tiled(
            tiled_inference_parameters, tiled_inference_on_validation, tiled_inference_on_testing
        )
        self.plot_every = self._check_plot(plot_on_val)
        self._check_optimisation()

        metrics = self.build_metrics()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        names = test_dataloaders_names
        self.test_prefixes = ["test"] if not names else [f"test/{name}" for name in names]
        self.test_metrics = nn.ModuleList([metrics.clone(prefix=f"{p}/") for p in self.test_prefixes])
        if self.has_confusion_matrix:
            self.val_confusion = self.build_confusion_matrix()
            self.test_confusion = nn.ModuleList([self.build_confusion_matrix() for _ in self.test_prefixes])
        self.confusion_matrices: dict[str, dict[str, Any]] = {}
        self._updated: set[str] = set()
        self._target_checked = False
        self._output_checked = False

    # -- what subclasses define -----------------------------------------------------------------
    @abstractmethod
    def build_metrics(self) -> MetricCollection:
        """The task's metric collection (without prefix)."""

    def build_confusion_matrix(self) -> Metric:
        raise NotImplementedError

    def prepare_target(self, target: Tensor) -> Tensor:
        """Bring the batch's target to the layout losses and metrics expect."""
        return target

    def check_target(self, target: Tensor) -> None:
        """Raise DataError when the target holds values the task cannot use (checked on one batch)."""
        if not self.uses_classes:
            return
        ignore = self.hparams["ignore_index"]
        values = torch.unique(target[~torch.isnan(target)] if target.is_floating_point() else target)
        allowed = set(range(self.num_classes)) if self.task_kind != "multilabel" else {0, 1}
        bad = sorted(
            {int(v) for v in values.tolist()} - allowed - ({int(ignore)} if ignore is not None else set())
        )
        if bad:
            raise DataError(
                f"the {self.target_key!r} values {bad[:10]} are neither classes ({min(allowed)}..{max(allowed)}) "
                f"nor ignore_index ({ignore})",
                hint="set ignore_index to the no-data value, or check num_classes and the label files",
            )

    def _check_output_once(self, output: Tensor, target: Tensor | None) -> None:
        """Compare the model's output layout with the task once, so mistakes fail with a clear message."""
        if self._output_checked:
            return
        if self.uses_classes and (output.ndim < 2 or output.shape[1] != self.num_classes):
            raise ConfigError(
                f"the model's output has shape {tuple(output.shape)}, but the task has {self.num_classes} classes "
                f"(expected [B, {self.num_classes}, ...])",
                hint="make model_args.num_classes match the model, or fix the model's last layer",
            )
        if target is not None:
            spatial = output.shape[2:] if self.uses_classes else output.shape[-target.ndim + 1 :]
            expected = target.shape[1:]
            if self.target_key == "mask" and tuple(spatial) != tuple(expected):
                raise ConfigError(
                    f"the model's output {tuple(output.shape)} does not match the mask {tuple(target.shape)}",
                    hint="pixel-wise models must return predictions at the input's height and width",
                )
        self._output_checked = True

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

    # -- construction helpers -------------------------------------------------------------------
    def _build_model(
        self,
        model_args: Mapping[str, Any] | None,
        model_factory: str | ModelFactory | None,
        model: nn.Module | None,
        aux_heads: Sequence[AuxiliaryHead | Mapping[str, Any]] | None,
    ) -> nn.Module:
        if model is not None and model_factory is not None:
            raise ConfigError("give either model_factory (with model_args) or a ready model, not both")
        if model is not None:
            if not isinstance(model, nn.Module):
                raise ConfigError(f"model must be a torch nn.Module, got {type(model).__name__}")
            if aux_heads:
                raise ConfigError(
                    "aux_heads are built by a model factory; a ready model must create them itself"
                )
            extra = sorted(set(model_args or {}) - {"num_classes"})
            if extra:
                raise ConfigError(
                    f"model_args {extra} are unused with a ready model (only num_classes is read)",
                    hint="pass them to your model's constructor, or use model_factory",
                )
            return model
        if model_factory is None:
            raise ConfigError(
                "no model: set model_factory (e.g. 'EncoderDecoderFactory') with model_args, or pass model="
            )
        if isinstance(model_factory, str):
            from geoft.registry import MODEL_FACTORY_REGISTRY

            factory = MODEL_FACTORY_REGISTRY.build(model_factory)
        else:
            factory = model_factory
        if not callable(getattr(factory, "build_model", None)):
            raise ConfigError(f"model_factory {type(factory).__name__} has no build_model method")
        kwargs = dict(model_args or {})
        if aux_heads:
            kwargs["aux_decoders"] = [_aux_head(spec) for spec in aux_heads]
        built = factory.build_model(self.factory_task, **kwargs)
        if not isinstance(built, nn.Module):
            raise ConfigError(
                f"{type(factory).__name__}.build_model returned {type(built).__name__}, not a module"
            )
        return built

    def _freeze(self, backbone: bool, decoder: bool, head: bool) -> None:
        for wanted, flag, method in (
            (backbone, "freeze_backbone", "freeze_encoder"),
            (decoder, "freeze_decoder", "freeze_decoder"),
            (head, "freeze_head", "freeze_head"),
        ):
            if not wanted:
                continue
            fn = getattr(self.model, method, None)
            if not callable(fn):
                raise ConfigError(
                    f"{flag}=True but the model ({type(self.model).__name__}) has no {method}() method",
                    hint="use a geoft Model (from a model factory), or freeze parameters yourself",
                )
            fn()

    def _resolve_num_classes(
        self, model_args: Mapping[str, Any] | None, class_names: Sequence[str] | None, model: nn.Module | None
    ) -> int:
        found: dict[str, int] = {}
        if model_args and model_args.get("num_classes") is not None:
            found["model_args.num_classes"] = int(model_args["num_classes"])
        if class_names:
            found["class_names"] = len(class_names)
        if model is not None and isinstance(getattr(model, "num_classes", None), int):
            found["model.num_classes"] = model.num_classes
        if not found:
            raise ConfigError(
                f"{type(self).__name__} needs the number of classes",
                hint="set model_args.num_classes (or class_names)",
            )
        if len(set(found.values())) > 1:
            raise ConfigError(f"inconsistent number of classes: {found}")
        value = next(iter(found.values()))
        if value < 1:
            raise ConfigError(f"num_classes must be >= 1, got {value}")
        return value

    def _check_outputs(self, output_on_inference: str | Sequence[str]) -> tuple[str, ...]:
        kinds = (output_on_inference,) if isinstance(output_on_inference, str) else tuple(output_on_inference)
        bad = [k for k in kinds if k not in self.inference_outputs]
        if bad or not kinds:
            raise ConfigError(
                f"output_on_inference {list(kinds)} is invalid for {type(self).__name__}",
                hint=f"use one or more of {', '.join(self.inference_outputs)}",
            )
        return kinds

    def _check_tiled(self, params: Mapping[str, Any] | None, on_val: bool, on_test: bool) -> None:
        if params is not None and not self.supports_tiled_inference:
            raise ConfigError(
                f"tiled inference does not apply to {type(self).__name__} (one label per image)"
            )
        if (on_val or on_test) and params is None:
            raise ConfigError("tiled_inference_on_validation/testing need tiled_inference_parameters")
        if params is not None:
            from geoft.tasks.tiled_inference import TiledInferenceParameters

            TiledInferenceParameters.from_any(params)  # raises ConfigError on bad keys or values

    @staticmethod
    def _check_plot(plot_on_val: bool | int) -> int:
        every = int(plot_on_val)
        if every < 0:
            raise ConfigError(f"plot_on_val must be a bool or an int >= 0, got {plot_on_val!r}")
        return every

    def _check_optimisation(self) -> None:
        """Build optimizer and scheduler once on a dummy parameter so config errors surface now."""
        probe = [nn.Parameter(torch.zeros(1))]
        opt = build_optimizer(
            self.hparams["optimizer"] or "Adam", probe, self.hparams["lr"], self.hparams["optimizer_hparams"]
        )
        if self.hparams["scheduler"]:
            build_scheduler(
                self.hparams["scheduler"], opt, self.hparams["scheduler_hparams"], "val/loss", lambda _: 100
            )

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

        params = self.hparams["tiled_inference_parameters"]
        return ModelOutput(output=tiled_inference(model_fn, x, params, sample_kwargs=kwargs or None))

    def _target(self, batch: Mapping[str, Any]) -> Tensor:
        if self.target_key not in batch:
            raise ConfigError(
                f"{type(self).__name__} needs batches with a {self.target_key!r} key; got keys {sorted(batch)}",
                hint="check that the datamodule matches the task (mask: segmentation/regression, label: classification)",
            )
        target = self.prepare_target(batch[self.target_key])
        if not self._target_checked:  # once: a full check per batch would cost a device sync each step
            self.check_target(target)
            self._target_checked = True
        return target

    # -- steps -----------------------------------------------------------------------------------
    def _step(
        self, batch: Mapping[str, Any], prefix: str, metrics: MetricCollection, tiled: bool, train: bool
    ) -> tuple[Tensor, ModelOutput, Tensor]:
        target = self._target(batch)
        output = self._infer(batch, tiled)
        self._check_output_once(output.output, target)
        handler = self._tiled_loss_handler if tiled else self.loss_handler
        losses = handler.compute(output, target)
        LossHandler.log(self.log, prefix, losses, target.shape[0], on_step=train, add_dataloader_idx=False)
        self.update_metrics(metrics, output.output.detach(), target)
        self._updated.add(prefix)
        return losses["loss"], output, target

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        with out_of_memory_guard("training", batch):
            loss, _, _ = self._step(batch, "train", self.train_metrics, tiled=False, train=True)
        return loss

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        with out_of_memory_guard("training (backward pass)"):
            super().backward(loss, *args, **kwargs)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        with out_of_memory_guard("training (optimizer)"):
            super().optimizer_step(*args, **kwargs)

    def configure_callbacks(self) -> list[Callback]:
        """On by default: stop on NaN/inf losses and name samples that crash DataLoader workers."""
        return [TrainingGuard()]

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        tiled = self.hparams["tiled_inference_on_validation"]
        with out_of_memory_guard("validation", batch):
            _, output, target = self._step(batch, "val", self.val_metrics, tiled=tiled, train=False)
        if self.has_confusion_matrix:
            self.val_confusion.update(self.hard_prediction(output.output.detach()), target)
        self._maybe_plot(batch, output, target, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx >= len(self.test_prefixes):
            raise ConfigError(
                f"the datamodule returned more test dataloaders than test_dataloaders_names "
                f"({len(self.test_prefixes)})",
                hint="set test_dataloaders_names to one name per test dataloader",
            )
        prefix = self.test_prefixes[dataloader_idx]
        tiled = self.hparams["tiled_inference_on_testing"]
        with out_of_memory_guard("test", batch):
            _, output, target = self._step(
                batch, prefix, self.test_metrics[dataloader_idx], tiled=tiled, train=False
            )
        if self.has_confusion_matrix:
            self.test_confusion[dataloader_idx].update(self.hard_prediction(output.output.detach()), target)
        if dataloader_idx == 0:
            self._maybe_plot(batch, output, target, batch_idx, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Return ``prediction`` (plus ``probabilities``/``logits`` per ``output_on_inference``) on the
        CPU, and the batch's ``filename``, ``crs`` and ``transform`` (None when absent)."""
        tiled = self.hparams["tiled_inference_parameters"] is not None
        with out_of_memory_guard("predict", batch):
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
        if self.has_confusion_matrix:
            self._store_confusion("val", self.val_confusion)

    def on_test_epoch_end(self) -> None:
        for i, prefix in enumerate(self.test_prefixes):
            self._log_metrics(prefix, self.test_metrics[i])
            if self.has_confusion_matrix:
                self._store_confusion(prefix, self.test_confusion[i])

    def _store_confusion(self, key: str, metric: Metric) -> None:
        if metric.update_count == 0 or self.trainer.sanity_checking:
            metric.reset()
            return
        matrix = metric.compute().cpu().long().tolist()
        metric.reset()
        names = self.hparams["class_names"] or [str(i) for i in range(self.num_classes or 0)]
        self.confusion_matrices[key] = {
            "epoch": self.current_epoch,
            "class_names": list(names),
            "matrix": matrix,
        }
        log_dir = getattr(self.logger, "log_dir", None) if self.logger is not None else None
        if log_dir and self.trainer.is_global_zero:
            os.makedirs(log_dir, exist_ok=True)
            with open(os.path.join(log_dir, "confusion_matrices.json"), "w", encoding="utf-8") as f:
                json.dump(self.confusion_matrices, f, indent=1)

    # -- figures ---------------------------------------------------------------------------------
    def _maybe_plot(
        self, batch: Mapping[str, Any], output: ModelOutput, target: Tensor, batch_idx: int, stage: str
    ) -> None:
        if not self.plot_every or batch_idx >= PLOT_BATCHES or self.trainer.sanity_checking:
            return
        if stage == "val" and self.current_epoch % self.plot_every:
            return
        loggers = [lg for lg in self.loggers if can_log_figures(lg)]
        if not loggers:
            return
        filenames = batch.get("filename")
        name = str(filenames[0]) if isinstance(filenames, Sequence) and filenames else f"batch{batch_idx}"
        title = f"{stage} epoch {self.current_epoch}: {os.path.basename(name)}"
        for logger in loggers:
            image = batch["image"]
            image = next(iter(image.values())) if isinstance(image, Mapping) else image  # first modality
            fig = self.sample_figure(image[0], target[0], output.output[0].detach(), title)
            log_figure(logger, f"{stage}/sample_{batch_idx}", fig, self.global_step)

    # -- optimisation ----------------------------------------------------------------------------
    def _total_iters(self, interval: str) -> int:
        if interval == "step":
            return int(self.trainer.estimated_stepping_batches)
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 1:
            raise ConfigError(
                "WarmupCosine with interval 'epoch' needs trainer.max_epochs or scheduler_hparams.total_iters"
            )
        return int(max_epochs)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimizer (with ``lr_overrides`` parameter groups) and optional scheduler, from the task's
        arguments. LightningCLI ``optimizer:``/``lr_scheduler:`` blocks replace this method."""
        groups = parameter_groups(self.named_parameters(), self.hparams["lr_overrides"])
        optimizer = build_optimizer(
            self.hparams["optimizer"] or "Adam", groups, self.hparams["lr"], self.hparams["optimizer_hparams"]
        )
        if not self.hparams["scheduler"]:
            return {"optimizer": optimizer}
        scheduler = build_scheduler(
            self.hparams["scheduler"],
            optimizer,
            self.hparams["scheduler_hparams"],
            "val/loss",
            self._total_iters,
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


__all__ = ["GeoftTask", "INFERENCE_OUTPUTS", "METADATA_KEYS", "MODEL_KWARGS"]
