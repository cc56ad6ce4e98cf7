"""geoft web app: ``streamlit run app.py``. The pages are listed in ``geoft.app.navigation``; each is a
script in ``pages/``."""

import streamlit as st

from geoft.app.navigation import registered_pages

st.set_page_config(page_title="geoft", layout="wide")
st.navigation(registered_pages(), position="hidden").run()
