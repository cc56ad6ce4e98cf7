"""geoft: fine-tune geospatial foundation models on your own satellite imagery.

Importing ``geoft`` is deliberately cheap: heavy modules (torch models, Lightning, timm, rasterio)
load only when the object that needs them is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from geoft.errors import GeoftError

__all__ = ["GeoftError", "__version__"]
