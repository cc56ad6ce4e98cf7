"""Data: choose, upload or generate a dataset; summary, gallery, classes and statistics."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from geoft.app.data_summary import dataset_statistics, load_dataset_meta, save_dataset_meta, summarize
from geoft.app.imagery import colorize, default_colors, hex_color, parse_hex, percentile_stretch
from geoft.app.paths import confine, list_subdirs, relative_label
from geoft.app.ui import guarded, setup_page
from geoft.app.uploads import dataset_root_of, extract_zip, remove_tree, safe_filename, save_files

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


def use_dataset(path: Path) -> None:
    st.session_state["geoft_dataset"] = str(path)
    st.session_state.pop("geoft_summary", None)


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
    if up is not None and st.button("Extract", key="data_extract"):
        dest = settings.uploads_dir / safe_filename(Path(up.name).stem)
        with guarded():
            try:
                extract_zip(up.getvalue(), dest)
            except Exception:
                remove_tree(dest)
                raise
            use_dataset(dataset_root_of(dest))
            st.success(f"Extracted to {relative_label(dest, roots)}")
elif source == "Upload a folder":
    ups = st.file_uploader(
        "Dataset folder (GeoTIFFs; e.g. train/images, train/labels, val/...)",
        type=["tif", "tiff", "txt", "json"],
        accept_multiple_files="directory",
        key="data_files",
    )
    if ups and st.button("Save", key="data_save"):
        with guarded():
            top = {Path(u.name).parts[0] for u in ups if len(Path(u.name).parts) > 1}
            name = top.pop() if len(top) == 1 else "uploaded-folder"
            dest = settings.uploads_dir / safe_filename(name)
            save_files(
                [(u.name, u.getvalue()) for u in ups],
                settings.uploads_dir if name != "uploaded-folder" else dest,
            )
            use_dataset(dataset_root_of(dest))
            st.success(f"Saved {len(ups)} files to {relative_label(dest, roots)}")
else:
    from geoft.app import demo

    st.write(
        "A small synthetic 6-band dataset (HLS bands, five land-cover classes), generated on this machine."
    )
    if st.button("Generate the demo dataset", key="data_demo"):
        with guarded(), st.spinner("Generating..."):
            use_dataset(demo.ensure_demo_dataset(settings))

dataset = st.session_state.get("geoft_dataset")
if not dataset:
    st.info("Choose a dataset above.")
    st.stop()

st.divider()
st.subheader(f"Dataset: {relative_label(Path(dataset), roots)}")
summary = None
with guarded():
    summary = summarize(confine(dataset, roots, must_exist=True))
if summary is None:
    st.stop()

for problem in summary.problems:
    st.error(problem)
for warning in summary.warnings:
    st.warning(warning)
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

meta = load_dataset_meta(settings.home, summary.root)
values = sorted(summary.class_histogram)
num_classes = max(values) + 1 if values and max(values) < 256 else 2
names = list(meta.get("class_names") or [f"class {i}" for i in range(num_classes)])
colors = [parse_hex(cc) if isinstance(cc, str) else tuple(cc) for cc in meta.get("class_colors") or []]
colors = (colors + default_colors(len(names)))[: len(names)]
band_names = list(meta.get("bands") or summary.band_names)

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
            save_dataset_meta(
                settings.home,
                summary.root,
                {**meta, "class_names": new_names, "class_colors": new_colors, "bands": band_names},
            )
            st.success("Saved; every page uses these names and colours.")
            names, colors = new_names, [parse_hex(x) for x in new_colors]

st.subheader("Gallery")
if summary.band_count:
    labels = [f"{i}: {band_names[i] if i < len(band_names) else i}" for i in range(summary.band_count)]
    default_rgb = meta.get("rgb_indices") or ([2, 1, 0] if summary.band_count >= 3 else [0, 0, 0])
    b = st.columns(3)
    rgb = [
        b[k].selectbox(
            ch,
            range(summary.band_count),
            index=min(default_rgb[k], summary.band_count - 1),
            format_func=lambda i: labels[i],
            key=f"rgb_{ch}",
        )
        for k, ch in enumerate(("Red", "Green", "Blue"))
    ]
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
