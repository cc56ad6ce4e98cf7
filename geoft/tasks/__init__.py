"""Lightning tasks: training, metrics, losses, optimisers and inference for each kind of problem.

Attributes resolve lazily so ``import geoft.tasks`` stays cheap (no torch/Lightning until used).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "GeoftTask": "geoft.tasks.base",
    "SemanticSegmentationTask": "geoft.tasks.segmentation",
    "PixelwiseRegressionTask": "geoft.tasks.regression",
    "ClassificationTask": "geoft.tasks.classification",
    "MultiLabelClassificationTask": "geoft.tasks.classification",
    "ScalarRegressionTask": "geoft.tasks.scalar_regression",
    "ReconstructionTask": "geoft.tasks.reconstruction",
    "EmbeddingGenerationTask": "geoft.tasks.embedding_generation",
    "ObjectDetectionTask": "geoft.tasks.detection",
    "LossHandler": "geoft.tasks.loss_handler",
    "CombinedLoss": "geoft.tasks.losses",
    "build_criterion": "geoft.tasks.losses",
    "build_optimizer": "geoft.tasks.optimizers",
    "build_scheduler": "geoft.tasks.optimizers",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geoft.tasks' has no attribute {name!r}")
