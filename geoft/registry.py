"""Registries: build backbones, necks, decoders and model factories by string name.

Like timm, everything is addressed by a plain string. Unlike a dict of classes, a registry here is
*lazy*: it knows names and where they live (``"module:attribute"``) without importing the module, so
listing every name is cheap and ``import geoft`` stays light.

A registry has several *sources*, each with a prefix:

* ``geoft_`` (the default, prefix optional): geoft's own components, from static tables.
* ``timm_``: any timm model (backbones).
* ``smp_``: any segmentation-models-pytorch decoder (decoders).

``BACKBONE_REGISTRY.build("timm_resnet18", in_chans=6)`` and ``BACKBONE_REGISTRY.build("prithvi_eo_tiny")``
both work; an unknown name raises :class:`~geoft.errors.RegistryError` listing close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from geoft.config.imports import import_object
from geoft.errors import RegistryError


class Source(Protocol):
    """Where a registry finds names. ``names()`` must be cheap for the default source."""

    def names(self) -> list[str]: ...

    def __contains__(self, name: str) -> bool: ...

    def get(self, name: str) -> Callable[..., Any]: ...


class LazyTable:
    """A source backed by a dict ``name -> "module:attribute"``; modules import on first use.

    Objects registered at run time (``register``) are stored directly.
    """

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self._table: dict[str, str | Callable[..., Any]] = dict(table or {})

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def add(self, name: str, target: str | Callable[..., Any]) -> None:
        self._table[name] = target

    def get(self, name: str) -> Callable[..., Any]:
        target = self._table[name]
        if isinstance(target, str):
            target = import_object(target)
            self._table[name] = target
        return target


class LazySource:
    """A source whose real implementation lives in a module imported only when it is first needed.

    Used for external libraries (timm, smp): importing them costs seconds, so the registry stores
    the dotted path of a factory returning the real source.
    """

    def __init__(self, factory_path: str, description: str) -> None:
        self._factory_path = factory_path
        self._source: Source | None = None
        self.description = description

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = import_object(self._factory_path)()
        return self._source

    def names(self) -> list[str]:
        return self.source.names()

    def __contains__(self, name: str) -> bool:
        return name in self.source

    def get(self, name: str) -> Callable[..., Any]:
        return self.source.get(name)


class MultiSourceRegistry:
    """A registry made of prefixed sources.

    Args:
        kind: what it holds ("backbone", "decoder", ...), used in messages.
        sources: prefix (without underscore) -> source. The first one is the default: its names
            resolve with or without the prefix.
    """

    def __init__(self, kind: str, sources: dict[str, Source]) -> None:
        if not sources:
            raise ValueError("a registry needs at least one source")
        self.kind = kind
        self._sources = dict(sources)
        self.default_prefix = next(iter(self._sources))

    # -- lookup -----------------------------------------------------------------------------------
    def _split(self, name: str) -> tuple[str, str]:
        for prefix in self._sources:
            if name.startswith(prefix + "_"):
                rest = name[len(prefix) + 1 :]
                if prefix != self.default_prefix or rest in self._sources[prefix]:
                    return prefix, rest
        return self.default_prefix, name

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        prefix, rest = self._split(name)
        return rest in self._sources[prefix]

    def get(self, name: str) -> Callable[..., Any]:
        """Return the constructor registered under ``name`` (importing its module if needed)."""
        if not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a string, got {type(name).__name__}")
        prefix, rest = self._split(name)
        source = self._sources[prefix]
        if rest not in source:
            raise RegistryError(self._unknown_message(name, prefix))
        return source.get(rest)

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the object registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def _unknown_message(self, name: str, prefix: str) -> str:
        candidates = self.names(prefixes=[self.default_prefix] if prefix == self.default_prefix else [prefix])
        close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
        msg = f"Unknown {self.kind} {name!r}."
        if close:
            msg += f" Did you mean: {', '.join(close)}?"
        others = [p + "_" for p in self._sources if p != self.default_prefix]
        msg += f" List them with geoft.registry.{self.kind.upper()}_REGISTRY.names()"
        if others:
            msg += f"; other sources use the prefixes {', '.join(others)}"
        return msg + "."

    # -- listing ----------------------------------------------------------------------------------
    def names(self, prefixes: Iterable[str] | None = None) -> list[str]:
        """Names in the given sources (default: only geoft's own, which is cheap).

        External sources (``timm``, ``smp``) import their library when listed; ask for them
        explicitly, e.g. ``names(prefixes=["timm"])``.
        """
        wanted = [self.default_prefix] if prefixes is None else list(prefixes)
        out: list[str] = []
        for prefix in wanted:
            if prefix not in self._sources:
                raise RegistryError(
                    f"{self.kind} registry has no source {prefix!r}; sources: {list(self._sources)}"
                )
            names = self._sources[prefix].names()
            out.extend(names if prefix == self.default_prefix else [f"{prefix}_{n}" for n in names])
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that adds a constructor to the default source: ``@BACKBONE_REGISTRY.register()``."""

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            source = self._sources[self.default_prefix]
            if not isinstance(source, LazyTable):
                raise RegistryError(f"the default {self.kind} source does not accept registrations")
            source.add(name or obj.__name__, obj)
            return obj

        return decorator


def _table(path: str) -> dict[str, str]:
    """Read a static ``name -> "module:attr"`` table from a light module (no model code in it)."""
    return import_object(path)


BACKBONE_REGISTRY = MultiSourceRegistry(
    "backbone",
    {
        "geoft": LazyTable(_table("geoft.models.backbones.catalog:BACKBONES")),
        "timm": LazySource("geoft.models.backbones.timm:TimmBackboneSource", "any timm model"),
    },
)
NECK_REGISTRY = MultiSourceRegistry("neck", {"geoft": LazyTable(_table("geoft.models.catalog:NECKS"))})
DECODER_REGISTRY = MultiSourceRegistry(
    "decoder",
    {
        "geoft": LazyTable(_table("geoft.models.catalog:DECODERS")),
        "smp": LazySource(
            "geoft.models.decoders.smp:SMPDecoderSource", "segmentation-models-pytorch decoders"
        ),
    },
)
MODEL_FACTORY_REGISTRY = MultiSourceRegistry(
    "model_factory", {"geoft": LazyTable(_table("geoft.models.catalog:MODEL_FACTORIES"))}
)

__all__ = [
    "BACKBONE_REGISTRY",
    "DECODER_REGISTRY",
    "MODEL_FACTORY_REGISTRY",
    "NECK_REGISTRY",
    "LazySource",
    "LazyTable",
    "MultiSourceRegistry",
    "import_object",
]
