"""Former home of the config compatibility layer; it lives in :mod:`geoft.config` now."""

from __future__ import annotations

from geoft.config.compat import resolve_name, short_name_table, translate
from geoft.config.loading import load_config, merge_configs, rewrite_config_args

__all__ = [
    "load_config",
    "merge_configs",
    "resolve_name",
    "rewrite_config_args",
    "short_name_table",
    "translate",
]
