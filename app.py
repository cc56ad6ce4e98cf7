"""geoft web app: ``streamlit run app.py``. The page list (sidebar); each page is a script in ``pages/``."""

import streamlit as st

st.set_page_config(page_title="geoft", layout="wide")
navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/1_Data.py", title="Data", icon=":material/folder_open:", url_path="Data"),
        st.Page("pages/2_Model.py", title="Model", icon=":material/model_training:", url_path="Model"),
        st.Page("pages/3_Train.py", title="Train", icon=":material/play_circle:", url_path="Train"),
        st.Page("pages/4_Runs.py", title="Runs", icon=":material/monitoring:", url_path="Runs"),
        st.Page("pages/5_Predict.py", title="Predict / Map", icon=":material/map:", url_path="Predict"),
    ]
)
navigation.run()
