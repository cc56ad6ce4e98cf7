"""Streamlit parts of sweeps: the Train page's sweep form and the Runs page's view of a sweep job."""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

from geoft.app.jobs import run_dataset_root
from geoft.app.run_store import RunRecord
from geoft.app.sweep_jobs import SpaceForm, submit_sweep
from geoft.app.sweep_results import best_config, load_results, parallel_chart, parallel_frame, short_name
from geoft.app.ui import AppContext, guarded
from geoft.app.widgets import show_check


def _model_args(config: dict[str, Any]) -> dict[str, Any]:
    return ((config.get("model") or {}).get("init_args") or {}).get("model_args") or {}


def sweep_form(ctx: AppContext, config: dict[str, Any], name: str) -> None:
    """The space (what :class:`SpaceForm` takes) and the number of trials; checked, then queued."""
    args = _model_args(config)
    with st.form("sweep_form"):
        c1, c2, c3 = st.columns(3)
        search_lr = c1.checkbox("Search the learning rate", value=True, key="sweep_search_lr")
        lr_low = c2.number_input("lowest", value=1e-5, format="%.1e", key="sweep_lr_low")
        lr_high = c3.number_input("highest", value=1e-2, format="%.1e", key="sweep_lr_high")
        lr_log = c1.checkbox("log scale", value=True, key="sweep_lr_log")
        st.caption("Lists are comma-separated; an empty list is not searched.")
        c1, c2 = st.columns(2)
        batch_sizes = c1.text_input("Batch sizes", placeholder="2, 4, 8", key="sweep_batch_sizes")
        lora = c2.text_input("LoRA ranks", placeholder="4, 8, 16", key="sweep_lora")
        backbones = c1.text_input(
            "Backbones", placeholder=str(args.get("backbone", "")), key="sweep_backbones"
        )
        decoders = c2.text_input("Decoders", placeholder=str(args.get("decoder", "")), key="sweep_decoders")
        freeze_backbone = c1.checkbox("Try frozen and trained backbone", key="sweep_freeze_backbone")
        freeze_decoder = c2.checkbox("Try frozen and trained decoder", key="sweep_freeze_decoder")
        c1, c2 = st.columns(2)
        trials = c1.number_input("Trials", min_value=1, value=10, key="sweep_trials")
        epochs = c2.number_input("Epochs per trial", min_value=1, value=3, key="sweep_epochs")
        submitted = st.form_submit_button("Start sweep")
    if not submitted:
        return
    with guarded():
        form = SpaceForm(
            lr_low=float(lr_low) if search_lr else None,
            lr_high=float(lr_high) if search_lr else None,
            lr_log=lr_log,
            batch_sizes=batch_sizes,
            backbones=backbones,
            decoders=decoders,
            lora_ranks=lora,
            search_freeze_backbone=freeze_backbone,
            search_freeze_decoder=freeze_decoder,
        )
        space = form.space()
        if show_check(config, ctx.settings.allowed_roots):
            run = submit_sweep(
                ctx.runner,
                config,
                space,
                int(trials),
                f"sweep-{name}",
                max_epochs=int(epochs),
                dataset_root=st.session_state.get("geoft_config_dataset"),
            )
            st.session_state["geoft_current_run"] = run.id
            st.session_state["train_run_select"] = run.id
            st.toast(f"Sweep {run.id} is {run.status}")


def sweep_view(ctx: AppContext, run: RunRecord) -> None:
    """Trials table, parallel coordinates and the best config, with a button to train it in full."""
    results = load_results(run)
    if not results.trials:
        st.caption("No trials yet: the sweep starts them one after another once its job runs.")
        return
    best = results.best
    goal = "lowest" if results.direction == "minimize" else "highest"
    st.markdown(f"**{len(results.trials)} trials** · objective: the checkpoint monitor, {goal} is best")
    st.dataframe(results.frame(), hide_index=True, key="sweep_trials_table")
    frame = parallel_frame(results)
    if len(frame):
        st.altair_chart(parallel_chart(frame), width="stretch")
    if best is None:
        st.caption("No trial has completed yet, so there is no best config.")
        return
    values = ", ".join(
        f"{short_name(k)} = {v:.4g}" if isinstance(v, float) else f"{short_name(k)} = {v}"
        for k, v in best.params.items()
    )
    st.markdown(f"**Best: trial {best.number}**, objective {best.value:.4g} ({values})")
    config = best_config(run, results)
    with st.expander("The best config"):
        st.code(yaml.safe_dump(config, sort_keys=False), language="yaml")
    if st.button("Train the best config", type="primary", key="sweep_train_best"):
        with guarded():
            root = run_dataset_root(run)
            full = ctx.runner.submit(config, f"{run.name}-best", dataset_root=str(root) if root else None)
            st.session_state["geoft_current_run"] = full.id
            st.success(f"Queued the full run {full.id} ({full.status}).")
