"""Reusable Streamlit pieces: live run panel, class legend, offline map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from geoft.app.imagery import hex_color
from geoft.app.owners import may_control, owner_label
from geoft.app.progress import (
    curves,
    estimate_progress,
    find_metrics_file,
    format_duration,
    log_tail,
    read_events,
    read_metrics,
)
from geoft.app.run_store import COMPLETED, FAILED, INTERRUPTED, QUEUED, RUNNING, STOPPED, RunRecord
from geoft.app.ui import AppContext, escape_markdown, guarded

# Plain symbols every UI font has (emoji render as empty boxes where no emoji font is installed)
STATUS_ICONS = {
    QUEUED: "…",
    RUNNING: "▶",
    COMPLETED: "✓",
    FAILED: "✗",
    STOPPED: "■",
    INTERRUPTED: "!",
    "cancelled": "–",
}


def show_check(config: dict[str, Any], roots: Sequence[Any]) -> bool:
    """Check ``config`` as `geoft fit` would (once per distinct config); one line per problem, the weight
    load reports, and a warning for random weights. True when it may be queued."""
    import hashlib

    from geoft.app.config_check import check_submission, random_weights_warning
    from geoft.app.forms import config_to_yaml

    digest = hashlib.sha1(config_to_yaml(config).encode()).hexdigest()
    cache = st.session_state.setdefault("geoft_checked_configs", {})
    if digest not in cache:  # the check builds the model: once per distinct config
        with st.spinner("Checking the config with geoft fit's parser and classes..."):
            cache[digest] = check_submission(config, list(roots))
    result = cache[digest]
    for problem in result.problems:
        st.error(escape_markdown(problem), icon=":material/error:")
    for report in result.load_reports:
        st.info("**Weights loaded.** " + escape_markdown(report), icon=":material/download_done:")
    warning = random_weights_warning(config)
    if warning and result.ok:
        st.warning(warning, icon=":material/warning:")
    return result.ok


def status_label(run: RunRecord) -> str:
    return f"{STATUS_ICONS.get(run.status, '')} {run.status}"


def _max_epochs(run: RunRecord) -> int | None:
    import yaml

    starts = [e for e in read_events(find_metrics_file(run.run_dir)) if e.get("event") == "start"]
    if starts and isinstance(starts[-1].get("max_epochs"), int):
        return starts[-1]["max_epochs"]
    try:
        config = yaml.safe_load(run.config_path.read_text())
        value = (config.get("trainer") or {}).get("max_epochs")
        return int(value) if value else None
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def curves_frame(records: list[dict[str, Any]]) -> Any:
    """Wide DataFrame ``x -> metric columns`` for st.line_chart."""
    import pandas as pd

    rows = [(x, name, value) for name, points in curves(records).items() for x, value in points]
    if not rows:
        return pd.DataFrame()
    long = pd.DataFrame(rows, columns=["step", "metric", "value"])
    # one pivot for every series (the last value logged at a step wins), in first-logged column order
    wide = long.groupby(["step", "metric"], sort=False)["value"].last().unstack("metric").sort_index()
    return wide[list(dict.fromkeys(long["metric"]))].rename_axis(columns=None)


def comparison_frame(frames: dict[str, Any], metric: str) -> Any:
    """One column per run (``label -> curves_frame``) holding ``metric``, for :func:`line_chart`."""
    import pandas as pd

    series = {label: f[metric] for label, f in frames.items() if metric in f.columns}
    if not series:
        return pd.DataFrame()
    overlay = pd.concat(series, axis=1).sort_index()
    overlay.index.name = "step"
    return overlay


def is_summary_metric(name: str) -> bool:
    """Overall metrics (not per-class ones, not learning rates) for the charts and tables."""
    low = name.lower()
    return not ("class_" in low or "/iou_" in low or low.startswith(("lr", "epoch")))


CHART_PLOT_HEIGHT = 200


def line_chart(frame: Any, columns: list[str]) -> Any:
    """Curves with points; each series drops its own gaps (val metrics only exist at epoch ends)."""
    import altair as alt

    long = frame[columns].reset_index().melt(id_vars="step", var_name="metric").dropna()
    legend_rows = (len(columns) + 1) // 2
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("value:Q", title=None),
            # below the chart, in columns, names never cut: every series stays readable
            color=alt.Color(
                "metric:N", legend=alt.Legend(orient="bottom", columns=2, labelLimit=0, title=None)
            ),
        )
        # Streamlit fits the whole chart, legend included, into this height: grow it with the legend
        # so that the plot itself keeps its height however many series there are
        .properties(height=CHART_PLOT_HEIGHT + 60 + 22 * legend_rows)
    )


def run_panel(ctx: AppContext, run_id: str, controls: bool = True, key: str = "panel") -> RunRecord:
    """Status, progress with ETA, live curves, log tail and errors of one run."""
    ctx.runner.reconcile()
    run = ctx.store.get(run_id)
    cols = st.columns([3, 1, 1])
    cols[0].markdown(
        f"**{escape_markdown(run.name)}** · `{run.id}` · {status_label(run)} · device `{run.device}`"
        + (
            f" · owner **{escape_markdown(owner_label(run))}**"
            if ctx.actor.user is not None or run.owner
            else ""
        )
    )
    if controls and not may_control(ctx.actor, run):
        cols[0].caption(
            f"Only {escape_markdown(run.owner or 'an admin')}"
            + (" or an admin" if run.owner else "")
            + " may stop, resume or delete this run."
        )
    if controls:
        acted = False
        if run.is_active and cols[1].button("Stop", key=f"{key}-stop-{run.id}"):
            with guarded():
                ctx.runner.stop(run.id)
                st.toast(f"Stopping {run.name}")
                acted = True
        resumable = run.status in (STOPPED, FAILED, INTERRUPTED)
        if resumable and cols[2].button("Resume", key=f"{key}-resume-{run.id}"):
            with guarded():
                ctx.runner.resume(run.id)
                st.toast(f"Resumed {run.name}")
                acted = True
        if acted:
            _rerun()
        run = ctx.store.get(run_id)
    records = read_metrics(find_metrics_file(run.run_dir))
    progress = estimate_progress(records, _max_epochs(run), run.started)
    if run.status == RUNNING:
        st.progress(
            progress.fraction or 0.0, text=f"{progress.describe()} · running {format_duration(run.duration)}"
        )
    elif run.status == QUEUED:
        st.info(f"Queued: {escape_markdown(ctx.runner.queue_reason(run.id))}.")
    elif run.status == COMPLETED:
        st.success(f"Finished in {format_duration(run.duration)}.")
    elif run.status == STOPPED:
        st.warning("Stopped. Resume continues from the last checkpoint.")
    if run.error:
        st.error(f"Training {run.status}: {run.error}")
    frame = curves_frame(records)
    if not frame.empty:
        loss_cols = [c for c in frame.columns if "loss" in c.lower()]
        other = [c for c in frame.columns if c not in loss_cols and is_summary_metric(c)]
        other = [c for c in other if c.startswith("val")] or other  # the scores that judge the model
        c1, c2 = st.columns(2)
        if loss_cols:
            c1.caption("Loss")
            c1.altair_chart(line_chart(frame, loss_cols), width="stretch")
        if other:
            c2.caption("Metrics")
            c2.altair_chart(line_chart(frame, other), width="stretch")
        if not run.is_active:
            results_summary(run, records)
    with st.expander("Log", expanded=run.status == FAILED):
        st.code(log_tail(run.log_path) or "(no output yet)", language="text")
    return run


def results_summary(run: RunRecord, records: list[dict[str, Any]]) -> None:
    """Best and last validation metrics, and a warning when the model did not learn."""
    import pandas as pd
    import yaml

    from geoft.app.evaluation import learning_warnings, load_confusion
    from geoft.app.progress import best_and_last

    rows = [r for r in best_and_last(records) if is_summary_metric(r["metric"])]
    if rows:
        st.caption("Validation: best and last")
        st.table(
            pd.DataFrame(rows).round(4).set_index("metric")
        )  # static: legible at once, and in screenshots
    with guarded():
        try:
            config = yaml.safe_load(run.config_path.read_text()) or {}
        except OSError:
            config = {}
        for warning in learning_warnings(records, load_confusion(run.run_dir), config):
            st.warning("**The model did not learn:** " + warning, icon=":material/trending_down:")


def _rerun() -> None:
    """Redraw the panel with the new status (only the fragment when inside one)."""
    try:
        st.rerun(scope="fragment")
    except st.errors.StreamlitAPIException:
        st.rerun()


def class_legend(names: Sequence[str], colors: Sequence[Sequence[int]]) -> None:
    items = " ".join(
        f"<span style='white-space:nowrap;margin-right:12px'><span style='display:inline-block;width:12px;"
        f"height:12px;background:{hex_color(c)};border:1px solid #333;margin-right:4px'></span>{n}</span>"
        for n, c in zip(names, colors)
    )
    st.markdown(items, unsafe_allow_html=True)


def show_map(
    m: Any, key: str, height: int = 520, returned_objects: Sequence[str] = ()
) -> dict[str, Any] | None:
    """Render a folium map with streamlit-folium; only the interactions named in ``returned_objects``
    (streamlit-folium's names, e.g. ``last_object_clicked``) rerun the page and come back."""
    from streamlit_folium import st_folium

    if not st.get_option("server.enableStaticServing"):
        st.error(
            "The map needs Streamlit static serving (Leaflet is served by this app, never from a CDN). "
            "Start the app from the geoft folder (`make run`, which reads .streamlit/config.toml) or add "
            "`--server.enableStaticServing true`."
        )
        return None
    return st_folium(
        m, key=key, height=height, use_container_width=True, returned_objects=list(returned_objects)
    )
