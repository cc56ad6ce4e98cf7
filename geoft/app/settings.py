"""App settings from environment variables, with defaults that work on a fresh machine.

| variable | default | meaning |
|---|---|---|
| ``GEOFT_HOME`` | ``~/.geoft`` | app home: runs, demo data, uploads |
| ``GEOFT_DATA_ROOTS`` | ``$GEOFT_HOME/data`` | folders the app may browse (``os.pathsep``-separated) |
| ``GEOFT_RUNS_ROOT`` | ``$GEOFT_HOME/runs`` | run folders and the run store (``runs.sqlite``) |
| ``GEOFT_APP_PASSWORD`` | unset | shared password; unset means no login |
| ``GEOFT_ADMINS`` | unset | comma-separated user names (OIDC email, or the name typed at the password login) who may stop, resume and delete every user's runs |
| ``GEOFT_MAX_JOBS_PER_USER`` | unset (no limit) | at most this many running jobs per logged-in user; further ones queue |
| ``GEOFT_MAP_TILES`` | unset | optional base tile URL template of the Data, home and Similar maps (e.g. a local tile server) |
| ``GEOFT_BASEMAP_URL`` | OpenStreetMap | base map of the Predict page (XYZ URL template), drawn when this server reaches it; ``none``: never |
| ``GEOFT_BASEMAP_ATTRIBUTION`` | OpenStreetMap's | the base map's attribution line |
| ``GEOFT_DEMO_EPOCHS`` / ``GEOFT_DEMO_CHIPS`` / ``GEOFT_DEMO_SIZE`` | 3 / 32 / 64 | size of the demo training (about a minute from click to map on 2 CPU cores) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geoft.errors import ConfigError

OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from err
    if value <= 0:
        raise ConfigError(f"environment variable {name}={raw!r} must be positive")
    return value


def _basemap_url(env: Mapping[str, str]) -> str | None:
    """``GEOFT_BASEMAP_URL`` (``none``/``off``: no base map); unset: ``GEOFT_MAP_TILES``, else OpenStreetMap."""
    raw = (env.get("GEOFT_BASEMAP_URL") or "").strip()
    if raw.lower() in ("none", "off", "false", "0"):
        return None
    if not raw:
        return env.get("GEOFT_MAP_TILES") or OSM_URL
    if "{z}" not in raw or "{x}" not in raw or "{y}" not in raw:
        raise ConfigError(
            f"GEOFT_BASEMAP_URL={raw!r} is not a tile URL template",
            hint="give one with {z}, {x} and {y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png, or none",
        )
    return raw


@dataclass(frozen=True)
class AppSettings:
    """Where the app keeps things, and what it may touch."""

    home: Path
    data_roots: tuple[Path, ...]
    runs_root: Path
    password: str | None = None
    admins: tuple[str, ...] = ()
    max_jobs_per_user: int | None = None
    map_tiles: str | None = None
    basemap_url: str | None = OSM_URL
    basemap_attribution: str = OSM_ATTRIBUTION
    demo_epochs: int = 3
    demo_chips: int = 32
    demo_size: int = 64

    @property
    def demo_dir(self) -> Path:
        """Where the demo dataset is generated (inside the first data root)."""
        return self.data_roots[0] / "demo"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded datasets land (inside the first data root)."""
        return self.data_roots[0] / "uploads"

    @property
    def store_path(self) -> Path:
        return self.runs_root / "runs.sqlite"

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Every root the app may read or write: data roots and the runs root."""
        return (*self.data_roots, self.runs_root)

    def ensure_dirs(self) -> None:
        """Create the home, data and runs folders (idempotent)."""
        for folder in (self.home, *self.data_roots, self.runs_root):
            folder.mkdir(parents=True, exist_ok=True)


def load_settings(environ: Mapping[str, str] | None = None) -> AppSettings:
    """Read settings from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("GEOFT_HOME") or "~/.geoft").expanduser().resolve()
    roots_raw = env.get("GEOFT_DATA_ROOTS")
    if roots_raw:
        data_roots = tuple(Path(p).expanduser().resolve() for p in roots_raw.split(os.pathsep) if p)
    else:
        data_roots = (home / "data",)
    if not data_roots:
        raise ConfigError("GEOFT_DATA_ROOTS is set but names no folder")
    runs_root = Path(env.get("GEOFT_RUNS_ROOT") or home / "runs").expanduser().resolve()
    return AppSettings(
        home=home,
        data_roots=data_roots,
        runs_root=runs_root,
        password=env.get("GEOFT_APP_PASSWORD") or None,
        admins=tuple(name.strip() for name in (env.get("GEOFT_ADMINS") or "").split(",") if name.strip()),
        max_jobs_per_user=_int_env(env, "GEOFT_MAX_JOBS_PER_USER", 0) or None,
        map_tiles=env.get("GEOFT_MAP_TILES") or None,
        basemap_url=_basemap_url(env),
        basemap_attribution=env.get("GEOFT_BASEMAP_ATTRIBUTION")
        or (OSM_ATTRIBUTION if _basemap_url(env) == OSM_URL else "base map"),
        demo_epochs=_int_env(env, "GEOFT_DEMO_EPOCHS", 3),
        demo_chips=_int_env(env, "GEOFT_DEMO_CHIPS", 32),
        demo_size=_int_env(env, "GEOFT_DEMO_SIZE", 64),
    )
