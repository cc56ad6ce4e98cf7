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
    url_path: str | None = None  # None: the default page, at "/"


PAGES: tuple[AppPage, ...] = (
    AppPage("pages/home.py", "Home"),
    AppPage("pages/1_Data.py", "Data", "Data"),
    AppPage("pages/2_Model.py", "Model", "Model"),
    AppPage("pages/3_Train.py", "Train", "Train"),
    AppPage("pages/4_Runs.py", "Runs", "Runs"),
    AppPage("pages/5_Predict.py", "Predict / Map", "Predict"),
    AppPage("pages/6_Similar.py", "Similar chips", "Similar"),
    AppPage("pages/7_Teach.py", "Teach by drawing", "Teach"),
)


def registered_pages() -> list[st.Page]:
    """The pages for ``st.navigation`` in the entry script."""
    return [
        # no icons: Streamlit shows a page's icon as the tab's favicon, and fetches Material icons for it
        # from Google's font servers (an external request)
        st.Page(p.path, title=p.title, url_path=p.url_path, default=p.url_path is None)
        for p in PAGES
    ]


def draw_sidebar() -> None:
    """Links to every page, Home first, the same on every page."""
    for page in PAGES:
        try:
            st.sidebar.page_link(page.path, label=page.title)
        except st.errors.StreamlitAPIException:  # a page run on its own (tests): no registered pages
            return
