"""The kinds of problem geoft trains for: one enum shared by tasks, losses, model factories, datamodules
and scene prediction.

The values are the strings configs and the reference use (``task: segmentation`` for a model factory),
and a :class:`TaskKind` compares equal to its value, so ``kind == "regression"`` keeps working.
:meth:`TaskKind.parse` also accepts the aliases people write (``multilabel``, ``pixelwise_regression``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import Enum

from geoft.errors import ConfigError


class TaskKind(str, Enum):
    """What a model predicts, and so which target, losses and metrics apply."""

    SEGMENTATION = "segmentation"  # one class per pixel
    REGRESSION = "regression"  # one value per pixel
    CLASSIFICATION = "classification"  # one class per image
    MULTILABEL_CLASSIFICATION = "multilabel_classification"  # several classes per image
    SCALAR_REGRESSION = "scalar_regression"  # one value (or a few) per image
    OBJECT_DETECTION = "object_detection"  # boxes (and masks) of objects, with classes

    def __str__(self) -> str:
        return self.value

    @property
    def pixelwise(self) -> bool:
        """True when the prediction has the image's height and width."""
        return self in PIXEL_KINDS

    @property
    def uses_classes(self) -> bool:
        """True when targets are class indices (or multi-hot classes)."""
        return self not in (TaskKind.REGRESSION, TaskKind.SCALAR_REGRESSION)

    @property
    def target_key(self) -> str:
        """The batch key of the target: ``mask`` for pixel-wise kinds, ``label`` for image-level ones."""
        return "mask" if self.pixelwise else "label"

    @classmethod
    def parse(
        cls, value: str | TaskKind, supported: Iterable[TaskKind] | None = None, where: str = "task"
    ) -> TaskKind:
        """The kind named by ``value`` (a value or an alias, any case), checked against ``supported``."""
        allowed = list(supported) if supported is not None else list(cls)
        name = str(value.value if isinstance(value, TaskKind) else value).strip().lower()
        kind = _ALIASES.get(name)
        if kind is None:
            try:
                kind = cls(name)
            except ValueError:
                kind = None
        if kind is None or kind not in allowed:
            names = [k.value for k in allowed]
            close = difflib.get_close_matches(name, names + list(_ALIASES), n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where} does not support task {value!r}{suggestion}",
                hint=f"supported tasks: {', '.join(names)}",
            )
        return kind


PIXEL_KINDS: tuple[TaskKind, ...] = (TaskKind.SEGMENTATION, TaskKind.REGRESSION)
IMAGE_KINDS: tuple[TaskKind, ...] = (
    TaskKind.CLASSIFICATION,
    TaskKind.MULTILABEL_CLASSIFICATION,
    TaskKind.SCALAR_REGRESSION,
)
DENSE_AND_IMAGE_KINDS: tuple[TaskKind, ...] = PIXEL_KINDS + IMAGE_KINDS  # what encoder-decoder models predict
_ALIASES: dict[str, TaskKind] = {
    "multilabel": TaskKind.MULTILABEL_CLASSIFICATION,
    "multi_label": TaskKind.MULTILABEL_CLASSIFICATION,
    "semantic_segmentation": TaskKind.SEGMENTATION,
    "pixelwise_regression": TaskKind.REGRESSION,
    "pixel_wise_regression": TaskKind.REGRESSION,
}

__all__ = ["IMAGE_KINDS", "PIXEL_KINDS", "TaskKind"]
