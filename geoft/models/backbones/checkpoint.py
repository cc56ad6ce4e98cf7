"""Reading weight files and reporting what a load did.

Loads are strict: every parameter of the backbone must come from the file, and every tensor in the
file must either load or be dropped for a stated reason (an MAE decoder, a classifier, a fixed
position embedding that is recomputed). The result is a :class:`LoadReport`, logged and kept on the
backbone as ``load_report``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from geoft.errors import CheckpointError

logger = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


@dataclass
class LoadReport:
    """What loading a checkpoint into a backbone did.

    Attributes:
        source: the file (or "name of the published weights") that was read.
        loaded: backbone keys that received a tensor from the file.
        dropped: file keys not used, with the reason.
        adapted: backbone keys whose tensor was changed to fit (band selection, input channels).
        notes: other facts worth knowing (e.g. position embeddings recomputed for a new grid).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    adapted: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few readable lines; long key lists are grouped by reason."""
        lines = [f"Loaded {len(self.loaded)} tensors from {self.source}."]
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.dropped.items():
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
            lines.append(f"Dropped {len(keys)} ({reason}): {shown}")
        lines += [f"Adapted {key}: {how}" for key, how in self.adapted.items()]
        lines += self.notes
        return "\n".join(lines)

    def log(self) -> None:
        logger.info("%s", self.summary())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pt``/``.pth``/``.ckpt``/``.safetensors`` file (safe loading only).

    Lightning checkpoints and ``{"model": state_dict}`` wrappers are unwrapped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path {str(path)!r} does not exist or is not a file.",
            hint="Check the path (relative paths are resolved from the working directory).",
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe pickles
        raise CheckpointError(
            f"Cannot read weights from {str(path)!r}: {err.__class__.__name__}: {str(err)[:300]}",
            hint="Weights must be a PyTorch state dict saved with torch.save (plain tensors) or safetensors.",
        ) from err
    return _unwrap(obj, str(path))


def _unwrap(obj: object, source: str) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise CheckpointError(
            f"{source!r} holds no state dict of tensors (top-level keys: {_preview(obj)}).",
            hint="Save weights with torch.save(model.state_dict(), path).",
        )
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _preview(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)[:6]
        return ", ".join(map(str, keys)) or "none"
    return type(obj).__name__


def strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``model.``, ``backbone.``, ``module.``...) when keys only match without it."""
    if any(k in expected for k in state):
        return state
    for prefix in ("module.", "model.", "backbone.", "encoder.", "model.encoder.", "_timm_module."):
        stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if any(k in expected for k in stripped):
            return strip_prefix(stripped, expected)
    return state


def mismatch_error(
    model_name: str, source: str, mismatches: dict[str, tuple[tuple, tuple]]
) -> CheckpointError:
    """The error for tensors whose shapes differ between the file and the model."""
    shown = "; ".join(f"{k}: file {list(a)} vs model {list(b)}" for k, (a, b) in list(mismatches.items())[:6])
    more = f" (and {len(mismatches) - 6} more)" if len(mismatches) > 6 else ""
    return CheckpointError(
        f"{source} does not fit {model_name}: shape mismatch for {shown}{more}.",
        hint="Build the backbone with the same size settings (embed dim, depth, patch size, in_chans/bands) "
        "as the checkpoint.",
    )


def missing_error(model_name: str, source: str, missing: list[str]) -> CheckpointError:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return CheckpointError(
        f"{source} lacks {len(missing)} tensors that {model_name} needs: {shown}.",
        hint="Is this checkpoint for another model or variant (e.g. a _tl variant, or another depth)?",
    )


def unexpected_error(model_name: str, source: str, unexpected: list[str]) -> CheckpointError:
    shown = ", ".join(unexpected[:8]) + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else "")
    return CheckpointError(
        f"{source} has {len(unexpected)} tensors that {model_name} does not have: {shown}.",
        hint="Is this checkpoint for a bigger variant (more blocks) or another architecture?",
    )


def load_exact(model: nn.Module, state: dict[str, torch.Tensor], report: LoadReport, name: str) -> None:
    """``load_state_dict(strict=True)`` after checking keys and shapes, with geoft's errors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise missing_error(name, report.source, missing)
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise unexpected_error(name, report.source, unexpected)
    bad = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape}
    if bad:
        raise mismatch_error(name, report.source, bad)
    model.load_state_dict(state, strict=True)
    report.loaded = sorted(state)
