"""Similar chips: embed a folder of chips with a run's backbone, put their footprints on the map, and
find the chips nearest to the one clicked (cosine similarity of the embeddings).

Embeddings are computed with :func:`geoft.embed.embed_folder` (what ``geoft embed`` runs) and kept in the
run folder as GeoParquet (or ``.npz`` when the chips have no single CRS), so a page reload only reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoft.app.imagery import hex_color
from geoft.app.maps import Legend, finish_map, offline_map
from geoft.app.run_store import RunRecord
from geoft.app.trained import best_checkpoint, load_task, run_config
from geoft.embeddings_search import Neighbour, nearest_neighbours
from geoft.errors import DataError

WGS84 = "EPSG:4326"
MAX_CHIP_IMAGES = 100  # more chips: outlines only (each image is warped and embedded in the page)
SELECTED, NEIGHBOUR, OTHER = (220, 20, 60), (255, 140, 0), (120, 120, 120)


@dataclass(frozen=True)
class ChipEmbeddings:
    """One row per chip: ``vectors[i]`` is ``names[i]``; ``footprints`` (WGS84, same order, a ``name``
    column) is None when the chips are not georeferenced in one CRS."""

    vectors: np.ndarray
    names: list[str]
    footprints: Any | None


def chip_folders(config: Mapping[str, Any], roots: Sequence[Path]) -> list[Path]:
    """The image folders of a run's splits (``test``, ``val``, ``train``, ``predict``) that exist inside
    the app's folders."""
    from geoft.app.paths import confine
    from geoft.errors import GeoftError

    data = (config.get("data") or {}).get("init_args") or {}
    folders: list[Path] = []
    for split in ("test", "val", "train", "predict"):
        root = data.get(f"{split}_data_root")
        if not root or not Path(root).is_dir():
            continue
        try:
            folder = confine(root, roots)
        except GeoftError:
            continue
        if folder not in folders:
            folders.append(folder)
    return folders


def embeddings_path(run: RunRecord, folder: Path, checkpoint: Path | None = None) -> Path:
    """Where the embeddings of ``folder`` by ``run`` (its ``checkpoint``) are kept."""
    ckpt = (checkpoint or best_checkpoint(run)).stem
    digest = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:8]
    return run.run_dir / "embeddings" / f"{Path(folder).name}_{digest}_{ckpt}.parquet"


def saved_embeddings(path: Path) -> Path | None:
    """``path`` or its ``.npz`` sibling, whichever was written."""
    for candidate in (path, path.with_suffix(".npz")):
        if candidate.is_file():
            return candidate
    return None


def embed_run_chips(
    run: RunRecord, folder: Path, out_path: Path, checkpoint: Path | None = None, pooling: str = "mean"
) -> Path:
    """Embed every chip under ``folder`` with ``run``'s backbone (``checkpoint``, default the best),
    read and normalised as the run's data; write GeoParquet at ``out_path`` (``.npz`` beside it when
    the chips are in several CRSs or not georeferenced). Returns the file written."""
    from geoft.embed import embed_folder
    from geoft.embeddings import write_embeddings
    from geoft.runs.restore import data_arguments, load_checkpoint, normalisation

    config = run_config(run)
    norm = normalisation(config, lambda: load_checkpoint(checkpoint or best_checkpoint(run)))
    table = embed_folder(
        load_task(run, checkpoint), folder, data_arguments(config), norm.means, norm.stds, pooling=pooling
    )
    try:
        return write_embeddings(table, out_path)
    except DataError:  # no single CRS for a GeoParquet file: keep the vectors, drop the map
        return write_embeddings(table, out_path.with_suffix(".npz"))


def load_chip_embeddings(path: str | Path) -> ChipEmbeddings:
    """Vectors, names and WGS84 footprints of an embeddings file (``geoft embed``'s or this page's)."""
    import geopandas as gpd
    from shapely.geometry import box

    from geoft.embeddings import read_embeddings

    path = Path(path)
    try:
        vectors, names = read_embeddings(path)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"cannot read embeddings {path}: {err}", hint="compute them again") from err
    footprints = None
    if path.suffix == ".npz":
        with np.load(path) as data:
            bounds, crs = data["bounds"], [str(c) for c in data["crs"]]
        if len(crs) == 1 and crs[0] and np.isfinite(bounds).all():
            footprints = gpd.GeoDataFrame({"name": names}, geometry=[box(*b) for b in bounds], crs=crs[0])
    else:
        frame = gpd.read_parquet(path)
        if frame.crs is not None:
            footprints = gpd.GeoDataFrame({"name": names}, geometry=frame.geometry.values, crs=frame.crs)
    if footprints is not None:
        footprints = footprints.to_crs(WGS84)
    return ChipEmbeddings(vectors, names, footprints)


def clicked_point(returned: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """``(lat, lon)`` of the object clicked on a streamlit-folium map, from what ``st_folium`` returned."""
    click = (returned or {}).get("last_object_clicked") or (returned or {}).get("last_clicked")
    if not isinstance(click, Mapping) or click.get("lat") is None or click.get("lng") is None:
        return None
    return float(click["lat"]), float(click["lng"])


def chip_at(chips: ChipEmbeddings, lat: float, lon: float) -> int | None:
    """The row of the chip whose footprint holds the point (where footprints overlap, the one whose
    centre is nearest); None outside every chip."""
    from shapely.geometry import Point

    if chips.footprints is None or not len(chips.footprints):
        return None
    point = Point(lon, lat)
    hits = np.flatnonzero(chips.footprints.geometry.covers(point).to_numpy())
    if not len(hits):
        return None
    distances = [chips.footprints.geometry.iloc[i].centroid.distance(point) for i in hits]
    return int(hits[int(np.argmin(distances))])


def click_selection(
    chips: ChipEmbeddings, returned: Mapping[str, Any] | None, last_click: tuple[float, float] | None
) -> tuple[int | None, tuple[float, float] | None]:
    """``(chip, point)`` for a new click on the map: the chip under it (None off every chip) and the
    point to remember. streamlit-folium returns the last click on every rerun, so a click equal to
    ``last_click`` is no new click: ``(None, last_click)``."""
    point = clicked_point(returned)
    if point is None or point == last_click:
        return None, last_click
    return chip_at(chips, *point), point


def similar_chips(chips: ChipEmbeddings, index: int, k: int) -> list[Neighbour]:
    """The ``k`` chips most similar to chip ``index`` (itself left out), best first."""
    return nearest_neighbours(chips.vectors, index, k=min(k, max(1, len(chips.names) - 1)))


def similarity_map(
    chips: ChipEmbeddings,
    selected: int | None,
    neighbours: Sequence[Neighbour],
    js_url: str,
    css_url: str,
    tiles: str | None = None,
    rgb_bands: Sequence[int] | None = None,
) -> Any:
    """An offline map of the chip footprints: the selected chip and its neighbours highlighted (with
    their rank and similarity in the tooltip), every other chip grey; click one to select it. With
    ``rgb_bands`` (and at most :data:`MAX_CHIP_IMAGES` chips) the chips' images lie under the outlines."""
    import folium

    if chips.footprints is None:
        raise DataError("these chips are not georeferenced in one CRS, so they have no place on a map")
    frame = chips.footprints.copy()
    rank = {n.index: (r + 1, n.similarity) for r, n in enumerate(neighbours)}
    frame["role"] = [
        "selected" if i == selected else ("neighbour" if i in rank else "other") for i in range(len(frame))
    ]
    frame["rank"] = [rank.get(i, (0, 0.0))[0] for i in range(len(frame))]
    frame["similarity"] = [round(rank[i][1], 3) if i in rank else None for i in range(len(frame))]
    frame["name"] = [Path(n).name for n in frame["name"]]
    colors = {"selected": hex_color(SELECTED), "neighbour": hex_color(NEIGHBOUR), "other": hex_color(OTHER)}

    images = rgb_bands is not None and len(frame) <= MAX_CHIP_IMAGES
    fill = {"selected": 0.45, "neighbour": 0.45, "other": 0.1}
    if images:  # let the images show through
        fill = {"selected": 0.15, "neighbour": 0.15, "other": 0.0}

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        role = feature["properties"]["role"]
        return {
            "color": colors[role],
            "weight": 3 if role != "other" else 1,
            "fillColor": colors[role],
            "fillOpacity": fill[role],
        }

    west, south, east, north = frame.total_bounds
    m = offline_map([[south, west], [north, east]], js_url, css_url, tiles=tiles)
    if images:
        _add_chip_images(m, chips.names, rgb_bands or [])
    folium.GeoJson(
        frame.__geo_interface__,
        name="chips",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["name", "rank", "similarity"]),
    ).add_to(m)
    legend = Legend.build(
        ["selected chip", "nearest neighbours", "other chips"], [SELECTED, NEIGHBOUR, OTHER], title="Chips"
    )
    return finish_map(m, js_url, css_url, legend=legend)


def _add_chip_images(m: Any, paths: Sequence[str], rgb_bands: Sequence[int], size: int = 64) -> None:
    """Each chip's image, small, as one "chip images" layer (chips that cannot be read are left out)."""
    import folium

    from geoft.app.maps import add_overlay, read_for_display, rgb_pixels

    group = folium.FeatureGroup(name="chip images")
    for path in paths:
        try:
            raster = read_for_display(path, max_size=size)
        except DataError:
            continue
        if raster.crs is None:
            continue
        bands = [min(b, raster.array.shape[0] - 1) for b in rgb_bands]
        rgba, bounds = rgb_pixels(raster, bands, max_size=size)
        add_overlay(group, rgba, bounds, name=Path(path).name)
    group.add_to(m)


def chip_thumbnail(path: str | Path, rgb_bands: Sequence[int], size: int = 128) -> np.ndarray:
    """A small RGB preview of a chip (decimated on read)."""
    from geoft.app.imagery import percentile_stretch
    from geoft.app.maps import read_for_display

    raster = read_for_display(path, max_size=size)
    bands = [min(b, raster.array.shape[0] - 1) for b in rgb_bands]
    return percentile_stretch(raster.array, bands, nodata=raster.nodata)


__all__ = [
    "ChipEmbeddings",
    "chip_at",
    "chip_folders",
    "chip_thumbnail",
    "click_selection",
    "clicked_point",
    "embed_run_chips",
    "embeddings_path",
    "load_chip_embeddings",
    "saved_embeddings",
    "similar_chips",
    "similarity_map",
]
