"""The app's pages, in one list: the entry script registers them, and every page draws the same sidebar.

Streamlit's own sidebar list is switched off (``client.showSidebarNavigation = false``): with a
``pages/`` folder beside the entry script it sometimes showed its automatic list ("app", ..., "home")
instead of the registered one, depending on how a page was reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class AppPage:
    path: str
    title: str
    icon: str
    url_path: str | None = None  # None: the default page, at "/"


PAGES: tuple[AppPage, ...] = (
    AppPage("pages/home.py", "Home", ":material/home:"),
    AppPage("pages/1_Data.py", "Data", ":material/folder_open:", "Data"),
    AppPage("pages/2_Model.py", "Model", ":material/model_training:", "Model"),
    AppPage("pages/3_Train.py", "Train", ":material/play_circle:", "Train"),
    AppPage("pages/4_Runs.py", "Runs", ":material/monitoring:", "Runs"),
    AppPage("pages/5_Predict.py", "Predict / Map", ":material/map:", "Predict"),
)


def registered_pages() -> list[st.Page]:
    """The pages for ``st.navigation`` in the entry script."""
    return [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.url_path is None)
        for p in PAGES
    ]


def draw_sidebar() -> None:
    """Links to every page, Home first, the same on every page."""
    for page in PAGES:
        try:
            st.sidebar.page_link(page.path, label=page.title, icon=page.icon)
        except st.errors.StreamlitAPIException:  # a page run on its own (tests): no registered pages
            return
