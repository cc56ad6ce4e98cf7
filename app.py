"""geoft web app entry point: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="geoft", layout="wide")
st.title("geoft")
st.write("Fine-tune geospatial foundation models on your own satellite imagery.")
