"""Teach by drawing: draw shapes of each class over a scene, train from them, look where the model
hesitates, draw more, retrain from the last model. Logic: geoft.app.teaching and geoft.app.teach_map."""

import streamlit as st

from geoft.app.data_summary import default_rgb
from geoft.app.forms import PRESETS
from geoft.app.imagery import class_colors
from geoft.app.maps import read_for_display
from geoft.app.paths import confine
from geoft.app.teach_map import install_leaflet_draw, leaflet_draw_urls, teach_map
from geoft.app.teaching import (
    band_names,
    finished_round,
    labels_path,
    parse_class_names,
    predict_round,
    run_classes,
    saved_features,
    start_round,
    starting_runs,
    store_drawings,
    teach_runs,
)
from geoft.app.ui import APP_DIR, guarded, leaflet_urls, setup_page, stop_with, upload_limit_caption
from geoft.app.uploads import copy_upload, safe_filename
from geoft.app.widgets import show_map, status_label
from geoft.errors import GeoftError

ctx = setup_page("Teach")
st.title("Teach by drawing")
st.caption(
    "Draw a few shapes of each class over a scene, train, and see the prediction and where the model "
    "is unsure. Pixels outside the shapes are ignored in training. Draw more where it is unsure and "
    "train again: each round starts from the last model."
)
roots = list(ctx.settings.allowed_roots)

source = st.radio(
    "Scene", ["A GeoTIFF in the app's folders", "Upload a GeoTIFF"], horizontal=True, key="teach_source"
)
scene = None
if source == "A GeoTIFF in the app's folders":
    typed = st.text_input(
        "Path of the GeoTIFF", key="teach_path", help=f"inside {', '.join(map(str, roots))}"
    )
    if typed:
        with guarded():
            scene = confine(typed, roots, must_exist=True)
else:
    up = st.file_uploader("GeoTIFF scene", type=["tif", "tiff"], key="teach_upload")
    upload_limit_caption()
    if up is not None:
        with guarded():
            dest = ctx.settings.uploads_dir / "scenes" / safe_filename(up.name)
            copy_upload(up, dest)
            scene = confine(dest, roots)
if scene is None:
    st.stop()

base_run = None
start = st.radio(
    "Start from", ["A small preset", "A trained segmentation run"], horizontal=True, key="teach_start"
)
preset = "Prithvi tiny + UPerNet"
try:
    if start == "A small preset":
        preset = st.selectbox("Model", list(PRESETS), key="teach_preset")
        class_names = parse_class_names(st.text_input("Classes", "not_water, water", key="teach_classes"))
    else:
        runs = starting_runs(ctx.store)
        if not runs:
            st.info("No finished segmentation run on GeoTIFF chips yet: start from a preset.")
            st.stop()
        base_run = st.selectbox(
            "Run", runs, format_func=lambda r: f"{r.name} · {status_label(r)}", key="teach_run"
        )
        class_names = run_classes(base_run)
        st.caption(
            f"Classes of the run: {', '.join(class_names)}; its model, bands and normalisation are used."
        )
except GeoftError as err:
    stop_with(err)
colors = class_colors(class_names)

drawn = labels_path(ctx.settings.home, scene)
next_class = st.radio(
    "Class of the next shapes", class_names, horizontal=True, key="teach_class",
    help="Shapes you draw take this class; saved shapes keep theirs (coloured as in the legend).",
)  # fmt: skip

rounds = teach_runs(ctx.store, scene)
done = finished_round(ctx.store, scene)
prediction = uncertainty = None
if done is not None:
    with guarded(), st.spinner(f"Predicting the scene with {done.name}..."):
        pred_path, spread_path = predict_round(done, scene)
        prediction, uncertainty = read_for_display(pred_path), (read_for_display(spread_path), "entropy")

with guarded():
    image = read_for_display(scene)
    features = saved_features(drawn, scene, class_names)
    rgb = default_rgb(band_names(scene))
    install_leaflet_draw(APP_DIR / "static")
    js, css = leaflet_urls()
    draw_js, draw_css = leaflet_draw_urls(st.get_option("server.baseUrlPath") or "")
    m = teach_map(
        image, rgb, (js, css, draw_js, draw_css), features, class_names, colors,
        prediction=prediction, uncertainty=uncertainty, tiles=ctx.settings.map_tiles,
    )  # fmt: skip
    returned = show_map(m, key=f"teach_map_{drawn.stem}", height=600, returned_objects=["all_drawings"])
    if store_drawings((returned or {}).get("all_drawings"), scene, class_names, next_class, drawn):
        st.rerun()
    counts = {n: sum(f["properties"]["class"] == n for f in features) for n in class_names}
    per_class = ", ".join(f"{n} {c}" for n, c in counts.items())
    st.caption(f"Saved shapes: {len(features)} ({per_class}) in `{drawn}`")

for run in rounds[:5]:
    st.write(f"Round **{run.name}**: {status_label(run)}")
busy = any(r.is_active for r in rounds)
epochs = st.number_input("Epochs", 1, 200, 5, key="teach_epochs")
if st.button("Train from these labels", type="primary", disabled=busy, key="teach_train"):
    with guarded():
        run = start_round(ctx.runner, ctx.settings.home, scene, class_names, base_run, preset, int(epochs))
        st.success(
            f"Round {run.name} submitted ({status_label(run)}). Follow it on the Runs page; come back here when it has finished."
        )
if busy:
    st.info("A round is training; this page shows its prediction once it has finished (reload the page).")
if done is not None:
    st.caption(
        f"Layers from {done.name}: prediction, and uncertainty (entropy; red = unsure, where more shapes help most)."
    )
