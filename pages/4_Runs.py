"""Runs: history, comparison, sweeps (trials, parallel coordinates, best config), per-class scores (IoU
and a confusion heatmap with the worst validation chips, or AP for detection), checkpoints, export, deletion."""

import pandas as pd
import streamlit as st

from geoft.app.evaluation import load_confusion, per_class_scores
from geoft.app.jobs import checkpoint_sizes
from geoft.app.owners import owner_label
from geoft.app.progress import best_and_last, find_metrics_file, format_duration, read_metrics
from geoft.app.run_views import confusion_heatmap, confusion_long, worst_chips_gallery
from geoft.app.sweep_command import is_sweep
from geoft.app.sweep_panel import sweep_view
from geoft.app.task_metrics import per_class_ap, run_task_kind, table_metrics
from geoft.app.ui import guarded, setup_page
from geoft.app.widgets import (
    comparison_frame,
    curves_frame,
    is_summary_metric,
    line_chart,
    run_panel,
    status_label,
)
from geoft.task_kinds import TaskKind

ctx = setup_page("Runs")


st.title("Runs")

runs = ctx.store.list()
if not runs:
    st.info("No runs yet. Start one on the **Train** page or run the demo on the home page.")
    st.stop()


def _last_metrics(run) -> dict[str, float]:
    rows = best_and_last(read_metrics(find_metrics_file(run.run_dir)))
    return {r["metric"]: r["last"] for r in rows}


show_owners = ctx.actor.user is not None or any(r.owner for r in runs)  # single-user mode: as before
metric_columns = table_metrics(k for r in runs for k in r.best_metrics if is_summary_metric(k))
rows = []
for r in runs:
    last = _last_metrics(r)
    row = {"name": r.name, "status": status_label(r)}
    if show_owners:
        row["owner"] = owner_label(r)
    for k in metric_columns[:3]:  # the key scores first, best and last side by side
        row[f"{k} best"] = r.best_metrics.get(k)
        row[f"{k} last"] = last.get(k)
    row.update(
        duration=format_duration(r.duration),
        created=pd.Timestamp(r.created, unit="s").strftime("%Y-%m-%d %H:%M"),
    )
    row.update({k: r.best_metrics.get(k) for k in metric_columns[3:]})
    row["id"] = r.id
    rows.append(row)
st.dataframe(pd.DataFrame(rows).round(4), hide_index=True, width="stretch")
st.caption("best: the best validation value of the run (any epoch); last: its value at the end of training.")

st.subheader("Compare")
by_id = {r.id: r for r in runs}
finished = [i for i, r in by_id.items() if r.status == "completed"]
picked = st.multiselect(
    "Runs to compare",
    list(by_id),
    default=finished[:2] or list(by_id)[:1],
    format_func=lambda i: f"{by_id[i].name} · {status_label(by_id[i])} · {i}",
)
if picked:
    frames = {i: curves_frame(read_metrics(find_metrics_file(by_id[i].run_dir))) for i in picked}
    metrics = table_metrics(c for f in frames.values() for c in f.columns if is_summary_metric(c))
    if metrics:
        metric = st.selectbox(
            "Metric", metrics, index=next((k for k, m in enumerate(metrics) if "val" in m), 0)
        )
        overlay = comparison_frame({by_id[i].name + " · " + i[-4:]: f for i, f in frames.items()}, metric)
        st.altair_chart(line_chart(overlay, list(overlay.columns)), width="stretch")
    else:
        st.caption("These runs have logged no metrics yet.")

st.subheader("Details")
run_id = st.selectbox("Run", list(by_id), format_func=lambda i: f"{by_id[i].name} · {i}", key="runs_detail")
run = by_id[run_id]
with guarded():
    run_panel(ctx, run_id, key="runs")

if is_sweep(run):
    st.subheader("Sweep")
    with guarded():
        sweep_view(ctx, run)

tab_cfg, tab_scores, tab_files = st.tabs(["Config", "Per-class scores", "Checkpoints & export"])
with tab_cfg:
    if run.config_path.is_file():
        text = run.config_path.read_text()
        st.code(text, language="yaml")
        st.download_button("Download config.yaml", text, file_name=f"{run.id}.yaml")
        if st.button("Use this config for a new run"):
            from geoft.app.forms import config_from_yaml

            with guarded():
                st.session_state["geoft_config"] = config_from_yaml(text)
                st.switch_page("pages/3_Train.py")
with tab_scores:
    with guarded():
        kind = run_task_kind(run.config_path)
        if kind == TaskKind.OBJECT_DETECTION:
            rows = per_class_ap(_last_metrics(run))
            if rows:
                st.caption("Average precision (IoU 0.50:0.95) per class, last validation.")
                st.dataframe(pd.DataFrame(rows).round(4), hide_index=True)
            else:
                st.caption("No per-class AP yet (logged after each validation epoch, for classes present).")
        elif kind == TaskKind.SCALAR_REGRESSION:
            st.caption("One value per image: no classes. The scores are RMSE, MAE and R² (above).")
        else:
            confusion = load_confusion(run.run_dir)
            if not confusion:
                st.caption("This run saved no confusion matrix (it is written after each validation epoch).")
            for split, entry in confusion.items():
                st.markdown(f"**{split}** (epoch {entry.get('epoch')})")
                names = entry.get("class_names") or []
                scores = pd.DataFrame(per_class_scores(entry["matrix"], names))
                st.dataframe(scores, hide_index=True)
                class_list = list(scores["class"])
                st.altair_chart(confusion_heatmap(confusion_long(entry["matrix"], class_list), class_list))
            if confusion:
                st.markdown("**Worst validation chips**")
                worst_chips_gallery(ctx, run, list(next(iter(confusion.values())).get("class_names") or []))
with tab_files:
    ckpts = checkpoint_sizes(run.run_dir)
    if not ckpts:
        st.caption("No checkpoints yet.")
    for ckpt, size in ckpts:
        c1, c2 = st.columns([3, 1])
        c1.write(f"`{ckpt.relative_to(run.run_dir)}` · {size / 1e6:.1f} MB")
        # read on click, not on every render (the job may also have replaced the file by then)
        c2.download_button("Download", ckpt.read_bytes, file_name=f"{run.id}-{ckpt.name}", key=f"dl-{ckpt}")
    if ckpts and st.button("Export to ONNX"):
        from geoft.app.exporting import export_run_onnx

        with guarded(), st.spinner("Exporting..."):
            onnx_path = export_run_onnx(run)
            st.success(f"Exported {onnx_path.name}")
            st.download_button("Download ONNX", onnx_path.read_bytes(), file_name=f"{run.id}.onnx")
    st.divider()
    confirm = st.checkbox("I want to delete this run and its files", key=f"confirm-del-{run.id}")
    if st.button("Delete run", disabled=not confirm, type="secondary"):
        with guarded():
            ctx.runner.delete(run.id)
            st.success(f"Deleted {run.id}")
            st.rerun()
