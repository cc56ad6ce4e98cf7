"""The Predict page's maps: a run's layers (image, ground truth, prediction, uncertainty) over a base
map, and the swipe comparison of two runs' predictions.

The swipe uses leaflet-side-by-side (MIT), vendored in ``geoft/app/vendor/leaflet-side-by-side`` and
copied into the app's ``static/`` folder, so the comparison loads nothing from a CDN either.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.app.basemap import BaseMapChoice
from geoft.app.maps import Legend, finish_map, offline_map
from geoft.app.raster_layers import (
    COLORMAP,
    OVERLAY_LIMIT,
    DrawnLayer,
    RasterLayer,
    TileSource,
    add_raster_layer,
)
from geoft.errors import DataError

# what scene prediction writes beside a class map (``<stem>_<kind>.tif``, geoft.io.scene_outputs), and
# a generic name for an uncertainty from elsewhere
UNCERTAINTY_KINDS = ("entropy", "margin", "uncertainty")
UNCERTAINTY_TITLES = {"entropy": "uncertainty (entropy)", "margin": "uncertainty (margin: low = unsure)"}
SIDE_BY_SIDE_DIR = "leaflet-side-by-side"
VENDOR_DIR = Path(__file__).parent / "vendor" / SIDE_BY_SIDE_DIR


def uncertainty_path(prediction: Path) -> Path | None:
    """``<prediction stem>_<entropy|margin|uncertainty>.tif`` beside the prediction, when one exists."""
    for kind in UNCERTAINTY_KINDS:
        path = Path(prediction).with_name(f"{Path(prediction).stem}_{kind}.tif")
        if path.is_file():
            return path
    return None


def _uncertainty_title(path: Path) -> str:
    return UNCERTAINTY_TITLES.get(path.stem.rsplit("_", 1)[-1], "uncertainty")


@dataclass(frozen=True)
class LayerChoice:
    """What the page asked to see: bands are 0-based positions in the image; opacities 0..1."""

    rgb_bands: tuple[int, int, int]
    prediction_opacity: float = 0.6
    truth_opacity: float = 0.6
    uncertainty_opacity: float = 0.7


def run_layers(
    image: Path,
    choice: LayerChoice,
    prediction: Path | None = None,
    truth: Path | None = None,
    modalities: dict[str, Path] | None = None,
) -> list[RasterLayer]:
    """The layers of one run on one image, bottom to top: the image (or each modality of a multimodal
    sample, the first shown), ground truth, prediction and the uncertainty beside the prediction."""
    bands = tuple(b + 1 for b in choice.rgb_bands)
    if modalities:
        layers = [
            RasterLayer(f"{name} ({_band_text(path, bands)})", path, *_image_bands(path, bands), show=i == 0)
            for i, (name, path) in enumerate(modalities.items())
        ]
    else:
        layers = [RasterLayer(f"image (bands {', '.join(map(str, bands))})", Path(image), "rgb", bands)]
    if truth is not None:
        layers.append(RasterLayer("ground truth", Path(truth), "classes", opacity=choice.truth_opacity))
    if prediction is not None:
        layers.append(
            RasterLayer("prediction", Path(prediction), "classes", opacity=choice.prediction_opacity)
        )
        uncertainty = uncertainty_path(prediction)
        if uncertainty is not None:
            layers.append(
                RasterLayer(
                    _uncertainty_title(uncertainty),
                    uncertainty,
                    "continuous",
                    opacity=choice.uncertainty_opacity,
                    show=False,
                )
            )
    return layers


MULTIMODAL_MODULES = ("GenericMultiModalDataModule",)


def is_multimodal(config: dict[str, Any]) -> bool:
    """True when the run reads several modalities (``GenericMultiModalDataModule``)."""
    return str((config.get("data") or {}).get("class_path", "")).rsplit(".", 1)[-1] in MULTIMODAL_MODULES


def modality_chips(data_args: dict[str, Any]) -> list[tuple[str, dict[str, Path], Path | None]]:
    """``(split, {modality: image}, label)`` of a multimodal config's test/val/train samples, paired by
    name key as the datamodule pairs them; a sample lacking a modality lists the others."""
    from geoft.datasets.pairing import file_key

    modalities = list(data_args.get("modalities") or [])
    greps = data_args.get("image_grep") or {}
    label_grep = str(data_args.get("label_grep") or "*")
    out: list[tuple[str, dict[str, Path], Path | None]] = []
    for split in ("test", "val", "train"):
        roots = data_args.get(f"{split}_data_root") or {}
        if not isinstance(roots, dict):
            continue
        found: dict[str, dict[str, Path]] = {}
        for modality in modalities:
            root, grep = roots.get(modality), str(greps.get(modality) or "*")
            if not root or not Path(root).is_dir():
                continue
            for path in sorted(Path(root).glob(grep)):
                found.setdefault(file_key(path.name, grep), {})[modality] = path
        label_root = data_args.get(f"{split}_label_data_root")
        labels = (
            {file_key(p.name, label_grep): p for p in sorted(Path(label_root).glob(label_grep))}
            if label_root and Path(label_root).is_dir()
            else {}
        )
        out += [(split, images, labels.get(key)) for key, images in sorted(found.items())]
    return out


def _image_bands(path: Path, bands: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """A modality's layer: the chosen bands when it has them, its first three (or one, as grey) otherwise."""
    from geoft.app.raster_layers import raster_size

    count = raster_size(path)[0]
    if max(bands) <= count:
        return "rgb", bands
    return "rgb", (1, 2, 3) if count >= 3 else (1, 1, 1)


def _band_text(path: Path, bands: tuple[int, ...]) -> str:
    return "bands " + ", ".join(map(str, _image_bands(path, bands)[1]))


def drawn_labels_file(home: Path, image: Path) -> Path | None:
    """The shapes drawn over ``image`` on the Teach page (``<app home>/labels/<image stem>.gpkg``), if any."""
    from geoft.app.teaching import labels_path

    path = labels_path(home, image)
    return path if path.is_file() else None


def drawn_labels_layer(
    path: Path, image: Path, class_names: Sequence[str], colors: Sequence[Sequence[int]]
) -> Any:
    """The drawn shapes as a GeoJSON layer in WGS84, outlined and lightly filled in their class colour."""
    import folium

    from geoft.app.imagery import hex_color
    from geoft.datasets.drawn_labels import CLASS_COLUMN, read_drawn_labels

    frame = read_drawn_labels(path, image, class_names).to_crs("EPSG:4326")
    palette = {name: hex_color(color) for name, color in zip(class_names, colors)}

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        color = palette.get(str(feature["properties"][CLASS_COLUMN]), "#ffffff")
        return {"color": color, "weight": 2, "fillColor": color, "fillOpacity": 0.2}

    return folium.GeoJson(
        frame[[CLASS_COLUMN, "geometry"]].__geo_interface__,
        name="drawn labels",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=[CLASS_COLUMN], aliases=["drawn"]) if len(frame) else None,
    )


def wgs84_bounds(path: Path) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of a georeferenced raster."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        if src.crs is None:
            raise DataError(f"{path} has no CRS, so it cannot be placed on a map")
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return [[south, west], [north, east]]


def layered_map(
    layers: Sequence[RasterLayer],
    js_url: str,
    css_url: str,
    base: BaseMapChoice,
    tiles: TileSource | None,
    class_names: Sequence[str] = (),
    colors: Sequence[Sequence[int]] = (),
    overlay_limit: int = OVERLAY_LIMIT,
    vectors: Sequence[Any] = (),
) -> tuple[Any, list[DrawnLayer]]:
    """A map of ``layers`` (and folium ``vectors`` on top) over the chosen base map, with the layer switch
    and legends (classes, and a colour bar per continuous layer). Large rasters are drawn as tiles when
    ``tiles`` is given."""
    from geoft.app.tile_pyramid import colormap_lut

    m = offline_map(
        wgs84_bounds(layers[0].path), js_url, css_url, tiles=base.url, tiles_attribution=base.attribution
    )
    drawn = [add_raster_layer(m, layer, tiles, colors, overlay_limit) for layer in layers]
    for vector in vectors:
        vector.add_to(m)
    lut = colormap_lut(COLORMAP)
    stops = [*lut[::32].tolist(), lut[-1].tolist()]
    for layer in drawn:
        if layer.value_range is not None:
            Legend.colorbar(layer.name, *layer.value_range, stops).add_to(m)
    has_classes = any(layer.kind == "classes" for layer in layers)
    legend = Legend.build(class_names, colors) if has_classes and class_names else None
    return finish_map(m, js_url, css_url, legend=legend), drawn


def install_side_by_side(static_dir: Path) -> Path:
    """Copy the vendored leaflet-side-by-side into ``static_dir`` (its script wrapped so that its
    ``require('leaflet')`` finds the page's Leaflet); returns the folder."""
    dest = Path(static_dir) / SIDE_BY_SIDE_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("layout.css", "range.css", "range-icon.png", "LICENSE"):
        if not (dest / name).is_file() or (dest / name).stat().st_size != (VENDOR_DIR / name).stat().st_size:
            shutil.copyfile(VENDOR_DIR / name, dest / name)
    source = (VENDOR_DIR / "index.js").read_text()
    wrapped = (
        "(function () {\nvar module = {exports: {}};\n"
        "function require(name) { return name === 'leaflet' ? window.L : null; }\n"
        f"{source}\n}})();\n"
    )
    target = dest / "leaflet-side-by-side.js"
    if not target.is_file() or target.read_text() != wrapped:
        target.write_text(wrapped)
    return dest


def side_by_side_assets(url_prefix: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The swipe control's js and css under the app's static URL."""
    base = f"{url_prefix.rstrip('/')}/{SIDE_BY_SIDE_DIR}"
    return (
        [("leaflet.sidebyside", f"{base}/leaflet-side-by-side.js")],
        [
            ("leaflet.sidebyside_layout", f"{base}/layout.css"),
            ("leaflet.sidebyside_range", f"{base}/range.css"),
        ],
    )


def compare_map(
    image: RasterLayer,
    left: RasterLayer,
    right: RasterLayer,
    js_url: str,
    css_url: str,
    base: BaseMapChoice,
    tiles: TileSource,
    colors: Sequence[Sequence[int]] = (),
    class_names: Sequence[str] = (),
) -> Any:
    """Two predictions of one image, swiped left/right over the image. Both are tile layers (the swipe
    clips tile panes), whatever their size."""
    from folium.plugins import SideBySideLayers

    from geoft.app.raster_layers import ensure_pyramid, tile_layer

    m = offline_map(
        wgs84_bounds(image.path), js_url, css_url, tiles=base.url, tiles_attribution=base.attribution
    )
    add_raster_layer(m, image, tiles)
    sides = []
    for layer in (left, right):
        pyramid, _ = ensure_pyramid(layer, tiles, colors)
        sides.append(
            tile_layer(pyramid, tiles.url(Path(pyramid.folder)), layer.name, layer.opacity).add_to(m)
        )
    swipe = SideBySideLayers(*sides)
    swipe.default_js, swipe.default_css = side_by_side_assets(tiles.url_prefix)
    swipe.add_to(m)
    legend = Legend.build(class_names, colors) if class_names else None
    return finish_map(m, js_url, css_url, legend=legend)


def other_predictions(runs: Sequence[Any], image: Path, exclude_run_id: str) -> dict[str, Path]:
    """``{label: prediction}`` of other runs that predicted the same image (its name stem) on this app."""
    found: dict[str, Path] = {}
    for run in runs:
        if run.id == exclude_run_id:
            continue
        for path in sorted((Path(run.run_dir) / "predictions").glob(f"{Path(image).stem}_*_prediction.tif")):
            found[
                f"{run.name} · {path.stem.removeprefix(Path(image).stem + '_').removesuffix('_prediction')}"
            ] = path
    return found


__all__ = [
    "LayerChoice",
    "is_multimodal",
    "modality_chips",
    "compare_map",
    "drawn_labels_file",
    "drawn_labels_layer",
    "install_side_by_side",
    "layered_map",
    "other_predictions",
    "run_layers",
    "uncertainty_path",
]
