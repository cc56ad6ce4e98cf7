"""Streamlit glue shared by every page: setup, password gate, error display, the queue runner."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from geoft.app.auth import is_local_address, password_matches
from geoft.app.jobs import JobRunner
from geoft.app.run_store import RunStore
from geoft.app.settings import AppSettings, load_settings
from geoft.errors import GeoftError

APP_DIR = Path(__file__).resolve().parents[2]


@dataclass
class AppContext:
    """What a page needs: settings, the run store and the job runner."""

    settings: AppSettings
    store: RunStore
    runner: JobRunner


def show_error(err: BaseException) -> None:
    """A GeoftError as its message (and hint); anything else as a short line plus details."""
    if isinstance(err, GeoftError):
        st.error(err.message + (f"\n\n**What to do:** {err.hint}" if err.hint else ""), icon="⚠️")
        return
    st.error(f"Something unexpected went wrong: {type(err).__name__}: {str(err)[:300]}", icon="🛑")
    with st.expander("Details (for a bug report)"):
        st.code("".join(traceback.format_exception(err)), language="text")


@contextmanager
def guarded() -> Iterator[None]:
    """Show errors raised inside the block instead of a traceback; the page goes on."""
    try:
        yield
    except Exception as err:  # Streamlit's stop/rerun are BaseException and pass through
        show_error(err)


def _password_gate(settings: AppSettings) -> None:
    password = settings.password
    if password is None:
        try:
            password = st.secrets.get("GEOFT_APP_PASSWORD")  # type: ignore[assignment]
        except Exception:  # no secrets file: no password
            password = None
    if not password or st.session_state.get("geoft_authenticated"):
        return
    st.title("geoft")
    with st.form("login"):
        given = st.text_input("Password", type="password")
        if st.form_submit_button("Log in"):
            if password_matches(given, str(password)):
                st.session_state["geoft_authenticated"] = True
                st.rerun()
            st.error("Wrong password.")
    st.stop()


def _exposure_warning(settings: AppSettings) -> None:
    if settings.password:
        return
    address = st.get_option("server.address")
    if not is_local_address(address):
        st.warning(
            f"**This app is reachable from other machines** (server.address={address or 'all interfaces'!r}) "
            "and has no password: anyone who can reach it can read your data folders and start jobs. "
            "Set GEOFT_APP_PASSWORD, or run with `--server.address localhost`.",
            icon="🔓",
        )


def setup_page(title: str) -> AppContext:
    """Common start of every page. Never raises: configuration problems stop the page with a message."""
    try:
        st.set_page_config(page_title=f"geoft · {title}", layout="wide")
    except st.errors.StreamlitAPIException:  # already set by the entry script
        pass
    try:
        settings = load_settings()
        settings.ensure_dirs()
    except (GeoftError, OSError) as err:
        show_error(
            err if isinstance(err, GeoftError) else GeoftError(f"cannot create the app folders: {err}")
        )
        st.stop()
    _password_gate(settings)
    _exposure_warning(settings)
    _install_static_assets()
    store = RunStore(settings.store_path)
    runner = JobRunner(store, settings.runs_root)
    with guarded():
        runner.dispatch()  # whichever session finds a device free starts the next queued job
    return AppContext(settings=settings, store=store, runner=runner)


@st.cache_resource(show_spinner=False)
def _install_static_assets() -> str:
    from geoft.app.maps import install_leaflet

    return str(install_leaflet(APP_DIR / "static"))


def leaflet_urls() -> tuple[str, str]:
    from geoft.app.maps import leaflet_urls as urls

    return urls(st.get_option("server.baseUrlPath") or "")
