"""Similar chips: embed a folder of chips with a run's backbone; click a chip on the map to see its nearest
neighbours."""

from pathlib import Path

import streamlit as st

from geoft.app.data_summary import default_rgb
from geoft.app.jobs import find_checkpoints
from geoft.app.paths import confine, relative_label
from geoft.app.similarity import (
    chip_folders,
    chip_thumbnail,
    click_selection,
    embed_run_chips,
    embeddings_path,
    load_chip_embeddings,
    saved_embeddings,
    similar_chips,
    similarity_map,
)
from geoft.app.trained import run_config
from geoft.app.ui import guarded, leaflet_urls, setup_page
from geoft.app.widgets import show_map, status_label

ctx = setup_page("Similar chips")
st.title("Similar chips")
st.caption(
    "One embedding per chip from a trained run's backbone (pooled over its last output); "
    "similarity is the cosine of two chips' embeddings."
)
roots = list(ctx.settings.allowed_roots)


def computed_embeddings() -> tuple[Path | None, dict]:
    """Embeddings of a folder of chips by a trained run's backbone (computed once, then read back)."""
    runs = [r for r in ctx.store.list() if find_checkpoints(r.run_dir)]
    if not runs:
        st.info("No trained run with a checkpoint yet. Train one (or run the demo on the home page).")
        return None, {}
    run = st.selectbox(
        "Run", runs, format_func=lambda r: f"{r.name} · {status_label(r)} · {r.id}", key="sim_run"
    )
    config, folders = {}, []
    with guarded():
        config = run_config(run)
        folders = chip_folders(config, roots)
    typed = st.text_input(
        "Folder of chips",
        value=str(folders[0]) if folders else "",
        key="sim_folder",
        help="Every GeoTIFF under it is one chip (the run's img_grep). The run's own split folders: "
        + (", ".join(relative_label(f, roots) for f in folders) or "none here"),
    )
    folder = None
    with guarded():
        folder = confine(typed, roots, must_exist=True) if typed.strip() else None
    if folder is None:
        return None, config
    target = embeddings_path(run, folder)
    found = saved_embeddings(target)
    if st.button("Compute embeddings", type="primary", key="sim_go", disabled=found is not None):
        with guarded(), st.spinner(f"Embedding the chips of {folder.name}..."):
            found = embed_run_chips(run, folder, target)
    return found, config


def opened_embeddings() -> Path | None:
    """An embeddings file ``geoft embed`` wrote (GeoParquet or .npz), inside the app's folders."""
    typed = st.text_input("Embeddings file (.parquet or .npz)", key="sim_file")
    with guarded():
        if typed.strip():
            return confine(typed, roots, must_exist=True)
    return None


source = st.radio(
    "Embeddings",
    ["Compute with a trained run", "Open a file from geoft embed"],
    horizontal=True,
    key="sim_source",
)
found, config = computed_embeddings() if source.startswith("Compute") else (opened_embeddings(), {})
if found is None:
    st.stop()

chips = None
with guarded():
    chips = load_chip_embeddings(found)
if chips is None or len(chips.names) < 2:
    st.info("Similarity needs at least two chips in the folder.")
    st.stop()
st.caption(f"{len(chips.names)} chips, {chips.vectors.shape[1]} dimensions · {relative_label(found, roots)}")

if "sim_pending" in st.session_state:  # a chip clicked on the map: select it before the list is drawn
    st.session_state["sim_chip"] = st.session_state.pop("sim_pending")
names = [Path(n).name for n in chips.names]
selected = st.selectbox("Chip", range(len(names)), format_func=lambda i: names[i], key="sim_chip")
k = st.slider("Neighbours", 1, min(20, len(names) - 1), min(5, len(names) - 1), key="sim_k")
neighbours = similar_chips(chips, selected, k)

data_args = (config.get("data") or {}).get("init_args") or {}
rgb = default_rgb(list(data_args.get("dataset_bands") or []))
if chips.footprints is not None:
    js, css = leaflet_urls()
    with guarded():
        m = similarity_map(chips, selected, neighbours, js, css, tiles=ctx.settings.map_tiles, rgb_bands=rgb)
        returned = show_map(m, key=f"sim_map_{found.stem}", returned_objects=["last_object_clicked"])
        hit, st.session_state["sim_last_click"] = click_selection(
            chips, returned, st.session_state.get("sim_last_click")
        )
        if hit is not None and hit != selected:
            st.session_state["sim_pending"] = hit
            st.rerun()
else:
    st.info("These chips are not georeferenced in one CRS: choose a chip from the list.")

st.subheader(f"Nearest to {names[selected]}")
st.dataframe(
    [
        {"rank": r + 1, "chip": names[n.index], "similarity": round(n.similarity, 3)}
        for r, n in enumerate(neighbours)
    ],
    hide_index=True,
)
with guarded():
    shown = [(selected, "selected")] + [
        (n.index, f"{r + 1}. {n.similarity:.3f}") for r, n in enumerate(neighbours)
    ]
    for column, (index, caption) in zip(st.columns(min(len(shown), 6)), shown[:6]):
        column.image(
            chip_thumbnail(confine(chips.names[index], roots), rgb),
            caption=f"{caption} · {names[index]}",
            width="stretch",
        )
