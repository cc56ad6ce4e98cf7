"""Predict / Map: run a trained model on an image or an uploaded scene; offline map and downloads.

Segmentation runs show class maps; detection runs show boxes or outlines with a score slider."""

from pathlib import Path

import numpy as np
import streamlit as st

from geoft.app.data_summary import config_chips, default_rgb, load_dataset_meta
from geoft.app.detection_layers import above_score, build_detection_map, read_detections, truth_objects
from geoft.app.imagery import class_colors, colorize, parse_hex, percentile_stretch
from geoft.app.jobs import find_checkpoints, run_dataset_root
from geoft.app.maps import build_scene_map, read_for_display
from geoft.app.paths import confine, relative_label
from geoft.app.predict import is_detection_run, predict_detections, predict_to_geotiff, run_config
from geoft.app.ui import guarded, leaflet_urls, setup_page, upload_limit_caption
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
image_path, truth_path = None, None
if source == "From the run's dataset":
    pairs = []
    with guarded():
        pairs = [p for p in config_chips(data_args) if confine(p[1], roots)]
    if pairs:
        choice = st.selectbox(
            "Chip",
            range(len(pairs)),
            format_func=lambda i: f"{pairs[i][0]} · {pairs[i][1].name}",
            key="pred_chip",
        )
        _split, image_path, truth_path = pairs[choice]
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


def show_class_map(image, rgb, out_path: Path) -> None:
    """Segmentation: the class map and the ground truth over the image, and side by side."""
    prediction = read_for_display(out_path)
    truth = read_for_display(truth_path) if truth_path else None
    opacity = st.slider("Prediction opacity", 0.0, 1.0, 0.6, 0.05, key="pred_opacity")
    class_legend(class_names, colors)
    if image.crs is not None:
        js, css = leaflet_urls()
        m = build_scene_map(
            image, rgb, js, css, prediction=prediction, truth=truth, class_names=class_names,
            colors=colors, opacity=opacity, tiles=ctx.settings.map_tiles,
        )  # fmt: skip
        show_map(m, key=f"pred_map_{run.id}_{Path(image_path).stem}")
    else:
        st.warning("This image has no CRS: no map, only the side-by-side view.")
    views = [(percentile_stretch(image.array, rgb, nodata=image.nodata), "image")]
    if truth is not None:
        views.append((colorize(truth.array[0].astype(np.int64), colors)[..., :3], "ground truth"))
    views.append((colorize(prediction.array[0].astype(np.int64), colors)[..., :3], "prediction"))
    for column, (pixels, caption) in zip(st.columns(len(views)), views):
        column.image(pixels, caption=caption, width="stretch")


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
        m = build_detection_map(
            image, rgb, js, css, detections, class_names, colors, score_threshold=threshold, truth=truth,
            tiles=ctx.settings.map_tiles,
        )  # fmt: skip
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
        rgb = list(meta.get("rgb_indices") or default_rgb(list(data_args.get("dataset_bands") or [])))
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
