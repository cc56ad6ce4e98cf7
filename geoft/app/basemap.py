"""Which base map the Predict page draws: the configured tiles when this server reaches them, else none.

The check is a request for the zoom-0 tile with a short timeout, made by the server (the browser
usually shares its network) and remembered for a few minutes, so a page view costs at most one
probe. Without a base map the map shows Leaflet's offline grey background, and the page says so.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from geoft.app.settings import OSM_URL, AppSettings

PROBE_TIMEOUT_S = 1.5
PROBE_TTL_S = 600.0
USER_AGENT = "geoft-app (base map reachability check)"

# (url, checked at) -> reachable
_probe_cache: dict[str, tuple[float, bool]] = {}

Probe = Callable[[str], bool]


@dataclass(frozen=True)
class BaseMapChoice:
    """The base map to draw (``url`` None: the offline grey background) and the sentence saying which."""

    url: str | None
    attribution: str
    note: str


def sample_tile_url(template: str) -> str:
    """The zoom-0 tile of an XYZ template (``{s}`` subdomain ``a``, ``{r}`` retina suffix empty)."""
    return template.replace("{s}", "a").replace("{r}", "").format(z=0, x=0, y=0)


def probe_tiles(template: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when the zoom-0 tile of ``template`` answers with a success status within ``timeout_s``.

    The request runs in a daemon thread: ``urlopen``'s timeout does not cover the name lookup, which
    can hang for many seconds on a machine without DNS, and the page must not wait for it.
    """
    answer: list[bool] = []

    def fetch() -> None:
        request = urllib.request.Request(sample_tile_url(template), headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
                answer.append(200 <= response.status < 400)
        except (urllib.error.URLError, OSError, ValueError):
            answer.append(False)

    worker = threading.Thread(target=fetch, name="geoft-basemap-probe", daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(answer and answer[0])


def cached_probe(template: str, probe: Probe = probe_tiles, ttl_s: float = PROBE_TTL_S) -> bool:
    """``probe(template)``, remembered for ``ttl_s`` seconds."""
    now = time.monotonic()
    hit = _probe_cache.get(template)
    if hit is not None and now - hit[0] < ttl_s:
        return hit[1]
    reachable = probe(template)
    _probe_cache[template] = (now, reachable)
    return reachable


def _label(url: str) -> str:
    return "OpenStreetMap" if url == OSM_URL else "the configured base map"


def choose_base_map(settings: AppSettings, probe: Probe = cached_probe) -> BaseMapChoice:
    """The settings' base map if ``probe`` reaches it, otherwise the offline grey background."""
    url = settings.basemap_url
    if url is None:
        return BaseMapChoice(
            None, "", "Base map: none (GEOFT_BASEMAP_URL=none); the grey background is the offline map."
        )
    if probe(url):
        return BaseMapChoice(url, settings.basemap_attribution, f"Base map: {_label(url)}.")
    return BaseMapChoice(
        None,
        "",
        f"Base map: none — {_label(url)} is not reachable from this server, so the map shows the "
        "offline grey background.",
    )


__all__ = ["BaseMapChoice", "cached_probe", "choose_base_map", "probe_tiles", "sample_tile_url"]
