"""Configs: reading them, the TerraTorch compatibility layer, checks, and the one way to build objects.

* :mod:`geoft.config.loading`: the YAML loader, merging of repeated ``-c`` files.
* :mod:`geoft.config.compat`: ``terratorch.*`` and short names, band intervals, tiling keys,
  ``custom_modules_path``.
* :mod:`geoft.config.checks`: one short message per bad class or key ("did you mean").
* :mod:`geoft.config.instantiate`: :func:`instantiate`, jsonargparse as ``geoft fit`` uses it.
"""

from __future__ import annotations

from geoft.config.imports import import_object
from geoft.config.instantiate import instantiate
from geoft.config.loading import load_config, load_configs, merge_configs

__all__ = ["import_object", "instantiate", "load_config", "load_configs", "merge_configs"]
