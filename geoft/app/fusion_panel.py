"""The Model page's choices for several modalities and dates (Streamlit; the rules and the config are
:mod:`geoft.app.fusion_choice`'s, tested without Streamlit): the fusion, the backbones that fit it,
the bands of each modality, late fusion's encoders, the dates' pooling and ``use_metadata``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from geoft.app.backbone_choice import default_input_bands, label
from geoft.app.fusion_choice import (
    FUSIONS,
    MERGE_METHODS,
    TEMPORAL_MODES,
    TEMPORAL_POOLING,
    FusionChoice,
    fitting,
    takes_frames,
    takes_metadata,
    terramind_misfits,
)
from geoft.app.modality_layout import MultiModalLayout, multimodal_paths


@dataclass
class ModalityInputs:
    """What the page hands the config builder for a multimodal dataset."""

    fusion: FusionChoice
    bands: dict[str, list[str]]
    dataset_bands: dict[str, list[str]]
    paths: dict[str, Any]

    @property
    def concatenated(self) -> list[str]:
        return [b for bands in self.bands.values() for b in bands]


def date_count(layout: MultiModalLayout) -> int:
    return max((m.dates.date_count for m in layout.modalities if m.dates.source == "names"), default=1)


def fusion_method(layout: MultiModalLayout) -> str:
    """The fusion radio; TerraMind is explained where the modality names do not fit it."""
    st.markdown(
        f"**Modalities:** {', '.join(f'`{m.name}` ({m.band_count} bands)' for m in layout.modalities)}"
        + (f" · **{date_count(layout)} dates** per sample" if date_count(layout) > 1 else "")
    )
    options = list(FUSIONS) if len(layout.modalities) > 1 else ["concat_bands"]
    method = st.radio("How the modalities are fused", options, format_func=FUSIONS.get, key="model_fusion")
    unknown = terramind_misfits(layout.names)
    if method == "terramind" and unknown:
        st.warning(
            f"TerraMind does not know {', '.join(unknown)}: rename them on the Data page (S2L2A, S2L1C, S2RGB, "
            "S1GRD, S1RTC, DEM).",
            icon=":material/warning:",
        )
    return method


def fitting_options(
    options: list[str], method: str, layout: MultiModalLayout, show: bool = True
) -> list[str]:
    """The backbones that fit; the others listed with the reason, under an expander (``show``)."""
    kept, refused = fitting(options, method, layout.names, date_count(layout))
    if not kept:
        reasons = sorted(set(refused.values()))
        st.error(f"No backbone fits {FUSIONS[method]} on this data: " + "; ".join(reasons) + ".")
        st.stop()
    if refused and show:
        with st.expander(f"{len(refused)} backbones do not fit this data and fusion"):
            by_reason: dict[str, list[str]] = {}
            for name, reason in refused.items():
                by_reason.setdefault(reason, []).append(name)
            for reason, names in by_reason.items():
                st.markdown(f"- {reason}: " + ", ".join(f"`{n}`" for n in names))
    return kept


def modality_inputs(
    layout: MultiModalLayout, backbone: str, method: str, encoder_options: list[str]
) -> ModalityInputs:
    """Bands per modality, encoders, dates and coordinates."""
    fusion = FusionChoice(method=method, dates=date_count(layout))
    if method == "late_fusion":
        fusion.merge_method = st.radio(
            "Merge the encoders' features",
            MERGE_METHODS,
            horizontal=True,
            key="model_merge_method",
            help="mean: encoders of the same widths; concat: side by side (needs every modality)",
        )
    bands: dict[str, list[str]] = {}
    columns = st.columns(len(layout.modalities))
    for column, m in zip(columns, layout.modalities):
        encoder = backbone
        if method == "late_fusion":
            encoder = column.selectbox(
                f"{m.name} encoder",
                encoder_options,
                index=encoder_options.index(backbone) if backbone in encoder_options else 0,
                format_func=label,
                key=f"model_encoder_{m.name}",
            )
            fusion.encoders[m.name] = encoder
        bands[m.name] = column.multiselect(
            f"{m.name} bands",
            m.bands,
            default=default_input_bands(m.bands, encoder),
            key=f"model_bands_{m.name}",
        )
    if fusion.dates > 1:
        modes = list(TEMPORAL_MODES)
        readers = fusion.encoders.values() if method == "late_fusion" else [backbone]
        if not all(takes_frames(b) for b in readers):
            modes.remove("frames")
        if method == "late_fusion":
            modes = [m for m in modes if m == "frames"]
        if not modes:
            st.error(
                "Late fusion reads dates through Prithvi encoders (num_frames): choose Prithvi encoders."
            )
        else:
            fusion.temporal_mode = st.radio(
                "The dates", modes, format_func=TEMPORAL_MODES.get, key="model_temporal_mode"
            )
        if fusion.temporal_mode == "temporal" and "temporal" in modes:
            fusion.temporal_pooling = st.selectbox(
                "Pool the dates' features",
                TEMPORAL_POOLING,
                key="model_temporal_pooling",
                help="diff: first date minus the second (change); concat: side by side",
            )
    metadata_readers = [backbone, *fusion.encoders.values()]
    reads = any(takes_metadata(b) for b in metadata_readers)
    fusion.use_metadata = st.checkbox(
        "Dates and locations to the model (use_metadata)",
        value=reads,
        disabled=not reads,
        key=f"model_use_metadata_{reads}",  # a fresh box when the backbone starts or stops reading them
        help="the Prithvi _tl backbones add time and location encodings; others ignore them",
    )
    lacking = any(layout.missing(m) for m in layout.modalities)
    allow = st.checkbox(
        "Keep samples that lack a modality (zeros for it)",
        value=lacking,
        disabled=not lacking,
        key="model_allow_missing",
    )
    return ModalityInputs(
        fusion=fusion,
        bands=bands,
        dataset_bands={m.name: list(m.bands) for m in layout.modalities},
        paths=multimodal_paths(layout, allow_missing=allow and lacking),
    )
