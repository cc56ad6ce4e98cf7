"""EncoderDecoderFactory: backbone + necks + decoder + head for any task, from names or modules.

``build_model`` accepts the reference's (TerraTorch's) arguments, so its configs carry over:
``backbone_*``, ``decoder_*`` and ``head_*`` keywords go to that part. Unlike the reference it
checks every argument against its target before building, and a ViT backbone given no necks gets
the ones its decoder needs instead of crashing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from geoft.errors import ConfigError
from geoft.models._assembly import AuxiliaryHeadModule
from geoft.models.factories._common import PIXEL_TASKS, check_task, merge_kwargs, split_prefixed
from geoft.models.heads import ClassificationHead, RegressionHead, SegmentationHead
from geoft.models.model import AuxiliaryHead, Model
from geoft.models.necks import NeckChain, build_neck_list
from geoft.models.padding import find_patch_size
from geoft.models.peft import apply_peft
from geoft.models.pixel_wise_model import PixelWiseModel
from geoft.models.scalar_output_model import ScalarOutputModel
from geoft.models.signature import check_kwargs
from geoft.task_kinds import TaskKind

logger = logging.getLogger(__name__)


def build_backbone(backbone: str | nn.Module, kwargs: Mapping[str, Any]) -> nn.Module:
    """A backbone from a registry name (checking ``kwargs``) or a ready module."""
    from geoft.registry import BACKBONE_REGISTRY

    if isinstance(backbone, nn.Module):
        if kwargs:
            raise ConfigError(
                f"backbone arguments {sorted(kwargs)} were given, but the backbone is an already built module",
                hint="remove the backbone_* arguments or pass the backbone by name",
            )
        module = backbone
    else:
        kwargs, temporal = _temporal_kwargs(kwargs)
        ctor = BACKBONE_REGISTRY.get(backbone)
        check_kwargs(ctor, kwargs, f"backbone {backbone!r}")
        module = ctor(**kwargs)
        if temporal is not None:
            from geoft.models.backbones.temporal import TemporalWrapper

            module = TemporalWrapper(module, **temporal)
    channels = getattr(module, "out_channels", None)
    if not isinstance(channels, (list, tuple)) or not channels:
        raise ConfigError(
            f"backbone {type(module).__name__} has no out_channels list",
            hint="a backbone must expose out_channels: list[int], one entry per returned feature",
        )
    return module


TEMPORAL_KWARGS = ("temporal_pooling", "temporal_n_timestamps", "temporal_subset_lengths")


def _temporal_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Split the reference's ``use_temporal`` / ``temporal_*`` backbone arguments from the backbone's own."""
    rest = {k: v for k, v in kwargs.items() if k != "use_temporal" and k not in TEMPORAL_KWARGS}
    given = {k[len("temporal_") :]: kwargs[k] for k in TEMPORAL_KWARGS if k in kwargs}
    if not kwargs.get("use_temporal", False):
        if given:
            raise ConfigError(
                f"backbone arguments {sorted('temporal_' + k for k in given)} need backbone_use_temporal: true"
            )
        return rest, None
    return rest, given


def backbone_patch_size(backbone: nn.Module) -> tuple[int, ...] | int | None:
    """What input sizes must be a multiple of: a ViT's patch size, or a CNN's deepest reduction
    (so every decoder's 2x upsamplings line up with the skips); None when unknown."""
    size = find_patch_size(backbone)
    if size is not None:
        return size
    reductions = getattr(backbone, "reductions", None)
    if isinstance(reductions, (list, tuple)) and reductions:
        return int(max(reductions))
    return None


def _decoder_attr(decoder: str | nn.Module | type, name: str, default: bool) -> bool:
    return bool(getattr(decoder, name, default))


def default_necks(
    backbone: nn.Module, decoder_cls: Any, task: TaskKind, decoder_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Necks a ViT backbone needs before ``decoder_cls``; [] for CNNs."""
    if getattr(backbone, "output_format", "NCHW") != "tokens":
        return []
    n = len(backbone.out_channels)
    patch = getattr(backbone, "patch_size", None)
    frames = getattr(backbone, "num_frames", 1)
    tubelet = patch[0] if isinstance(patch, (list, tuple)) and len(patch) == 3 else 1
    specs: list[dict[str, Any]] = []
    multi = _decoder_attr(decoder_cls, "multi_scale", False) and task in PIXEL_TASKS
    if multi and n > 4:
        specs.append({"name": "SelectIndices", "indices": [round((i + 1) * n / 4) - 1 for i in range(4)]})
    reshape: dict[str, Any] = {
        "name": "ReshapeTokensToImage",
        "effective_time_dim": max(1, int(frames) // int(tubelet)),
    }
    if not getattr(backbone, "has_cls_token", True):  # e.g. TerraMind: every token is a patch
        reshape["remove_cls_token"] = False
    specs.append(reshape)
    if multi and n >= 4 and not (decoder_kwargs or {}).get("scale_modules"):
        specs.append({"name": "LearnedInterpolateToPyramidal"})
    return specs


def _resolve_decoder_ctor(decoder: str | nn.Module) -> Any:
    from geoft.registry import DECODER_REGISTRY

    return decoder if isinstance(decoder, nn.Module) else DECODER_REGISTRY.get(decoder)


def build_decoder(
    decoder: str | nn.Module,
    channel_list: Sequence[int],
    kwargs: Mapping[str, Any],
    num_classes: int | None,
    what: str = "decoder",
) -> tuple[nn.Module, bool]:
    """Build a decoder on ``channel_list``; return it and whether it includes its head."""
    ctor = _resolve_decoder_ctor(decoder)
    includes_head = _decoder_attr(ctor, "includes_head", False)
    if isinstance(decoder, nn.Module):
        if kwargs:
            raise ConfigError(
                f"{what} arguments {sorted(kwargs)} were given, but the {what} is an already built module"
            )
        module = decoder
    else:
        kwargs = dict(kwargs)
        if includes_head:
            if "num_classes" in kwargs:
                raise ConfigError(
                    f"{what} {decoder!r}: give num_classes to the factory, not as a decoder argument"
                )
            kwargs["num_classes"] = num_classes
        label = f"{what} {decoder!r}"
        check_kwargs(ctor, kwargs, label, skip=(_first_param(ctor),))
        module = ctor(list(channel_list), **kwargs)
    if not isinstance(getattr(module, "out_channels", None), int):
        raise ConfigError(f"{what} {type(module).__name__} must have an int attribute out_channels")
    return module, includes_head


def _first_param(ctor: Any) -> str:
    try:
        params = [p for p in inspect.signature(ctor).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        return "embed_dim"
    return params[0].name if params else "embed_dim"


def build_head(
    task: TaskKind, in_channels: int, num_classes: int | None, kwargs: Mapping[str, Any], what: str
) -> nn.Module:
    """The head for ``task`` on ``in_channels``, with ``head_*`` arguments ``kwargs``."""
    kwargs = dict(kwargs)
    if "num_classes" in kwargs:
        raise ConfigError(f"{what}: give num_classes to the factory, not as a head argument")
    if task is TaskKind.SEGMENTATION:
        check_kwargs(
            SegmentationHead, kwargs, f"{what} (SegmentationHead)", skip=("in_channels", "num_classes")
        )
        return SegmentationHead(in_channels, num_classes, **kwargs)  # type: ignore[arg-type]
    if task is TaskKind.REGRESSION:
        check_kwargs(RegressionHead, kwargs, f"{what} (RegressionHead)", skip=("in_channels",))
        return RegressionHead(in_channels, **kwargs)
    check_kwargs(ClassificationHead, kwargs, f"{what} (ClassificationHead)", skip=("in_dim", "num_classes"))
    return ClassificationHead(in_channels, num_classes, **kwargs)  # type: ignore[arg-type]


def _aux_spec(aux: AuxiliaryHead | Mapping[str, Any], position: int) -> AuxiliaryHead:
    if isinstance(aux, AuxiliaryHead):
        return aux
    if isinstance(aux, Mapping):
        unknown = set(aux) - {"name", "decoder", "decoder_args"}
        if unknown or "name" not in aux or "decoder" not in aux:
            raise ConfigError(
                f"aux_decoders[{position}] must have keys name, decoder and optionally decoder_args; got {sorted(aux)}"
            )
        return AuxiliaryHead(aux["name"], aux["decoder"], dict(aux.get("decoder_args") or {}))
    raise ConfigError(
        f"aux_decoders[{position}] must be an AuxiliaryHead or a dict, got {type(aux).__name__}"
    )


def _split_aux_args(args: Mapping[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    decoder_args: dict[str, Any] = {}
    head_args: dict[str, Any] = {}
    for key, value in args.items():
        if key.startswith("head_"):
            head_args[key[5:]] = value
            continue
        short = key[8:] if key.startswith("decoder_") else key
        if short in decoder_args:
            raise ConfigError(f"auxiliary head {name!r}: decoder argument {short!r} is given twice")
        decoder_args[short] = value
    return decoder_args, head_args


class EncoderDecoderFactory:
    """Builds :class:`PixelWiseModel` / :class:`ScalarOutputModel` from parts."""

    def build_model(
        self,
        task: TaskKind | str,
        backbone: str | nn.Module | None = None,
        decoder: str | nn.Module | None = None,
        num_classes: int | None = None,
        num_outputs: int | None = None,
        necks: Sequence[Mapping[str, Any]] | None = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        decoder_kwargs: Mapping[str, Any] | None = None,
        head_kwargs: Mapping[str, Any] | None = None,
        aux_decoders: Sequence[AuxiliaryHead | Mapping[str, Any]] | None = None,
        rescale: bool = True,
        padding: str = "reflect",
        patch_size: int | Sequence[int] | None = None,
        peft_config: Mapping[str, Any] | None = None,
        **prefixed: Any,
    ) -> Model:
        """Build a model for ``task``.

        Args:
            task: ``segmentation``, ``regression``, ``classification``, ``multilabel_classification`` or
                ``scalar_regression`` (a :class:`~geoft.task_kinds.TaskKind`).
            backbone: a ``BACKBONE_REGISTRY`` name (``prithvi_eo_v2_300``, ``timm_resnet50``...) or a module
                with ``out_channels``.
            decoder: a ``DECODER_REGISTRY`` name (``UperNetDecoder``, ``smp_Unet``...) or a module with
                ``out_channels``.
            num_classes: classes (segmentation / classification); must be None for regression.
            num_outputs: values predicted per image for ``scalar_regression`` (default 1; the
                reference's name, ``num_classes`` is accepted in its place).
            necks: ``[{"name": "SelectIndices", "indices": [...]}, ...]``. None: what a ViT needs is
                added automatically (logged); ``[]``: no necks.
            backbone_kwargs / decoder_kwargs / head_kwargs: arguments of each part. They win over
                ``backbone_*`` / ``decoder_*`` / ``head_*`` keywords (a conflict warns).
            aux_decoders: auxiliary heads (:class:`AuxiliaryHead` or dicts with name/decoder/decoder_args).
            rescale: resize pixel-wise outputs to the input size.
            padding: how inputs are padded to a multiple of the patch size: reflect, zero, replicate, none.
            patch_size: pad to a multiple of this instead of the backbone's patch size.
            peft_config: adapters for the backbone through peft (``{method: LORA, replace_qkv: qkv,
                peft_config_kwargs: {r: 8, lora_alpha: 16}}``); only adapters, decoder and head train.
            **prefixed: ``backbone_<arg>``, ``decoder_<arg>``, ``head_<arg>``; anything else is an error.
        """
        # backbone and decoder default to None only so that leaving them out is a ConfigError, not a TypeError
        missing = [name for name, value in (("backbone", backbone), ("decoder", decoder)) if value is None]
        if missing:
            raise ConfigError(
                f"EncoderDecoderFactory.build_model is missing required argument(s): {', '.join(missing)}",
                hint="set them in model_args, e.g. model_args: {backbone: prithvi_eo_v2_300, "
                "decoder: UperNetDecoder, num_classes: 2}",
            )
        known = [p for p in inspect.signature(self.build_model).parameters if p != "prefixed"]
        task = check_task(task, factory="EncoderDecoderFactory")
        routed = split_prefixed(
            prefixed, ("backbone", "decoder", "head"), known, "EncoderDecoderFactory.build_model"
        )
        b_kwargs = merge_kwargs(backbone_kwargs, routed["backbone"], "backbone")
        d_kwargs = merge_kwargs(decoder_kwargs, routed["decoder"], "decoder")
        h_kwargs = merge_kwargs(head_kwargs, routed["head"], "head")
        num_classes = self._check_num_classes(task, num_classes, num_outputs)

        encoder = build_backbone(backbone, b_kwargs)
        if peft_config is not None:
            if not (b_kwargs.get("pretrained") or b_kwargs.get("ckpt_path")):
                logger.warning(
                    "peft_config adapts a backbone with random weights: set backbone_pretrained: true or "
                    "backbone_ckpt_path (fine when a trained checkpoint is loaded afterwards)"
                )
            encoder = apply_peft(encoder, peft_config)
        decoder_ctor = _resolve_decoder_ctor(decoder)
        if necks is None:
            neck_specs = default_necks(encoder, decoder_ctor, task, d_kwargs)
            if neck_specs:
                logger.info(
                    "ViT backbone %s returns tokens; adding necks %s before the decoder (pass necks=[] to disable)",
                    type(encoder).__name__,
                    neck_specs,
                )
        else:
            neck_specs = [dict(spec) for spec in necks]
        neck_list, channels = build_neck_list(neck_specs, encoder.out_channels)
        head_classes = 1 if task is TaskKind.REGRESSION else num_classes

        dec, includes_head = build_decoder(decoder, channels, d_kwargs, head_classes)
        if includes_head and h_kwargs:
            raise ConfigError(
                f"decoder {decoder!r} includes its head, so head arguments {sorted(h_kwargs)} would be unused"
            )
        head = (
            nn.Identity()
            if includes_head
            else build_head(task, dec.out_channels, num_classes, h_kwargs, "head")
        )
        aux_heads = self._aux_heads(task, aux_decoders or [], channels, head_classes, num_classes)

        common = {
            "task": task,
            "encoder": encoder,
            "decoder": dec,
            "head": head,
            "neck": NeckChain(neck_list, channels),
            "aux_heads": aux_heads,
            "patch_size": tuple(patch_size) if isinstance(patch_size, Sequence) else patch_size,
            "padding": padding,
        }
        if common["patch_size"] is None:
            common["patch_size"] = backbone_patch_size(encoder)
        if task in PIXEL_TASKS:
            return PixelWiseModel(**common, rescale=rescale)
        return ScalarOutputModel(**common)

    @staticmethod
    def _check_num_classes(task: TaskKind, num_classes: int | None, num_outputs: int | None) -> int | None:
        if task is TaskKind.SCALAR_REGRESSION:
            if num_classes is not None and num_outputs is not None:
                raise ConfigError("give num_outputs or num_classes for scalar_regression, not both")
            outputs = (
                num_outputs if num_outputs is not None else num_classes if num_classes is not None else 1
            )
            if not isinstance(outputs, int) or outputs < 1:
                raise ConfigError(f"scalar_regression needs num_outputs >= 1, got {outputs!r}")
            return outputs
        if num_outputs is not None:
            raise ConfigError(
                f"num_outputs applies to scalar_regression only, not {task}",
                hint="for several outputs per pixel use head_num_outputs",
            )
        if task is TaskKind.REGRESSION:
            if num_classes is not None:
                raise ConfigError(
                    "num_classes is not used for regression",
                    hint="leave it unset; for several outputs per pixel use head_num_outputs",
                )
            return None
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"task {task!r} needs num_classes (a positive int), got {num_classes!r}")
        return num_classes

    @staticmethod
    def _aux_heads(
        task: TaskKind,
        specs: Sequence[AuxiliaryHead | Mapping[str, Any]],
        channels: list[int],
        head_classes: int | None,
        num_classes: int | None,
    ) -> dict[str, AuxiliaryHeadModule]:
        out: dict[str, AuxiliaryHeadModule] = {}
        for position, raw in enumerate(specs):
            spec = _aux_spec(raw, position)
            if spec.name in out:
                raise ConfigError(f"two auxiliary heads are named {spec.name!r}; names must be unique")
            d_args, h_args = _split_aux_args(spec.decoder_args or {}, spec.name)
            what = f"auxiliary decoder {spec.name!r}"
            dec, includes_head = build_decoder(spec.decoder, channels, d_args, head_classes, what=what)
            if includes_head and h_args:
                raise ConfigError(
                    f"{what} includes its head, so head arguments {sorted(h_args)} would be unused"
                )
            head = (
                nn.Identity()
                if includes_head
                else build_head(task, dec.out_channels, num_classes, h_args, what)
            )
            out[spec.name] = AuxiliaryHeadModule(dec, head)
        return out
