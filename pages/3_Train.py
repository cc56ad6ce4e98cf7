"""Train: start, stop and resume jobs and sweeps; live curves, progress with ETA, and the log."""

import streamlit as st

from geoft.app.cost_estimate import estimate, with_training_choices
from geoft.app.forms import available_accelerators, best_precision, config_from_yaml, config_to_yaml
from geoft.app.run_store import ACTIVE_STATUSES
from geoft.app.sweep_panel import sweep_form
from geoft.app.ui import guarded, setup_page, upload_limit_caption
from geoft.app.widgets import run_panel, show_check

ctx = setup_page("Train")
st.title("Train")

config = st.session_state.get("geoft_config")
with st.expander("Configuration", expanded=config is None):
    uploaded = st.file_uploader("Upload a config (YAML)", type=["yaml", "yml"], key="train_cfg_upload")
    upload_limit_caption()
    if uploaded is not None:
        with guarded():
            candidate = config_from_yaml(uploaded.getvalue())
            if show_check(candidate, ctx.settings.allowed_roots):
                config = candidate
                st.session_state["geoft_config"] = config
                st.session_state.pop("geoft_config_dataset", None)
                st.success("Config checked and loaded.")
    if config is None:
        st.info(
            "No configuration yet: build one on the **Model** page, upload a YAML file, or run the demo on the home page."
        )
    else:
        st.code(config_to_yaml(config), language="yaml")

if config is not None:
    trainer = config.setdefault("trainer", {})
    c1, c2, c3, c4 = st.columns(4)
    accelerators = available_accelerators()
    current = "cuda" if str(trainer.get("accelerator", "cpu")) in ("gpu", "cuda") else "cpu"
    accel = c1.selectbox(
        "Device", accelerators, index=accelerators.index(current) if current in accelerators else 0
    )
    epochs = c2.number_input("Epochs", min_value=1, value=int(trainer.get("max_epochs") or 3))
    batch = c3.number_input(
        "Batch size",
        min_value=1,
        value=int(((config.get("data") or {}).get("init_args") or {}).get("batch_size", 4)),
    )
    precisions = ["32-true", "bf16-mixed", "16-mixed"]
    default_precision = trainer.get("precision") or best_precision(accel)
    precision = c4.selectbox(
        "Precision",
        precisions,
        index=precisions.index(default_precision) if default_precision in precisions else 0,
        help="bf16 where the hardware has it (recent NVIDIA GPUs); full precision on CPU.",
    )
    name = st.text_input("Run name", value=st.session_state.get("geoft_run_name", "my-run"))
    start, measure = st.columns([1, 2])
    if start.button("Start training", type="primary"):
        with guarded():
            trainer.update(accelerator=accel, max_epochs=int(epochs), precision=precision)
            config.setdefault("data", {}).setdefault("init_args", {})["batch_size"] = int(batch)
            if show_check(
                config, ctx.settings.allowed_roots
            ):  # nothing is queued that `geoft fit` would refuse
                run = ctx.runner.submit(
                    config, name, dataset_root=st.session_state.get("geoft_config_dataset")
                )
                st.session_state["geoft_current_run"] = run.id
                st.session_state["train_run_select"] = run.id  # follow the new run, not the previous one
                st.toast(f"Run {run.id} is {run.status}")
    if measure.button("Estimate memory and time (one real step on your data)", key="train_estimate"):
        with guarded():
            chosen = with_training_choices(config, accel, int(epochs), int(batch), precision)
            if show_check(chosen, ctx.settings.allowed_roots):
                with st.spinner("Running one training step on a batch of your data..."):
                    cost = estimate(chosen)
                st.info(
                    f"{cost.summary()}. {int(epochs)} epochs: about {cost.epoch_s * int(epochs) / 60:.1f} min."
                )

    with st.expander("Sweep: search hyperparameters with Optuna, each trial a run of this config"):
        st.caption(
            "One queued job runs the trials one after another on the device above; the best config is "
            "one click from a full run on the **Runs** page (docs/sweeps.md)."
        )
        sweep_form(ctx, with_training_choices(config, accel, int(epochs), int(batch), precision), name)

st.divider()
active = ctx.store.list(status=ACTIVE_STATUSES)
mine = st.session_state.get("geoft_current_run")
choices = [r.id for r in active]
if mine and mine not in choices:
    choices.insert(0, mine)
recent = [r.id for r in ctx.store.list()[:10] if r.id not in choices]
choices += recent
if not choices:
    st.caption("No runs yet.")
else:
    names = {r.id: r.name for r in ctx.store.list() if r.id in choices}
    if st.session_state.get("train_run_select") not in choices:
        st.session_state.pop("train_run_select", None)
    # the label names the run only: its status changes while the page stays, and is shown live below
    selected = st.selectbox(
        "Run", choices, format_func=lambda i: f"{names.get(i, i)} · {i}", key="train_run_select"
    )

    follow = any(r.id == selected for r in active)  # redraw live only while the run may change

    @st.fragment(run_every=2.0 if follow else None)
    def live(run_id: str) -> None:
        run = None
        with guarded():
            run = run_panel(ctx, run_id, key="train")
        if follow and run is not None and not run.is_active:
            st.rerun(scope="app")  # finished: redraw once without the timer (charts stay drawn)

    live(selected)
