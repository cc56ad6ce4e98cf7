"""Parameter-efficient fine-tuning of backbones through the ``peft`` library (LoRA and friends).

``model_args: {peft_config: {method: LORA, replace_qkv: qkv, peft_config_kwargs: {r: 8, lora_alpha: 16,
target_modules: [...]}}}`` has the reference's format. The backbone is wrapped by ``peft.get_peft_model``,
which freezes its own weights and leaves only the adapters trainable, so checkpoints keep the reference's
key layout (``encoder.base_model.model.<module>.lora_A.default.weight``). Export merges the adapters
(:func:`merged_adapters`), so exported models need no ``peft``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from geoft.errors import ConfigError

log = logging.getLogger(__name__)

# What LoRA adapts when the config names no target_modules (peft regexes over module names): the
# attention projections of timm-style ViT and Swin blocks (Prithvi, Prithvi Swin, TerraMind, timm), not
# the patch embeddings that are also called ``proj``.
DEFAULT_TARGET_MODULES = r"(.*\.)?attn\.(qkv|proj)"
_SPLIT_QKV_TARGETS = r"(.*\.)?attn\.(qkv\.[qkv]_linear|proj)"
# torchvision's Swin (torchgeo's Satlas Swin) reads its attention weights (below): its MLP linears then.
_MLP_TARGETS = r"(.*\.)?mlp\.[03]"
_PEFT_KEYS = {"method", "replace_qkv", "peft_config_kwargs"}


def _weights_read_directly(backbone: nn.Module) -> list[str]:
    """Linear layers whose parent reads ``.weight`` instead of calling them: an adapter there never runs."""
    from torchvision.models.swin_transformer import ShiftedWindowAttention  # V2 subclasses it

    from geoft.models.backbones.terramind_vit import ModalityEmbedding

    readers: tuple[tuple[type[nn.Module], tuple[str, ...]], ...] = (
        (ShiftedWindowAttention, ("qkv", "proj")),
        (ModalityEmbedding, ("proj",)),
    )
    found: list[str] = []
    for name, module in backbone.named_modules():
        for cls, children in readers:
            if isinstance(module, cls):
                found += [f"{name}.{child}" if name else child for child in children]
    return found


@dataclass(frozen=True)
class PeftSpec:
    """``peft_config`` of ``model_args``, checked.

    Attributes:
        method: a ``peft.PeftType`` name (``LORA``; others are passed to peft as they are).
        replace_qkv: name of fused ``qkv`` linear layers to split into ``q_linear``/``k_linear``/``v_linear``
            first, so that the three can be adapted separately.
        peft_config_kwargs: arguments of the method's peft config class (``r``, ``lora_alpha``, ...).
    """

    method: str = "LORA"
    replace_qkv: str | None = None
    peft_config_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | PeftSpec) -> PeftSpec:
        if isinstance(raw, PeftSpec):
            return raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"peft_config must be a mapping with {sorted(_PEFT_KEYS)}, got {raw!r}")
        unknown = sorted(set(raw) - _PEFT_KEYS)
        if unknown:
            raise ConfigError(
                f"peft_config has unknown key(s) {unknown}; valid keys: {sorted(_PEFT_KEYS)} "
                "(arguments of the method itself go into peft_config_kwargs)"
            )
        kwargs = raw.get("peft_config_kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"peft_config.peft_config_kwargs must be a mapping, got {kwargs!r}")
        method = str(raw.get("method", "LORA")).upper()
        return cls(method=method, replace_qkv=raw.get("replace_qkv"), peft_config_kwargs=dict(kwargs))


def _peft_module() -> Any:
    try:
        import peft
    except ModuleNotFoundError as err:
        raise ConfigError(
            "model_args.peft_config needs the peft package, which is not installed",
            hint="pip install 'geoft[peft]' (or pip install peft)",
        ) from err
    return peft


class SplitQKV(nn.Module):
    """A fused ``qkv`` linear layer as three (``q_linear``, ``k_linear``, ``v_linear``), same output.

    The names are the reference's, so checkpoints trained there with ``replace_qkv`` load here.
    """

    def __init__(self, fused: nn.Linear) -> None:
        super().__init__()
        width = fused.in_features
        if fused.out_features != 3 * width:
            raise ConfigError(
                f"replace_qkv: a qkv layer must map {width} features to {3 * width}, "
                f"this one maps to {fused.out_features}"
            )
        has_bias = fused.bias is not None
        self.q_linear, self.k_linear, self.v_linear = (
            nn.Linear(width, width, bias=has_bias) for _ in range(3)
        )
        with torch.no_grad():
            for index, part in enumerate((self.q_linear, self.k_linear, self.v_linear)):
                part.weight.copy_(fused.weight[index * width : (index + 1) * width])
                if has_bias:
                    part.bias.copy_(fused.bias[index * width : (index + 1) * width])
        self.in_features, self.out_features = width, 3 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.q_linear(x), self.k_linear(x), self.v_linear(x)), dim=-1)


def split_qkv(module: nn.Module, name: str) -> int:
    """Replace every linear layer called ``name`` in ``module`` by a :class:`SplitQKV`; returns how many."""
    targets = [key for key, child in module.named_modules() if key.rsplit(".", 1)[-1] == name]
    for key in targets:
        parent_name, _, attr = key.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        fused = getattr(parent, attr)
        if not isinstance(fused, nn.Linear):
            raise ConfigError(f"replace_qkv: {key} is a {type(fused).__name__}, not a linear layer")
        setattr(parent, attr, SplitQKV(fused))
    if not targets:
        raise ConfigError(f"replace_qkv: the backbone has no layer named {name!r}")
    return len(targets)


def parameter_counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return trainable, frozen


def apply_peft(backbone: nn.Module, raw_spec: Mapping[str, Any] | PeftSpec) -> nn.Module:
    """Wrap ``backbone`` with the adapters that ``raw_spec`` asks for; only the adapters train."""
    spec = PeftSpec.parse(raw_spec)
    peft = _peft_module()
    try:
        config_cls = peft.PEFT_TYPE_TO_CONFIG_MAPPING[spec.method]
    except KeyError:
        methods = ", ".join(sorted(str(k) for k in peft.PEFT_TYPE_TO_CONFIG_MAPPING))
        raise ConfigError(
            f"peft_config.method {spec.method!r} is not a peft method; choose one of {methods}"
        ) from None
    read_directly = _weights_read_directly(backbone)
    if spec.replace_qkv:
        hit = [name for name in read_directly if name.rsplit(".", 1)[-1] == spec.replace_qkv]
        if hit:
            raise ConfigError(
                f"replace_qkv: {hit[0]} cannot be split, its attention reads its weight directly",
                hint="leave replace_qkv out for this backbone",
            )
        split_qkv(backbone, spec.replace_qkv)
    kwargs = dict(spec.peft_config_kwargs)
    if spec.method == "LORA" and not kwargs.get("target_modules"):
        attention = _SPLIT_QKV_TARGETS if spec.replace_qkv else DEFAULT_TARGET_MODULES
        attention_read = any(name.rsplit(".", 1)[-1] == "qkv" for name in read_directly)
        kwargs["target_modules"] = _MLP_TARGETS if attention_read else attention
        log.info("peft_config names no target_modules: adapting %s", kwargs["target_modules"])
    try:
        config = config_cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"peft_config.peft_config_kwargs: {err}") from err
    _refuse_unreachable_targets(config, read_directly)
    try:
        wrapped = peft.get_peft_model(backbone, config)
    except ValueError as err:  # e.g. target modules not found
        raise ConfigError(f"peft_config: {err}") from err
    trainable, frozen = parameter_counts(wrapped)
    log.info(
        "%s adapters on the backbone: %s trainable parameters, %s frozen",
        spec.method,
        f"{trainable:,}",
        f"{frozen:,}",
    )
    return wrapped


def _refuse_unreachable_targets(config: Any, read_directly: list[str]) -> None:
    """An adapter on a layer whose weight is read directly would never train: say so before training."""
    if not getattr(config, "target_modules", None):
        return
    from peft.tuners.tuners_utils import check_target_module_exists

    unreachable = [name for name in read_directly if check_target_module_exists(config, name)]
    if unreachable:
        raise ConfigError(
            f"peft_config: target_modules matches {unreachable[0]} (and {len(unreachable) - 1} more), whose "
            "parent reads its weight instead of calling it, so an adapter there would never train",
            hint="target other layers, e.g. the blocks' MLP linears (target_modules: ['mlp.0', 'mlp.3'] "
            "for torchvision's Swin), or name the attention layers only",
        )


def is_peft_module(module: nn.Module) -> bool:
    """Whether ``module`` is a peft wrapper (without importing peft when it is not installed)."""
    return any(cls.__module__.startswith("peft.") for cls in type(module).__mro__)


def has_adapters(model: nn.Module) -> bool:
    return any(is_peft_module(m) for m in model.modules())


def merged_adapters(model: nn.Module) -> nn.Module:
    """``model`` itself when it has no adapters, else a copy whose adapters are merged into the weights."""
    if not has_adapters(model):
        return model
    merged = copy.deepcopy(model)
    if is_peft_module(merged):
        return merged.merge_and_unload()
    wrappers = [name for name, child in merged.named_modules() if name and is_peft_module(child)]
    outermost = [name for name in wrappers if not any(name.startswith(other + ".") for other in wrappers)]
    for name in outermost:
        parent_name, _, attr = name.rpartition(".")
        parent = merged.get_submodule(parent_name) if parent_name else merged
        setattr(parent, attr, getattr(parent, attr).merge_and_unload())
    return merged


__all__ = [
    "DEFAULT_TARGET_MODULES",
    "PeftSpec",
    "SplitQKV",
    "apply_peft",
    "has_adapters",
    "merged_adapters",
    "parameter_counts",
    "split_qkv",
]
