"""The Data page's panels for object annotations, one value per image and one value per pixel (Streamlit;
the reading is :mod:`geoft.app.detection_data`, :mod:`geoft.app.scalar_data` and
:mod:`geoft.app.pixelwise_data`, tested without Streamlit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from geoft.app.classification_data import ClassificationSummary, summarize_classification
from geoft.app.data_summary import DatasetSummary, dataset_kind, default_rgb, save_dataset_meta
from geoft.app.data_summary import summarize as summarize_dataset
from geoft.app.detection_data import DetectionSummary, boxes_preview, summarize_detection
from geoft.app.imagery import class_colors
from geoft.app.pixelwise_data import summarize_pixel_values
from geoft.app.scalar_data import ScalarSummary, summarize_scalar
from geoft.app.ui import escape_markdown, guarded
from geoft.app.widgets import class_legend
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind

FORMAT_NAMES = {
    "vector": "GeoJSON / GeoPackage per chip",
    "coco": "one COCO JSON",
    "yolo": "YOLO .txt per chip",
}


def _problems(root: Path, problems: list[str], warnings: list[str]) -> None:
    """Problems first, each naming its file relative to the dataset folder."""

    def shown(text: str) -> str:
        return escape_markdown(text.replace(f"{root}/", ""))

    for problem in problems[:20]:
        st.error(shown(problem))
    if len(problems) > 20:
        st.error(f"... and {len(problems) - 20} more problems")
    for warning in warnings[:10]:
        st.warning(shown(warning))


def _saved_choice(
    label: str,
    options: list[str],
    current: str | None,
    meta_key: str,
    home: Path,
    root: Path,
    meta: dict[str, Any],
    format_func: Callable[[str], str] = str,
) -> None:
    """A choice among ``options`` kept in the dataset's saved settings (the page redraws with it)."""
    index = options.index(current) if current in options else 0
    picked = st.selectbox(label, options, index=index, format_func=format_func, key=f"data_{meta_key}")
    if picked != current:
        with guarded():
            save_dataset_meta(home, root, {**meta, meta_key: picked})
            st.rerun()


def _labels_file_choice(
    found: list[str], chosen: str | None, home: Path, root: Path, meta: dict[str, Any]
) -> bool:
    """A choice among several labels files (saved with the dataset); False when there is one or none."""
    if len(found) < 2:
        return False
    _saved_choice("Labels file", found, chosen, "labels_file", home, root, meta)
    return True


def detection_panel(home: Path, root: Path, meta: dict[str, Any]) -> DetectionSummary | None:
    """Annotation format, counts, classes, objects per image and problems of a detection dataset."""
    summary = None
    with guarded():
        summary = summarize_detection(root, meta.get("label_format"), meta.get("class_names"))
    if summary is None:
        return None
    if len(summary.formats_found) > 1:
        _saved_choice(
            "Annotations to train on", summary.formats_found, summary.label_format, "label_format", home, root, meta,
            format_func=lambda f: FORMAT_NAMES.get(f, f),
        )  # fmt: skip
    elif summary.label_format:
        st.caption(f"Annotations: {FORMAT_NAMES[summary.label_format]}.")
    _problems(root, summary.problems, summary.warnings)
    c = st.columns(5)
    c[0].metric("Images", summary.image_count)
    c[1].metric("Objects", summary.object_count)
    c[2].metric("Empty images", summary.empty_images)
    c[3].metric("Most objects in one image", summary.max_objects)
    c[4].metric("Size", f"{summary.size[0]}×{summary.size[1]}" if summary.size else "-")
    st.markdown(
        f"**CRS:** `{summary.crs or 'none'}` · **Splits:** "
        + ", ".join(f"{name} {count}" for name, count in summary.split_sizes.items())
        + (f" · **Class field:** `{summary.class_field}`" if summary.class_field else "")
    )
    st.subheader("Classes")
    st.dataframe(
        pd.DataFrame(
            {"class": summary.class_names, "objects": [summary.class_counts[n] for n in summary.class_names]}
        ),
        hide_index=True,
    )
    per_image = pd.Series([n for s in summary.splits for n in s.objects_per_image.values()])
    if not per_image.empty:
        st.caption("Images by number of objects")
        st.bar_chart(per_image.value_counts().sort_index().rename("images"))
    _gallery(summary, default_rgb(list(meta.get("bands") or summary.band_names)))
    with st.form("detection_classes"):
        names_text = st.text_input(
            "Class names (comma-separated, in class order)",
            ", ".join(summary.class_names),
            key="data_detection_classes",
        )
        if st.form_submit_button("Save classes"):
            names = [n.strip() for n in names_text.split(",") if n.strip()]
            with guarded():
                if len(names) != len(summary.class_names):
                    raise ConfigError(
                        f"the annotations have {len(summary.class_names)} classes; name each of them"
                    )
                save_dataset_meta(home, root, {**meta, "class_names": names})
                st.rerun()
    return summary


def _gallery(summary: DetectionSummary, rgb: list[int]) -> None:
    examples = [(s.name, image, objects) for s in summary.splits for image, objects in s.examples][:8]
    if not examples:
        return
    st.subheader("Gallery")
    colors = class_colors(summary.class_names)
    class_legend(summary.class_names, colors)
    columns = st.columns(4)
    for k, (split, image, objects) in enumerate(examples):
        with columns[k % 4], guarded():
            st.image(
                boxes_preview(image, objects, rgb, colors),
                caption=f"{split} · {image.name} · {len(objects)} objects",
                width="stretch",
            )


def scalar_panel(home: Path, root: Path, meta: dict[str, Any]) -> ScalarSummary | None:
    """Labels file, image count, value range and problems of a scalar-regression dataset."""
    summary = None
    with guarded():
        summary = summarize_scalar(root, meta.get("labels_file"))
    if summary is None:
        return None
    if not _labels_file_choice(summary.labels_files_found, summary.labels_file_name, home, root, meta):
        st.caption(f"Labels file: `{summary.labels_file_name}` in each split folder.")
    _problems(root, summary.problems, summary.warnings)
    low, high = summary.value_range or (None, None)
    values = pd.Series([v for s in summary.splits for v in s.values])
    c = st.columns(5)
    c[0].metric("Images with a value", summary.image_count)
    c[1].metric("Minimum", "-" if low is None else f"{low:.4g}")
    c[2].metric("Maximum", "-" if high is None else f"{high:.4g}")
    c[3].metric("Mean", "-" if values.empty else f"{values.mean():.4g}")
    c[4].metric("Size", f"{summary.size[0]}×{summary.size[1]}" if summary.size else "-")
    st.markdown(
        "**Values:** "
        + (", ".join(f"`{n}`" for n in summary.value_names) or "one per image")
        + " · **Splits:** "
        + ", ".join(f"{name} {count}" for name, count in summary.split_sizes.items())
    )
    if len(values) > 1:
        st.caption("Distribution of the values")
        counts = pd.cut(values, bins=min(20, len(values))).value_counts().sort_index()
        st.bar_chart(pd.Series(counts.values, index=[f"{i.mid:.3g}" for i in counts.index], name="images"))
    return summary


def classification_panel(home: Path, root: Path, meta: dict[str, Any]) -> ClassificationSummary | None:
    """Where the labels come from, images, classes and images per class of a (multi-label) classification
    dataset (an image of several classes counts once in each)."""
    summary = None
    with guarded():
        multi = dataset_kind(meta) == TaskKind.MULTILABEL_CLASSIFICATION
        summary = summarize_classification(root, meta.get("labels_file"), multi_label=multi)
    if summary is None:
        return None
    _labels_file_choice(summary.labels_files_found, summary.labels_file_name, home, root, meta)
    by_file = any(s.labels_file for s in summary.splits)
    st.caption(
        f"Labels: `{summary.labels_file_name}` in each split folder."
        if by_file
        else "Labels: one sub-folder per class in each split folder."
    )
    _problems(root, summary.problems, summary.warnings)
    c = st.columns(4)
    c[0].metric("Images", summary.image_count)
    c[1].metric("Classes", len(summary.class_names))
    c[2].metric("Smallest class", min(summary.class_counts.values(), default=0))
    c[3].metric("Size", f"{summary.size[0]}×{summary.size[1]}" if summary.size else "-")
    st.markdown("**Splits:** " + ", ".join(f"{name} {count}" for name, count in summary.split_sizes.items()))
    st.subheader("Classes")
    counts = summary.class_counts
    st.dataframe(pd.DataFrame({"class": list(counts), "images": list(counts.values())}), hide_index=True)
    return summary


def segmentation_pairing(root: Path, meta: dict[str, Any], read_classes: bool = True) -> DatasetSummary:
    """The Model page's image and label suffixes (as on the Data page) and the pairs they give;
    ``read_classes=False`` for value rasters, whose pixels are no class indices."""
    reads = 64 if read_classes else 0

    def summarize(root: Path, image_suffix: str | None, label_suffix: str | None) -> DatasetSummary:
        return summarize_dataset(root, reads, image_suffix=image_suffix, label_suffix=label_suffix)

    detected = summarize(root, image_suffix=meta.get("image_suffix"), label_suffix=meta.get("label_suffix"))
    s1, s2 = st.columns(2)
    image_suffix = s1.text_input(
        "Image suffix", detected.pairing.image_suffix, key="model_image_suffix", help="as on the Data page"
    )
    label_suffix = s2.text_input("Label suffix", detected.pairing.label_suffix, key="model_label_suffix")
    same = (image_suffix, label_suffix) == (detected.pairing.image_suffix, detected.pairing.label_suffix)
    summary = detected if same else summarize(root, image_suffix=image_suffix, label_suffix=label_suffix)
    st.caption(summary.pairing.explain() + f" {summary.chip_count} pairs.")
    return summary


def pixel_values_panel(home: Path, root: Path, meta: dict[str, Any]) -> DatasetSummary | None:
    """Pairing, counts, value range and histogram of a pixel-wise regression dataset."""
    summary = None
    with guarded():
        # the class histogram of masks does not apply: value rasters are read below
        summary = summarize_dataset(
            root,
            max_label_reads=0,
            image_suffix=meta.get("image_suffix"),
            label_suffix=meta.get("label_suffix"),
        )
    if summary is None:
        return None
    st.caption(summary.pairing.explain())
    values = summarize_pixel_values(summary)
    warnings = [w for w in summary.warnings if not w.startswith("class histogram")]
    if values.rasters_read < values.rasters_total:
        warnings.append(
            f"values from a sample of {values.rasters_read} of {values.rasters_total} target rasters"
        )
    if values.missing_pixels:
        warnings.append(
            f"{values.missing_pixels} target pixels are NaN or nodata: tick 'Ignore a label value' on the "
            "Model page so they count in no loss and no metric"
        )
    _problems(root, summary.problems + values.problems, warnings)
    c = st.columns(5)
    c[0].metric("Image/target pairs", summary.chip_count)
    c[1].metric("Minimum", "-" if values.low is None else f"{values.low:.4g}")
    c[2].metric("Maximum", "-" if values.high is None else f"{values.high:.4g}")
    c[3].metric("Mean", "-" if values.mean is None else f"{values.mean:.4g}")
    c[4].metric("Size", f"{summary.size[0]}×{summary.size[1]}" if summary.size else "-")
    st.markdown(
        f"**CRS:** `{summary.crs or 'none'}` · **Missing target pixels (NaN/nodata):** {values.missing_pixels}"
    )
    if values.counts:
        st.caption("Distribution of the target values (pixels)")
        mids = [f"{(a + b) / 2:.3g}" for a, b in zip(values.edges[:-1], values.edges[1:])]
        st.bar_chart(pd.Series(values.counts, index=mids, name="pixels"))
    return summary
