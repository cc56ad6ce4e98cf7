"""Predict / Map: run a trained model on an image or an uploaded scene; offline map and downloads.

Segmentation runs show class maps; detection runs show boxes or outlines with a score slider."""

from pathlib import Path

import numpy as np
import streamlit as st

from geoft.app.basemap import choose_base_map
from geoft.app.data_summary import config_chips, default_rgb, load_dataset_meta
from geoft.app.detection_layers import above_score, build_detection_map, read_detections, truth_objects
from geoft.app.imagery import class_colors, colorize, parse_hex, percentile_stretch
from geoft.app.jobs import find_checkpoints, run_dataset_root
from geoft.app.maps import read_for_display
from geoft.app.paths import confine, relative_label
from geoft.app.predict import is_detection_run, predict_detections, predict_to_geotiff, run_config
from geoft.app.raster_layers import RasterLayer, needs_tiles
from geoft.app.scene_map import (
    LayerChoice,
    compare_map,
    drawn_labels_file,
    drawn_labels_layer,
    is_multimodal,
    layered_map,
    modality_chips,
    other_predictions,
    run_layers,
    uncertainty_path,
)
from geoft.app.ui import guarded, leaflet_urls, setup_page, tile_source, upload_limit_caption
from geoft.app.uploads import copy_upload, safe_filename
from geoft.app.widgets import class_legend, show_map, status_label

ctx = setup_page("Predict")
st.title("Predict / Map")
roots = list(ctx.settings.allowed_roots)

runs = [r for r in ctx.store.list() if find_checkpoints(r.run_dir)]
if not runs:
    st.info("No trained run with a checkpoint yet. Train one (or run the demo on the home page).")
    st.stop()
run = st.selectbox(
    "Run", runs, format_func=lambda r: f"{r.name} · {status_label(r)} · {r.id}", key="pred_run"
)

config = {}
with guarded():
    config = run_config(run)
data_args = (config.get("data") or {}).get("init_args") or {}
dataset_root = run_dataset_root(run)
class_names = ((config.get("model") or {}).get("init_args") or {}).get("class_names") or []
meta = load_dataset_meta(ctx.settings.home, dataset_root) if dataset_root else {}
same_classes = list(meta.get("class_names") or []) == list(class_names)  # colours saved for these names
colors = (
    [parse_hex(c) if isinstance(c, str) else tuple(c) for c in meta.get("class_colors") or []]
    if same_classes
    else []
)
class_names = class_names or ["class 0", "class 1"]
colors = (colors + class_colors(class_names))[: len(class_names)]

ckpts = find_checkpoints(run.run_dir)
best = [c for c in ckpts if not c.name.startswith("last")]
last = [c for c in ckpts if c.name.startswith("last")]
options = {}
if best:
    options[f"best ({best[0].stem})"] = best[0]
if last:
    options["last (end of training)"] = last[0]
options = options or {ckpts[0].stem: ckpts[0]}
picked = st.radio(
    "Checkpoint",
    list(options),
    horizontal=True,
    key="pred_ckpt",
    help="best: the epoch with the best validation score; last: the weights at the end of training",
)
checkpoint = options[picked]

source = st.radio(
    "Image", ["From the run's dataset", "Upload a GeoTIFF scene"], horizontal=True, key="pred_source"
)
image_path, truth_path, modalities = None, None, None
if source == "From the run's dataset":
    pairs = []
    with guarded():
        if is_multimodal(config):  # each modality is its own map layer; the first is the image
            chips = [(s, next(iter(m.values())), t, m) for s, m, t in modality_chips(data_args)]
        else:
            chips = [(s, i, t, None) for s, i, t in config_chips(data_args)]
        pairs = [p for p in chips if all(confine(i, roots) for i in (p[3] or {p[1]: p[1]}).values())]
    if pairs:
        choice = st.selectbox(
            "Chip",
            range(len(pairs)),
            format_func=lambda i: f"{pairs[i][0]} · {pairs[i][1].name}",
            key="pred_chip",
        )
        _split, image_path, truth_path, modalities = pairs[choice]
    else:
        st.caption("The run's dataset is not available here; upload a scene instead.")
else:
    up = st.file_uploader("GeoTIFF scene", type=["tif", "tiff"], key="pred_upload")
    upload_limit_caption(
        "Larger scenes: copy them into a data root and predict them with `geoft predict-scene`."
    )
    if up is not None:
        with guarded():
            dest = ctx.settings.uploads_dir / "scenes" / safe_filename(up.name)
            copy_upload(up, dest)  # in chunks: never a second whole copy in memory
            image_path = confine(dest, roots)

if image_path is None:
    st.stop()


def band_names() -> list[str]:
    """The image's band names from the config (a multimodal run's: those of the image's modality)."""
    names = data_args.get("dataset_bands") or []  # the file's bands, in order
    if isinstance(names, dict):
        return list(names.get(next(iter(modalities or {}), None)) or [])
    return list(names)


def band_choice(image, rgb: list[int]) -> tuple[int, int, int]:
    """Three selectboxes: which image bands the map draws as red, green and blue."""
    count = image.array.shape[0]
    names = band_names()
    label = lambda b: f"{b + 1}: {names[b]}" if len(names) == count else f"band {b + 1}"  # noqa: E731
    columns = st.columns(3)
    return tuple(
        column.selectbox(colour, range(count), index=rgb[i], format_func=label, key=f"pred_band_{colour}")
        for i, (column, colour) in enumerate(zip(columns, ("red", "green", "blue")))
    )


def draw_layered_map(layers, key: str, compare=None, vectors=()) -> None:
    """Draw ``layers`` (or the comparison map): tiles written on first view, the page saying how."""
    js, css = leaflet_urls()
    base = choose_base_map(ctx.settings)
    tiles = tile_source()
    large = [layer.name for layer in layers if needs_tiles(layer.path)]
    with st.spinner(
        f"Writing map tiles for {', '.join(large)} (once; reused afterwards)..."
        if large
        else "Drawing the map..."
    ):
        if compare is None:
            m, drawn = layered_map(layers, js, css, base, tiles, class_names, colors, vectors=vectors)
        else:
            m, drawn = compare(js, css, base, tiles), []
    tiled = [d for d in drawn if d.tiled]
    if tiled:
        zooms = ", ".join(f"{d.name} (zoom {d.pyramid.min_zoom}–{d.pyramid.max_zoom})" for d in tiled)
        st.caption(f"Drawn as map tiles at full resolution: {zooms}.")
    if drawn:
        names = [d.name for d in drawn] + [v.layer_name for v in vectors]
        st.caption(f"Layers (switch them at the map's top right): {', '.join(names)}.")
    st.caption(base.note)
    show_map(m, key=key)


def show_class_map(image, rgb, out_path: Path) -> None:
    """Segmentation: the layers over a base map, side by side, and the comparison with another run."""
    prediction = read_for_display(out_path)
    truth = read_for_display(truth_path) if truth_path else None
    bands = band_choice(image, rgb)
    has_uncertainty = uncertainty_path(out_path) is not None
    sliders = st.columns(3 if has_uncertainty else 2)
    choice = LayerChoice(
        bands,
        prediction_opacity=sliders[0].slider("Prediction opacity", 0.0, 1.0, 0.6, 0.05, key="pred_opacity"),
        truth_opacity=sliders[1].slider(
            "Ground truth opacity", 0.0, 1.0, 0.6, 0.05, key="pred_truth_opacity"
        ),
        uncertainty_opacity=(
            sliders[2].slider("Uncertainty opacity", 0.0, 1.0, 0.7, 0.05, key="pred_unc_opacity")
            if has_uncertainty
            else 0.7
        ),
    )
    class_legend(class_names, colors)
    if image.crs is not None:
        layers = run_layers(
            Path(image_path), choice, prediction=out_path, truth=truth_path, modalities=modalities
        )
        if has_uncertainty:
            st.caption("The uncertainty layer (off at first) is in the layer switch at the top right.")
        drawn_file = drawn_labels_file(ctx.settings.home, Path(image_path))
        vectors = (
            [drawn_labels_layer(drawn_file, Path(image_path), class_names, colors)] if drawn_file else []
        )
        draw_layered_map(layers, key=f"pred_map_{run.id}_{Path(image_path).stem}", vectors=vectors)
        show_comparison(layers[0], out_path)
    else:
        st.warning("This image has no CRS: no map, only the side-by-side view.")
    views = [(percentile_stretch(image.array, list(bands), nodata=image.nodata), "image")]
    if truth is not None:
        views.append((colorize(truth.array[0].astype(np.int64), colors)[..., :3], "ground truth"))
    views.append((colorize(prediction.array[0].astype(np.int64), colors)[..., :3], "prediction"))
    for column, (pixels, caption) in zip(st.columns(len(views)), views):
        column.image(pixels, caption=caption, width="stretch")


def show_comparison(image_layer, out_path: Path) -> None:
    """Swipe between this run's prediction and another run's prediction of the same image."""
    others = other_predictions(ctx.store.list(), Path(image_path), run.id)
    st.subheader("Compare with another run")
    if not others:
        st.caption(
            "No other run has predicted this image yet: predict it with another run to swipe between them."
        )
        return
    other = st.selectbox("Other run's prediction", list(others), key="pred_compare")
    if not st.toggle("Show the swipe comparison", key="pred_compare_on"):
        return
    mine = RasterLayer(f"{run.name} (left)", out_path, "classes", opacity=0.8)
    theirs = RasterLayer(f"{other} (right)", others[other], "classes", opacity=0.8)
    st.caption("Drag the handle in the middle of the map: left of it this run, right of it the other.")
    draw_layered_map(
        [mine, theirs], key=f"pred_compare_map_{run.id}_{Path(image_path).stem}",
        compare=lambda js, css, base, tiles: compare_map(
            image_layer, mine, theirs, js, css, base, tiles, colors, class_names
        ),
    )  # fmt: skip


def show_detections(image, rgb, out_path: Path) -> None:
    """Detection: boxes or outlines by class over the image, filtered by a score slider (no re-run)."""
    detections = read_detections(out_path)
    truth = (
        truth_objects(truth_path, image_path, class_names, data_args.get("class_field"))
        if truth_path
        else None
    )
    run_threshold = ((config.get("model") or {}).get("init_args") or {}).get("score_threshold")
    threshold = st.slider(
        "Score threshold", 0.0, 1.0, float(0.5 if run_threshold is None else run_threshold), 0.05,
        key="pred_score", help="Detections scoring below it are hidden; the model is not run again.",
    )  # fmt: skip
    shown = above_score(detections, threshold)
    st.caption(f"{len(shown)} of {len(detections)} detections score at least {threshold:.2f}")
    class_legend(class_names, colors)
    if image.crs is not None and detections.crs is not None:
        js, css = leaflet_urls()
        base = choose_base_map(ctx.settings)
        m = build_detection_map(
            image, rgb, js, css, detections, class_names, colors, score_threshold=threshold, truth=truth,
            tiles=base.url, tiles_attribution=base.attribution,
        )  # fmt: skip
        st.caption(base.note)
        show_map(m, key=f"pred_map_{run.id}_{Path(image_path).stem}")
    else:
        st.warning("This image has no CRS: no map, only the table of detections.")
    st.dataframe(shown.drop(columns="geometry"), hide_index=True)


detection = is_detection_run(config)
kind = (
    ("_detections.geojson", "GeoJSON", "application/geo+json")
    if detection
    else ("_prediction.tif", "GeoTIFF", "image/tiff")
)
out_path = run.run_dir / "predictions" / f"{Path(image_path).stem}_{checkpoint.stem}{kind[0]}"
if st.button("Predict", type="primary", key="pred_go") or out_path.is_file():
    if not out_path.is_file():
        with guarded():
            bar = st.progress(0.0, text=f"Tiled inference on {Path(image_path).name}...")

            def report(done: int, total: int) -> None:
                bar.progress(done / max(total, 1), text=f"tile {done}/{total}")

            if detection:
                predict_detections(run, Path(image_path), out_path, progress=report, checkpoint=checkpoint)
            else:
                predict_to_geotiff(
                    run,
                    Path(image_path),
                    out_path,
                    progress=report,
                    class_colors=colors,
                    checkpoint=checkpoint,
                )
            bar.empty()
    if out_path.is_file():
        rgb = list(meta.get("rgb_indices") or default_rgb(band_names()))
        with guarded():
            image = read_for_display(image_path)
            rgb = [min(b, image.array.shape[0] - 1) for b in rgb]
            (show_detections if detection else show_class_map)(image, rgb, out_path)
            st.download_button(
                f"Download {'detections' if detection else 'prediction'} ({kind[1]})",
                out_path.read_bytes(),
                file_name=out_path.name,
                mime=kind[2],
                key="pred_dl",
            )
            st.caption(f"Saved as {relative_label(out_path, roots)}")
