"""Checks of class definitions shared by datasets and datamodules."""

from __future__ import annotations

from collections.abc import Sequence

from geoft.errors import ConfigError


def check_class_names(num_classes: int, class_names: Sequence[str] | None) -> None:
    """Raise a ConfigError unless ``class_names`` is None or has one name per class."""
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError(f"class_names has {len(class_names)} names but num_classes is {num_classes}.")
