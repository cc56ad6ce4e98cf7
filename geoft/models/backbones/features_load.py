"""Load a full-model checkpoint (timm / torchvision / torchgeo layout) into a timm features-only model.

timm's feature wrappers rename some modules (``stages.0`` -> ``stages_0``, or add a ``model.``
prefix) and leave out the classifier and unused stages; this maps the names back, drops what the
features model does not have (with the reason), adapts the first convolution to another number of
input channels, and loads the rest strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from timm.models import adapt_input_conv
from torch import nn

from geoft.models.backbones.checkpoint import LoadReport, load_exact, read_state_dict, strip_prefix


def _feature_key(key: str, own: set[str]) -> str | None:
    parts = key.split(".")
    candidates = [key, "model." + key]
    if len(parts) > 2:
        candidates.append("_".join(parts[:2]) + "." + ".".join(parts[2:]))
    return next((c for c in candidates if c in own), None)


def load_features_checkpoint(
    model: nn.Module,
    ckpt: str | Path | dict[str, torch.Tensor],
    name: str,
    first_conv: str | None = None,
    source: str | None = None,
) -> LoadReport:
    """Load ``ckpt`` into the features-only ``model`` and return what happened.

    Args:
        model: a timm ``features_only`` model.
        ckpt: a weight file or a state dict of the full model.
        name: the backbone's name for messages.
        first_conv: module name of the first convolution (timm's ``pretrained_cfg["first_conv"]``),
            adapted when the file has another number of input channels.
        source: how to call the checkpoint in messages (default: the path).
    """
    own_state = model.state_dict()
    own = set(own_state)
    if isinstance(ckpt, dict):
        state, label = ckpt, source or "the given state dict"
    else:
        state, label = read_state_dict(ckpt), source or str(ckpt)
    report = LoadReport(source=label)
    state = strip_prefix(state, own | {k.removeprefix("model.") for k in own})
    own_tops = {k.split(".")[0] for k in own} | {k.split(".")[1] for k in own if k.startswith("model.")}

    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        target = _feature_key(key, own)
        if target is not None:
            mapped[target] = value
        elif key.split(".")[0] not in own_tops and "_".join(key.split(".")[:2]) not in own_tops:
            report.dropped[key] = "not part of the features-only model (classifier, head or unused stage)"
        else:
            mapped[key] = value  # reported as unexpected by load_exact

    if first_conv:
        key = _feature_key(f"{first_conv}.weight", own)
        if (
            key
            and key in mapped
            and mapped[key].ndim == 4
            and mapped[key].shape[1] != own_state[key].shape[1]
        ):
            file_chans, model_chans = mapped[key].shape[1], own_state[key].shape[1]
            mapped[key] = adapt_input_conv(model_chans, mapped[key], base_chans=file_chans)
            report.adapted[key] = f"input channels {file_chans} -> {model_chans} (timm adapt_input_conv)"
    load_exact(model, mapped, report, name)
    report.log()
    return report
