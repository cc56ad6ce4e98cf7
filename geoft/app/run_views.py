"""The Runs page's deeper views of a segmentation run: the confusion matrix as a heatmap and the
gallery of its worst validation chips, each one click from the Predict map."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from geoft.app.chip_gallery import MAX_CHIPS, worst_chips
from geoft.app.data_summary import default_rgb
from geoft.app.imagery import class_colors, colorize, percentile_stretch
from geoft.app.maps import read_for_display
from geoft.app.run_store import RunRecord
from geoft.app.trained import run_config
from geoft.app.ui import AppContext, guarded

GALLERY_KEY = "runs_worst_chips"


def confusion_long(matrix: list[list[int]], names: list[str]) -> pd.DataFrame:
    """One row per (true, predicted) class: the pixel count and its share of the true class's pixels."""
    cm = np.asarray(matrix, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    return pd.DataFrame(
        [
            {"true": names[i], "predicted": names[j], "pixels": int(cm[i, j]), "share": float(shares[i, j])}
            for i in range(cm.shape[0])
            for j in range(cm.shape[1])
        ]
    )


def confusion_heatmap(frame: pd.DataFrame, names: list[str]) -> Any:
    """Altair heatmap of :func:`confusion_long`: colour by the row share, the count written in each cell."""
    import altair as alt

    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=names, title="predicted"),
        y=alt.Y("true:N", sort=names, title="true"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="share of row"),
        tooltip=["true:N", "predicted:N", "pixels:Q", alt.Tooltip("share:Q", format=".1%")],
    )
    text = base.mark_text(fontSize=11).encode(
        text="pixels:Q", color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black"))
    )
    return (cells + text).properties(height=max(160, 36 * len(names)))


def worst_chips_gallery(ctx: AppContext, run: RunRecord, class_names: list[str]) -> None:
    """A button that predicts the validation chips and shows the worst ones, each with *Open on the map*."""
    if st.button("Find the worst validation chips", key="runs_find_worst"):
        with guarded(), st.spinner("Predicting the validation chips with the best checkpoint..."):
            st.session_state[GALLERY_KEY] = (run.id, worst_chips(run, ctx.settings.allowed_roots))
    found = st.session_state.get(GALLERY_KEY)
    if not found or found[0] != run.id:
        st.caption(
            f"Predicts the validation chips (the first {MAX_CHIPS}) with the best checkpoint and lists "
            "the lowest mean IoU first."
        )
        return
    chips = found[1]
    if not chips:
        st.caption("The run's dataset has no labelled validation chips here.")
        return
    colors = class_colors(class_names or [str(i) for i in range(2)])
    bands = ((run_config(run).get("data") or {}).get("init_args") or {}).get("dataset_bands") or []
    rgb = default_rgb([str(b) for b in bands])
    for rank, chip in enumerate(chips):
        image = read_for_display(chip.image, max_size=256)
        truth = read_for_display(chip.label, max_size=256).array[0].astype(np.int64)
        predicted = read_for_display(chip.prediction, max_size=256).array[0].astype(np.int64)
        rgb = rgb if max(rgb) < image.array.shape[0] else [0]
        st.markdown(f"**{chip.image.name}** · mean IoU {chip.mean_iou:.3f}")
        views = [
            (percentile_stretch(image.array, rgb, nodata=image.nodata), "image"),
            (colorize(truth, colors)[..., :3], "label"),
            (colorize(predicted, colors)[..., :3], "prediction"),
        ]
        columns = st.columns(len(views) + 1)
        for column, (pixels, caption) in zip(columns, views):
            column.image(pixels, caption=caption, width="stretch")
        if columns[-1].button("Open on the Predict map", key=f"runs_open_chip_{rank}"):
            open_on_predict(run, chip.predict_index)


def open_on_predict(run: RunRecord, chip_index: int) -> None:
    """Select the run and the chip on the Predict page (its widget keys), then go there."""
    st.session_state["pred_run"] = run
    st.session_state["pred_source"] = "From the run's dataset"
    st.session_state["pred_chip"] = chip_index
    st.switch_page("pages/5_Predict.py")
