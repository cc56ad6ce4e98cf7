"""The one way to turn a config section into an object: jsonargparse, as ``geoft fit`` does.

The app's model check, ``geoft export``, the data validator and LightningCLI all build classes
through jsonargparse from the same translated sections, so a section one of them accepts the
others accept too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoft.config.checks import check_section
from geoft.config.compat import translate
from geoft.errors import ConfigError


def short_parser_error(err: BaseException) -> str:
    """jsonargparse's message without its namespace dump: the first lines that say what failed."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Given value type", "Namespace(", "- "))][:3]
    return " ".join(kept or lines[:1])[:500]


def instantiate(
    section: Mapping[str, Any],
    base: type,
    key: str,
    notice: Any = None,
) -> Any:
    """Build ``{class_path, init_args}`` as a subclass of ``base`` (the section's name is ``key``).

    The section is translated (TerraTorch names, short names, band intervals) and checked (one
    short message per problem) before jsonargparse parses and instantiates it.
    """
    from jsonargparse import ArgumentParser

    section = translate(dict(section), notice or (lambda _message: None), top_level=False)
    check_section(section, key)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(base, key, required=True)
    try:
        parsed = parser.parse_object({key: section})
        return parser.instantiate_classes(parsed)[key]
    except ConfigError:
        raise
    except Exception as err:  # jsonargparse reports bad configs with its own exception types
        from geoft.errors import GeoftError

        cause: BaseException | None = err
        while cause is not None:
            if isinstance(cause, GeoftError):
                raise cause from err
            cause = cause.__cause__ or cause.__context__
        raise ConfigError(
            f"{key}: cannot build {section.get('class_path')}: {short_parser_error(err)}"
        ) from err
