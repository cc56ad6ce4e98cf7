"""The Model page's view of a dataset whose labels are no rasters (object annotations, labels files,
class folders): its summary, the datamodule's where-the-files arguments, and a one-line caption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoft.task_kinds import TaskKind

CLASSIFICATION_KINDS = (TaskKind.CLASSIFICATION, TaskKind.MULTILABEL_CLASSIFICATION)


def image_level_files(
    kind: TaskKind, root: Path, meta: dict[str, Any]
) -> tuple[Any, dict[str, Any], str] | None:
    """Summary, datamodule paths and caption for ``kind``; None for kinds whose labels are rasters."""
    if kind == TaskKind.OBJECT_DETECTION:
        from geoft.app.detection_data import detection_datamodule_paths, summarize_detection

        detection = summarize_detection(root, meta.get("label_format"), meta.get("class_names"))
        caption = (
            f"{detection.image_count} images, {detection.object_count} objects "
            f"({detection.label_format} annotations)."
        )
        return detection, detection_datamodule_paths(detection), caption
    if kind == TaskKind.SCALAR_REGRESSION:
        from geoft.app.scalar_data import scalar_datamodule_paths, summarize_scalar

        scalar = summarize_scalar(root, meta.get("labels_file"))
        caption = f"{scalar.image_count} images with a value in {scalar.labels_file_name}."
        return scalar, scalar_datamodule_paths(scalar), caption
    if kind in CLASSIFICATION_KINDS:
        from geoft.app.classification_data import classification_datamodule_paths, summarize_classification

        multi = kind == TaskKind.MULTILABEL_CLASSIFICATION
        classes = summarize_classification(root, meta.get("labels_file"), multi_label=multi)
        caption = f"{classes.image_count} images in {len(classes.class_names)} classes."
        return classes, classification_datamodule_paths(classes), caption
    return None
