"""Import a class named in a config, and say precisely why when that is not possible."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from typing import Any

from geoft.errors import ConfigError, RegistryError

# Packages that a config's classes commonly need and that geoft does not require.
PIP_NAMES: dict[str, str] = {
    "tensorboard": "tensorboard",
    "tensorboardX": "tensorboardX",
    "rich": "rich",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "comet_ml": "comet-ml",
    "neptune": "neptune",
    "albumentations": "albumentations",
    "peft": "peft",
}
# Lightning classes whose constructor needs a package only at run time.
NEEDS_PACKAGE: dict[str, tuple[str, ...]] = {
    "TensorBoardLogger": ("tensorboard", "tensorboardX"),
    "RichProgressBar": ("rich",),
    "RichModelSummary": ("rich",),
    "WandbLogger": ("wandb",),
    "MLFlowLogger": ("mlflow",),
    "CometLogger": ("comet_ml",),
    "NeptuneLogger": ("neptune",),
}
# Where a bare class name (``EarlyStopping``, ``AdamW``) is looked up, in order, as LightningCLI does.
SHORT_NAME_MODULES: tuple[str, ...] = (
    "lightning.pytorch.callbacks",
    "lightning.pytorch.loggers",
    "torch.optim",
    "lightning.pytorch.cli",
    "torch.optim.lr_scheduler",
)


def import_object(path: str) -> Any:
    """Import ``"package.module:attribute"`` (or ``"package.module.attribute"``) and return the attribute."""
    if ":" in path:
        module_name, attr = path.split(":", 1)
    else:
        module_name, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise RegistryError(f"{module_name!r} has no attribute {attr!r}") from err


def pip_line(module_name: str) -> str:
    """``pip install X`` for a missing top-level module."""
    top = module_name.split(".", 1)[0]
    return f"pip install {PIP_NAMES.get(top, top.replace('_', '-'))}"


def missing_package(class_name: str) -> str | None:
    """The pip line when ``class_name`` is a Lightning class whose optional package is absent."""
    modules = NEEDS_PACKAGE.get(class_name.rpartition(".")[2])
    if modules is None or any(importlib.util.find_spec(m) is not None for m in modules):
        return None
    return pip_line(modules[0])


def _names_in(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    return [n for n in dir(module) if n[:1].isupper()]


def resolve_class(path: str, where: str) -> type:
    """The class a config names at ``where``, or a :class:`ConfigError` saying why it cannot be had.

    A bare name is looked up in Lightning's callbacks and loggers and in torch's optimizers and
    schedulers, as LightningCLI does; unknown names list close matches; a module that is not
    installed gives the ``pip install`` line.
    """
    if "." not in path and ":" not in path:
        for module_name in SHORT_NAME_MODULES:
            if path in _names_in(module_name):
                return resolve_class(f"{module_name}.{path}", where)
        everything = sorted({n for m in SHORT_NAME_MODULES for n in _names_in(m)})
        raise ConfigError(f"{where}: unknown class {path!r}", hint=_close_hint(path, everything))
    module_name = path.split(":", 1)[0] if ":" in path else path.rpartition(".")[0]
    attr = path.split(":", 1)[1] if ":" in path else path.rpartition(".")[2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or module_name
        top = missing.split(".")[0]
        if not top or top == "geoft" or importlib.util.find_spec(top) is not None:
            raise ConfigError(f"{where}: unknown module {missing!r} in {path!r}") from err
        raise ConfigError(
            f"{where}: {path} needs the package {missing.split('.')[0]!r}, which is not installed",
            hint=pip_line(missing),
        ) from err
    except (ImportError, ValueError, TypeError) as err:  # empty or relative names, broken modules
        raise ConfigError(f"{where}: cannot import {path!r}: {err}") from err
    cls = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(
            f"{where}: {module_name} has no class {attr!r}", hint=_close_hint(attr, _names_in(module_name))
        )
    return cls


def _close_hint(name: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"did you mean {', '.join(close)}?" if close else None
