"""Data: choose, upload or generate a dataset; say what its labels are (masks, object annotations, value
rasters, one value or class per image); summary, gallery, classes, a check of every file and statistics."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from geoft.app.data_summary import (
    canonical_band_names,
    class_values,
    dataset_kind,
    dataset_statistics,
    default_rgb,
    load_dataset_meta,
    save_dataset_meta,
    suggested_ignore_index,
    summarize,
)
from geoft.app.detection_data import ensure_detection_demo
from geoft.app.file_check import check_every_file
from geoft.app.form_choices import APP_KINDS
from geoft.app.imagery import class_colors, colorize, hex_color, parse_hex, percentile_stretch
from geoft.app.modality_panel import modality_panel
from geoft.app.paths import confine, list_subdirs, relative_label
from geoft.app.task_panels import classification_panel, detection_panel, pixel_values_panel, scalar_panel
from geoft.app.ui import escape_markdown, guarded, remember_dataset, setup_page, upload_limit_caption
from geoft.app.uploads import dataset_root_of, extract_dataset_zip, safe_filename, save_files
from geoft.task_kinds import TaskKind

ctx = setup_page("Data")
settings = ctx.settings
roots = list(settings.data_roots)
st.title("Data")

source = st.radio(
    "Where is the dataset?",
    ["Folder on this server", "Upload a zip", "Upload a folder", "Demo dataset"],
    horizontal=True,
    key="data_source",
)


LARGER_DATA = (
    "Larger datasets: copy them onto the server into a data root and pick **Folder on this server**."
)


def use_dataset(path: Path) -> None:
    remember_dataset(settings, path)


if source == "Folder on this server":
    root = Path(st.selectbox("Data root", [str(r) for r in roots], key="data_root"))
    subdirs = []
    with guarded():
        subdirs = list_subdirs(root, roots)
    options = [str(root)] + [str(p) for p in subdirs]
    folder = st.selectbox(
        "Folder", options, format_func=lambda p: relative_label(Path(p), roots), key="data_folder"
    )
    typed = st.text_input("...or type a path inside the data roots", key="data_typed")
    if st.button("Use this folder", key="data_use"):
        with guarded():
            use_dataset(confine(typed or folder, roots, must_exist=True))
elif source == "Upload a zip":
    up = st.file_uploader("Zip of the dataset folder", type=["zip"], key="data_zip")
    upload_limit_caption(LARGER_DATA)
    if up is not None and st.button("Extract", key="data_extract"):
        with guarded():
            dest = extract_dataset_zip(up, settings.uploads_dir, Path(up.name).stem)  # read in place
            use_dataset(dest)
            st.success(f"Extracted to {relative_label(dest, roots)}")
elif source == "Upload a folder":
    ups = st.file_uploader(
        "Dataset folder (GeoTIFFs; e.g. train/images, train/labels, val/...)",
        type=["tif", "tiff", "txt", "json", "geojson", "gpkg", "csv", "tsv"],
        accept_multiple_files="directory",
        key="data_files",
    )
    upload_limit_caption(LARGER_DATA)
    if ups and st.button("Save", key="data_save"):
        with guarded():
            top = {Path(u.name).parts[0] for u in ups if len(Path(u.name).parts) > 1}
            name = top.pop() if len(top) == 1 else "uploaded-folder"
            dest = settings.uploads_dir / safe_filename(name)
            save_files(
                [(u.name, u) for u in ups],  # streamed to disk, never copied whole
                settings.uploads_dir if name != "uploaded-folder" else dest,
            )
            use_dataset(dataset_root_of(dest))
            st.success(f"Saved {len(ups)} files to {relative_label(dest, roots)}")
else:
    from geoft.app import demo

    demo_kind = st.radio(
        "Demo",
        ["Segmentation", "Object detection"],
        horizontal=True,
        key="data_demo_kind",
        captions=[
            "6 HLS bands, five land-cover classes",
            "3 bands, bright rectangles of two classes (GeoJSON, YOLO and COCO labels)",
        ],
    )
    st.write("A small synthetic dataset, generated on this machine.")
    if st.button("Generate the demo dataset", key="data_demo"):
        with guarded(), st.spinner("Generating..."):
            if demo_kind == "Segmentation":
                use_dataset(demo.ensure_demo_dataset(settings))
            else:
                folder = ensure_detection_demo(settings.data_roots[0] / "demo-detection")
                meta = load_dataset_meta(settings.home, folder)
                save_dataset_meta(settings.home, folder, {**meta, "task": TaskKind.OBJECT_DETECTION.value})
                use_dataset(folder)

dataset = st.session_state.get("geoft_dataset")
if not dataset:
    st.info("Choose a dataset above.")
    st.stop()

st.divider()
st.subheader(f"Dataset: {relative_label(Path(dataset), roots)}")
meta = load_dataset_meta(settings.home, Path(dataset))
kind = dataset_kind(meta)
picked_kind = st.radio(
    "What are the labels?",
    list(APP_KINDS),
    index=list(APP_KINDS).index(kind),
    format_func=APP_KINDS.get,
    horizontal=True,
    key=f"data_task:{dataset}",  # per dataset: a choice made for one never carries to the next
)
if picked_kind != kind:
    with guarded():
        meta = {**meta, "task": picked_kind.value}
        save_dataset_meta(settings.home, Path(dataset), meta)
if picked_kind != TaskKind.SEGMENTATION:
    with guarded():
        folder = confine(dataset, roots, must_exist=True)
        panel = {
            TaskKind.OBJECT_DETECTION: detection_panel,
            TaskKind.SCALAR_REGRESSION: scalar_panel,
            TaskKind.REGRESSION: pixel_values_panel,
            TaskKind.CLASSIFICATION: classification_panel,
            TaskKind.MULTILABEL_CLASSIFICATION: classification_panel,
        }[picked_kind]
        panel(settings.home, folder, meta)
    st.stop()
with guarded():
    if modality_panel(settings.home, confine(dataset, roots, must_exist=True), meta) is not None:
        st.stop()  # several modalities or dates: their view replaces the one-stack summary
summary = None
with guarded():
    summary = summarize(
        confine(dataset, roots, must_exist=True),
        image_suffix=meta.get("image_suffix"),
        label_suffix=meta.get("label_suffix"),
    )
if summary is None:
    st.stop()

with st.form("pairing"):
    st.markdown("**How images pair with labels.** " + summary.pairing.explain())
    p1, p2 = st.columns(2)
    image_suffix = p1.text_input(
        "Image suffix (before the extension)",
        value=summary.pairing.image_suffix,
        key="data_image_suffix",
        help="e.g. _S2Hand for Spain_1_S2Hand.tif; empty when images are named NAME.tif",
    )
    label_suffix = p2.text_input(
        "Label suffix (before the extension)",
        value=summary.pairing.label_suffix,
        key="data_label_suffix",
        help="e.g. _LabelHand for Spain_1_LabelHand.tif; empty when labels are named NAME.tif",
    )
    if st.form_submit_button("Pair with these suffixes"):
        with guarded():
            save_dataset_meta(
                settings.home,
                summary.root,
                {**meta, "image_suffix": image_suffix, "label_suffix": label_suffix},
            )
            st.rerun()

for problem in summary.problems:
    st.error(escape_markdown(problem))
for warning in summary.warnings:
    st.warning(escape_markdown(warning))
c = st.columns(5)
c[0].metric("Chips", summary.chip_count)
c[1].metric("Size", f"{summary.size[0]}×{summary.size[1]}" if summary.size else "-")
c[2].metric("Data type", summary.dtype or "-")
c[3].metric("Bands", summary.band_count or "-")
c[4].metric("Nodata", "-" if summary.nodata is None else f"{summary.nodata:g}")
st.markdown(
    f"**CRS:** `{summary.crs or 'none'}` · **Splits:** "
    + ", ".join(f"{name} {count}" for name, count in summary.split_sizes.items())
)

values = sorted(summary.class_histogram)
ignore_index = meta.get("ignore_index", suggested_ignore_index(summary.class_histogram))
classes = class_values(summary.class_histogram, ignore_index)
num_classes = max(classes) + 1 if classes else 2
names = list(meta.get("class_names") or [f"class {i}" for i in range(max(2, num_classes))])
colors = [parse_hex(cc) if isinstance(cc, str) else tuple(cc) for cc in meta.get("class_colors") or []]
colors = (colors + class_colors(names))[: len(names)]
band_names = list(meta.get("bands") or canonical_band_names(summary.band_names))
if ignore_index is not None:
    st.info(
        f"Label value {ignore_index} ({summary.class_histogram.get(ignore_index, 0):,} pixels) looks like "
        "'no data': it is pre-set as the ignore value on the Model page (not a class)."
    )

st.subheader("Classes")
hist = pd.DataFrame(
    {
        "class": [names[v] if 0 <= v < len(names) else str(v) for v in values],
        "pixels": [summary.class_histogram[v] for v in values],
    }
)
if not hist.empty:
    import altair as alt

    palette = [hex_color(colors[v]) if 0 <= v < len(colors) else "#999999" for v in values]
    hist["class"] = [c if v != ignore_index else f"{v} (ignored)" for c, v in zip(hist["class"], values)]
    scale = alt.Scale(domain=list(hist["class"]), range=palette)
    chart = (
        alt.Chart(hist)
        .mark_bar()
        .encode(x=alt.X("class", sort=None), y="pixels", color=alt.Color("class", scale=scale, legend=None))
    )
    st.altair_chart(chart, width="stretch")
with st.form("classes"):
    new_names, new_colors = [], []
    cols = st.columns(min(4, max(1, len(names))))
    for i, (n, col) in enumerate(zip(names, colors)):
        with cols[i % len(cols)]:
            new_names.append(st.text_input(f"Class {i} name", value=n, key=f"cls_name_{i}"))
            new_colors.append(st.color_picker(f"Class {i} colour", value=hex_color(col), key=f"cls_col_{i}"))
    if st.form_submit_button("Save classes"):
        with guarded():
            # colours the user did not touch follow the (new) names: "water" becomes blue
            suggested = [hex_color(c) for c in class_colors(new_names)]
            new_colors = [
                sug if col == hex_color(old) and n != old_name else col
                for col, sug, old, n, old_name in zip(new_colors, suggested, colors, new_names, names)
            ]
            save_dataset_meta(
                settings.home,
                summary.root,
                {**meta, "class_names": new_names, "class_colors": new_colors, "bands": band_names},
            )
            st.success("Saved; every page uses these names and colours.")
            names, colors = new_names, [parse_hex(x) for x in new_colors]

st.subheader("Gallery")
if summary.band_count:
    file_names = summary.band_names

    def band_label(i: int) -> str:
        name = band_names[i] if i < len(band_names) else str(i)
        original = file_names[i] if i < len(file_names) else ""
        return f"{i}: {name}" + (f" ({original})" if original and original != name else "")

    labels = [band_label(i) for i in range(summary.band_count)]
    rgb_default = meta.get("rgb_indices") or default_rgb(band_names)
    b = st.columns(3)
    rgb = [
        b[k].selectbox(
            ch,
            range(summary.band_count),
            index=min(rgb_default[k], summary.band_count - 1),
            format_func=lambda i: labels[i],
            key=f"rgb_{ch}",
        )
        for k, ch in enumerate(("Red", "Green", "Blue"))
    ]
    if list(rgb) != list(rgb_default):
        with guarded():  # the Model and Predict pages show these bands too
            save_dataset_meta(settings.home, summary.root, {**meta, "rgb_indices": list(rgb)})
    pairs = summary.all_pairs()[:8]
    import rasterio

    gallery = st.columns(4)
    for k, (split, img, lbl) in enumerate(pairs):
        with gallery[k % 4], guarded():
            with rasterio.open(img) as src:
                picture = percentile_stretch(src.read(), rgb, nodata=src.nodata)
            st.image(picture, caption=f"{split} · {img.name}", width="stretch")
            if lbl is not None:
                with rasterio.open(lbl) as src:
                    mask = src.read(1)
                st.image(colorize(mask.astype(np.int64), colors)[..., :3], caption="label", width="stretch")

st.subheader("Check every file")
st.caption(
    "Reads every image and label in full, as training does before its first step (corrupt or truncated "
    "files, label values outside the classes, nodata); the training statistics come from the same read."
)
if st.button("Check every file", key="data_check"):
    with guarded(), st.spinner("Reading every file..."):
        checked = check_every_file(summary, len(names), ignore_index)
        st.session_state["data_check_result"] = (str(summary.root), checked)
        if checked.statistics:
            meta = {**meta, "statistics": checked.statistics}
            save_dataset_meta(settings.home, summary.root, meta)
shown = st.session_state.get("data_check_result")
if shown and shown[0] == str(summary.root):
    checked = shown[1]
    (st.success if checked.ok else st.error)(escape_markdown(checked.headline()))
    if checked.lines:
        st.dataframe(
            pd.DataFrame(
                {
                    "split": [line.split for line in checked.lines],
                    "file": [line.file for line in checked.lines],
                    "problem": [line.problem for line in checked.lines],
                    "severity": [line.severity for line in checked.lines],
                }
            ),
            hide_index=True,
        )

st.subheader("Statistics")
stats = meta.get("statistics")
if stats:
    st.dataframe(
        pd.DataFrame(
            {"band": band_names[: len(stats["means"])] or None, "mean": stats["means"], "std": stats["stds"]}
        ),
        hide_index=True,
    )
if st.button("Compute statistics", key="data_stats"):
    with guarded(), st.spinner("Computing per-band means and standard deviations..."):
        stats = dataset_statistics(summary)
        save_dataset_meta(
            settings.home,
            summary.root,
            {
                **meta,
                "statistics": stats,
                "class_names": names,
                "class_colors": [hex_color(x) for x in colors],
                "bands": band_names,
            },
        )
        st.rerun()
