"""The Data page's view of several modalities and dates (Streamlit; the detection is
:mod:`geoft.app.modality_layout`, tested without Streamlit): one row per modality, the samples each
lacks, the dates per sample, and a form to correct the names, bands and date patterns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from geoft.app.data_summary import class_values, save_dataset_meta, suggested_ignore_index
from geoft.app.modality_layout import (
    ModalityInfo,
    MultiModalLayout,
    detect_modalities,
    reads_modalities,
    single_stack_possible,
)
from geoft.app.ui import escape_markdown, guarded

KIND_WORDS = {
    "folders": "one folder per modality beside the label folder",
    "patterns": "one folder, each modality told by its name pattern",
}


def _grid(m: ModalityInfo) -> str:
    if m.resolution is None:
        return "-"
    return f"{m.resolution[0]:g} × {m.resolution[1]:g}"


def _dates_text(m: ModalityInfo) -> str:
    if m.dates.source == "names":
        return f"{m.dates.date_count} per sample (from names)"
    if m.dates.source == "tags":
        return "1 per file (from tags)"
    return "-"


def modality_table(layout: MultiModalLayout) -> pd.DataFrame:
    """One row per modality: what it is, how it is found, and what it lacks."""
    rows = []
    for m in layout.modalities:
        missing = layout.missing(m)
        rows.append(
            {
                "modality": m.name,
                "found as": f"{m.token}/" if layout.kind == "folders" else m.image_grep,
                "files": m.file_count,
                "samples": len(m.keys()),
                "bands": m.band_count,
                "size": f"{m.size[0]}×{m.size[1]}" if m.size else "-",
                "data type": m.dtype or "-",
                "CRS": m.crs or "none",
                "pixel size": _grid(m),
                "dates": _dates_text(m),
                "samples lacking it": len(missing),
            }
        )
    return pd.DataFrame(rows)


def date_table(m: ModalityInfo, limit: int = 200) -> pd.DataFrame:
    """The parsed dates of each sample of a dated modality, in order."""
    items = sorted(m.dates.dates.items())[:limit]
    return pd.DataFrame(
        {
            "sample": [k for k, _d in items],
            "dates": [len(d) for _k, d in items],
            "acquired": [", ".join(f"{x:%Y-%m-%d}" for x in d) for _k, d in items],
        }
    )


def _show_problems(layout: MultiModalLayout) -> None:
    for problem in layout.problems:
        st.error(escape_markdown(problem))
    for m in layout.modalities:
        for problem in m.problems[:10]:
            st.error(escape_markdown(f"{m.name}: {problem}"))
        missing = layout.missing(m)
        if missing:
            named = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            st.warning(
                escape_markdown(
                    f"{len(missing)} sample(s) lack {m.name}: {named}. Training refuses them unless missing "
                    "modalities are allowed (Model page): then that modality is zeros for them."
                )
            )
    unlabelled = layout.unlabelled()
    if unlabelled:
        st.warning(escape_markdown(f"{len(unlabelled)} sample(s) have no label: {', '.join(unlabelled[:8])}"))
    if layout.label_resolution:
        for m in layout.modalities:
            if m.resolution and any(
                abs(a - b) > 1e-9 * max(a, b) for a, b in zip(m.resolution, layout.label_resolution)
            ):
                st.info(
                    f"{m.name} has {_grid(m)} pixels, the labels {layout.label_resolution[0]:g}: it is "
                    "resampled onto the label grid while reading (bilinear; nearest for categorical data)."
                )


def _correction_form(
    home: Path, layout: MultiModalLayout, meta: dict[str, Any], histogram: dict[int, int]
) -> None:
    ignore = suggested_ignore_index(histogram)
    values = class_values(histogram, ignore)
    default_classes = meta.get("class_names") or [
        f"class {i}" for i in range(max(2, max(values, default=1) + 1))
    ]
    with st.form("modalities"):
        st.markdown(
            "**Correct or confirm.** Names are the config's modality names (TerraMind reads `S2L2A`, "
            "`S2L1C`, `S2RGB`, `S1GRD`, `S1RTC`, `DEM`); bands in file order, comma-separated; the date "
            "pattern is `time_grep` (`{sample}_S2_{date:%Y%m%d}.tif`; empty: one date per file)."
        )
        edited: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(layout.modalities):
            c1, c2, c3 = st.columns([1, 3, 2])
            name = c1.text_input(f"Modality {i + 1} ({m.token})", m.name, key=f"mod_name_{m.token}")
            bands = c2.text_input(f"{m.name} bands", ", ".join(m.bands), key=f"mod_bands_{m.token}")
            time_grep = c3.text_input(f"{m.name} date pattern", m.time_grep or "", key=f"mod_time_{m.token}")
            edited[m.token] = {
                "name": name.strip(),
                "bands": [b.strip() for b in bands.split(",") if b.strip()],
                "time_grep": time_grep.strip(),
            }
        classes = st.text_input(
            "Class names (label values 0, 1, ...)", ", ".join(default_classes), key="mod_classes"
        )
        if st.form_submit_button("Use these modalities"):
            with guarded():
                names = [c.strip() for c in classes.split(",") if c.strip()]
                save_dataset_meta(home, layout.root, {**meta, "modalities": edited, "class_names": names})
                st.rerun()


def _read_as_modalities(home: Path, layout: MultiModalLayout, meta: dict[str, Any]) -> bool:
    """The analyst's choice: every modality, or the richest one as one stack of bands (flat folders only)."""
    if not single_stack_possible(layout):
        return True
    options = ["modalities", "single"]
    words = {
        "modalities": "Every modality (GenericMultiModalDataModule; the Model page fuses them)",
        "single": f"Only {layout.modalities[0].token.strip('_')}, as one stack of bands",
    }
    chosen = st.radio(
        "Train on",
        options,
        index=0 if reads_modalities(layout, meta) else 1,
        format_func=words.get,
        key=f"data_modalities:{layout.root}",
    )
    if (chosen == "modalities") != reads_modalities(layout, meta):
        with guarded():
            save_dataset_meta(home, layout.root, {**meta, "multimodal": chosen == "modalities"})
            meta["multimodal"] = chosen == "modalities"
    return chosen == "modalities"


def modality_panel(home: Path, root: Path, meta: dict[str, Any]) -> MultiModalLayout | None:
    """Show the modalities and dates of ``root``; None: a single stack of bands (nothing detected, or the
    analyst reads a flat folder's richest modality alone, the one-stack view then follows)."""
    layout = detect_modalities(root, meta.get("modalities"))
    if layout is None:
        return None
    st.markdown(
        f"**{len(layout.modalities)} modalit{'y' if len(layout.modalities) == 1 else 'ies'}** "
        f"({KIND_WORDS[layout.kind]}); labels `{layout.label_grep}`; "
        f"**{layout.complete_count()}** samples have every modality and a label."
    )
    st.dataframe(modality_table(layout), hide_index=True)
    if not _read_as_modalities(home, layout, meta):
        return None
    warnings: list[str] = []
    histogram = layout.class_histogram(warnings)
    _show_problems(layout)
    for warning in warnings:
        st.warning(escape_markdown(warning))
    st.caption(
        "Label values: "
        + ", ".join(f"{v} ({n:,} pixels)" for v, n in histogram.items())
        + (
            f"; {suggested_ignore_index(histogram)} looks like 'no data'"
            if suggested_ignore_index(histogram) is not None
            else ""
        )
    )
    for m in layout.modalities:
        if m.dates.source == "names":
            st.markdown(f"**Dates of {m.name}** (`{m.time_grep}`, ordered by date)")
            counts = ", ".join(f"{n} dates: {c} samples" for n, c in sorted(m.dates.counts.items()))
            st.caption(counts)
            st.dataframe(date_table(m), hide_index=True)
    _correction_form(home, layout, meta, histogram)
    return layout
