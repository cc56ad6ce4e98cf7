"""Home page: what geoft is, the one-click demo and links to the steps (``streamlit run app.py``)."""

import streamlit as st

from geoft.app.progress import format_duration
from geoft.app.ui import guarded, leaflet_urls, setup_page
from geoft.app.widgets import run_panel, show_map

ctx = setup_page("Home")

st.title("geoft")
st.write(
    "Fine-tune geospatial foundation models (Prithvi and friends) on your own satellite imagery. "
    "Everything runs on this machine, offline."
)

st.subheader("Try it: the demo")
st.write(
    "One click generates a small synthetic 6-band dataset, configures **Prithvi tiny + UPerNet**, trains it "
    "in the background and shows its predictions on the map. No path to type, nothing to download."
)

from geoft.app import demo  # noqa: E402

estimate = demo.estimated_seconds(ctx.settings)
if st.button(
    "Run the demo",
    type="primary",
    key="demo_start",
    help=f"{ctx.settings.demo_chips} chips × {ctx.settings.demo_epochs} epochs",
):
    with guarded(), st.spinner("Generating the demo dataset..."):
        run = demo.start_demo(ctx.settings, ctx.runner)
        st.session_state["geoft_demo_run"] = run.id

st.caption(
    f"Takes about {format_duration(estimate)} from the click to the map on 2 CPU cores "
    f"({ctx.settings.demo_chips} chips of {ctx.settings.demo_size}×{ctx.settings.demo_size} px, "
    f"{ctx.settings.demo_epochs} epochs); longer while other jobs share the machine."
)
demo_runs = ctx.store.list(tag="demo")
demo_run_id = st.session_state.get("geoft_demo_run") or (demo_runs[0].id if demo_runs else None)


@st.fragment(run_every=2.0)
def demo_progress(run_id: str) -> None:
    with guarded():
        run = run_panel(ctx, run_id, key="home")
        if run.status == "completed":
            if st.session_state.get("geoft_demo_shown") != run_id:
                st.session_state["geoft_demo_shown"] = run_id
                st.rerun(scope="app")  # leave the live fragment; show the map below


if demo_run_id:
    try:
        current = ctx.store.get(demo_run_id)
    except Exception:
        current = None
    if current is not None and current.is_active:
        demo_progress(demo_run_id)
    elif current is not None:
        with guarded():
            run_panel(ctx, demo_run_id, key="home-done")
        if current.status == "completed":
            st.subheader("Demo predictions")
            with guarded(), st.spinner("Predicting a demo scene..."):
                result = demo.demo_prediction(ctx.settings, current)
                opacity = st.slider("Prediction opacity", 0.0, 1.0, 0.6, 0.05, key="demo_opacity")
                js, css = leaflet_urls()
                show_map(demo.demo_map(result, js, css, opacity, ctx.settings.map_tiles), key="demo_map")
                st.caption(
                    "Switch layers (image, ground truth, prediction) with the control at the top right."
                )

st.divider()
st.subheader("Your own data")
cols = st.columns(5)
cols[0].page_link("pages/1_Data.py", label="1 · Data")
cols[1].page_link("pages/2_Model.py", label="2 · Model")
cols[2].page_link("pages/3_Train.py", label="3 · Train")
cols[3].page_link("pages/4_Runs.py", label="4 · Runs")
cols[4].page_link("pages/5_Predict.py", label="5 · Predict / Map")
more = st.columns(5)
more[0].page_link("pages/6_Similar.py", label="Similar chips (embeddings)")
more[1].page_link("pages/7_Teach.py", label="Teach by drawing on a scene")
