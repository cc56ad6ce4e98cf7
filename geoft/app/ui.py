"""Streamlit glue shared by every page: setup, login gate (OIDC/password), errors, the queue runner."""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import streamlit as st

from geoft.app.auth import (
    AuthSettings,
    LoginThrottle,
    authlib_available,
    clean_user_name,
    is_local_address,
    oidc_identity,
    oidc_problems,
    resolve_auth,
)
from geoft.app.jobs import JobRunner
from geoft.app.navigation import draw_sidebar
from geoft.app.owners import Actor
from geoft.app.run_store import RunStore
from geoft.app.settings import AppSettings, load_settings
from geoft.errors import ConfigError, GeoftError

if TYPE_CHECKING:
    from geoft.app.raster_layers import TileSource

APP_DIR = Path(__file__).resolve().parents[2]


@dataclass
class AppContext:
    """What a page needs: settings, the run store, the job runner and who is logged in."""

    settings: AppSettings
    store: RunStore
    runner: JobRunner

    @property
    def actor(self) -> Actor:
        return self.runner.actor


def escape_markdown(text: str) -> str:
    """``text`` shown literally by st.markdown/st.error (``'*.tif'`` stays ``'*.tif'``); spans in
    backticks are left alone, they are code already."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = re.sub(r"([\\*_~$])", r"\\\1", parts[i])  # emphasis, strike-through, LaTeX
    return "`".join(parts)


def show_error(err: BaseException) -> None:
    """A GeoftError as its message (and hint); anything else as a short line plus details."""
    if isinstance(err, GeoftError):
        hint = f"\n\n**What to do:** {escape_markdown(err.hint)}" if err.hint else ""
        st.error(escape_markdown(err.message) + hint, icon=":material/warning:")
        return
    st.error(
        escape_markdown(f"Something unexpected went wrong: {type(err).__name__}: {str(err)[:300]}"),
        icon=":material/error:",
    )
    with st.expander("Details (for a bug report)"):
        st.code("".join(traceback.format_exception(err)), language="text")


def stop_with(err: BaseException) -> NoReturn:
    """Show ``err`` (as :func:`show_error`) and stop the page there."""
    show_error(err)
    st.stop()
    raise AssertionError("unreachable: st.stop() raises")


@contextmanager
def guarded() -> Iterator[None]:
    """Show errors raised inside the block instead of a traceback; the page goes on."""
    try:
        yield
    except Exception as err:  # Streamlit's stop/rerun are BaseException and pass through
        show_error(err)


def _read_secrets() -> Mapping[str, Any]:
    """Streamlit secrets as a dict; {} when there is no secrets file. A broken file stops the page."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError as err:  # StreamlitSecretNotFoundError: missing *or* unparsable
        if getattr(err, "error_id", None) == "no-secrets-found":
            return {}
        # Never fall open: a secrets file we cannot read may be the one that holds the login.
        stop_with(
            ConfigError(
                f"cannot read Streamlit secrets: {err}",
                hint="fix the TOML syntax of .streamlit/secrets.toml (or the file named by secrets.files).",
            )
        )


def _oidc_gate(auth: AuthSettings) -> str:
    """Require ``st.login`` (OIDC) before the page; show who is logged in, with a logout button.
    Returns the user's identity (:func:`oidc_identity`)."""
    section = auth.oidc_section or {}
    problems = oidc_problems(section)
    if problems:
        stop_with(
            ConfigError(
                "single sign-on is configured ([auth] in .streamlit/secrets.toml) but incomplete: "
                + "; ".join(problems)
                + ".",
                hint="see docs/security.md (OIDC). Until it is fixed no page is shown.",
            )
        )
    if not (hasattr(st, "login") and hasattr(st, "user")):
        stop_with(
            ConfigError(
                "single sign-on ([auth] in .streamlit/secrets.toml) needs a Streamlit with st.login and "
                f"st.user; this is Streamlit {st.__version__}.",
                hint="upgrade Streamlit in the app's environment, or remove the [auth] section.",
            )
        )
    if not authlib_available():
        stop_with(
            ConfigError(
                "single sign-on is configured ([auth] in .streamlit/secrets.toml) but the Authlib "
                "package (>= 1.3.2), which Streamlit's st.login needs, is not installed.",
                hint="install it in the app's environment: `pip install 'geoft[oidc]'` "
                "(or `pip install 'Authlib>=1.3.2'`), then restart the app.",
            )
        )
    user = dict(st.user)  # a Mapping; attribute access would raise when a key is absent
    if user.get("is_logged_in"):
        who = oidc_identity(user)
        if who is None:  # never a shared "unknown" identity: it would own everyone's runs
            stop_with(
                ConfigError(
                    "the identity provider sent no email, name or subject for this login, so the app "
                    "cannot tell whose runs are whose.",
                    hint="let the provider release the `email` (or `profile`) claim to this client.",
                )
            )
        st.sidebar.caption(f"Logged in as **{escape_markdown(who)}**")
        if st.sidebar.button("Log out", key="geoft_logout"):
            st.logout()
            # Not st.rerun(): it could drop the queued logout redirect before it reaches the browser.
            st.stop()
        return who
    st.title("geoft")
    st.write("Log in to use this app.")
    for provider in auth.oidc_providers:
        label = "Log in" if provider == "default" else f"Log in with {provider}"
        if st.button(label, key=f"geoft_login_{provider}", type="primary"):
            with guarded():
                st.login(provider)
    st.stop()


def _password_gate(auth: AuthSettings) -> str:
    """Require the shared password and a name (what this user's runs are recorded under); return the name."""
    password = auth.password or ""
    if st.session_state.get("geoft_authenticated") and st.session_state.get("geoft_user"):
        who = str(st.session_state["geoft_user"])
        st.sidebar.caption(f"Logged in as **{escape_markdown(who)}**")
        return who
    st.title("geoft")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="geoft_login_password")
        typed_name = st.text_input(
            "Your name",
            key="geoft_login_name",
            help="Runs you start are recorded under this name; only you (or an admin) may stop or delete them.",
        )
        if st.form_submit_button("Log in"):
            name = clean_user_name(typed_name)
            outcome = _login_throttle().attempt(st.context.ip_address, given, password)
            if outcome is True and name is None:
                st.error("Type your name (at most 80 characters): runs you start are recorded under it.")
            elif outcome is True:
                st.session_state["geoft_authenticated"] = True
                st.session_state["geoft_user"] = name
                st.rerun()
            elif outcome is False:
                st.error("Wrong password.")
            else:
                st.error(f"Too many wrong passwords. Try again in {outcome:.0f} s.")
    st.stop()


@st.cache_resource
def _login_throttle() -> LoginThrottle:
    """One rate limit for the whole server process, shared by every session."""
    return LoginThrottle()


def _auth_gate(auth: AuthSettings) -> str | None:
    """OIDC when an [auth] section exists (it wins over a password), else the password, else nothing.
    Returns who is logged in (None without login: single-user mode)."""
    if auth.mode == "oidc":
        return _oidc_gate(auth)
    if auth.mode == "password":
        return _password_gate(auth)
    return None


def _exposure_warning(auth: AuthSettings) -> None:
    if auth.configured:
        return
    address = st.get_option("server.address")
    if not is_local_address(address):
        st.warning(
            f"**This app is reachable from other machines** (server.address={address or 'all interfaces'!r}) "
            "and has no login: anyone who can reach it can read your data folders and start jobs. "
            "Set GEOFT_APP_PASSWORD (environment or .streamlit/secrets.toml), configure single sign-on "
            "([auth] in secrets.toml, see docs/security.md), or run with `--server.address localhost`.",
            icon=":material/lock_open:",
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
        stop_with(err if isinstance(err, GeoftError) else GeoftError(f"cannot create the app folders: {err}"))
    auth = resolve_auth(settings.password, _read_secrets())
    user = _auth_gate(auth)
    draw_sidebar()
    _exposure_warning(auth)
    _install_static_assets()
    _restore_dataset(settings)
    store = RunStore(settings.store_path)
    runner = JobRunner(
        store,
        settings.runs_root,
        actor=Actor.of(user, settings.admins),
        max_jobs_per_user=settings.max_jobs_per_user,
    )
    with guarded():
        runner.dispatch()  # whichever session finds a device free starts the next queued job
    return AppContext(settings=settings, store=store, runner=runner)


def upload_limit_caption(instead: str = "") -> None:
    """Say, next to an uploader, how large one upload may be (``server.maxUploadSize``)."""
    from geoft.app.uploads import upload_limit_text

    st.caption(upload_limit_text(int(st.get_option("server.maxUploadSize")), instead))


def _last_dataset_file(settings: AppSettings) -> Path:
    return settings.home / "last_dataset.txt"


def remember_dataset(settings: AppSettings, path: Path) -> None:
    """Make ``path`` the chosen dataset of this session, and the default after a restart."""
    st.session_state["geoft_dataset"] = str(path)
    st.session_state.pop("geoft_summary", None)
    for key in [k for k in st.session_state if str(k).startswith("model_")]:
        del st.session_state[key]  # class names, bands... of the previous dataset
    _last_dataset_file(settings).write_text(str(path))


def _restore_dataset(settings: AppSettings) -> None:
    if st.session_state.get("geoft_dataset"):
        return
    try:
        path = Path(_last_dataset_file(settings).read_text().strip())
    except OSError:
        return
    if path.is_dir() and any(root == path or root in path.parents for root in settings.data_roots):
        st.session_state["geoft_dataset"] = str(path)


@st.cache_resource(show_spinner=False)
def _install_static_assets() -> str:
    from geoft.app.maps import install_leaflet
    from geoft.app.raster_layers import TILES_DIR, prune_tile_cache
    from geoft.app.scene_map import install_side_by_side

    install_side_by_side(APP_DIR / "static")
    prune_tile_cache(APP_DIR / "static" / TILES_DIR)  # pyramids of deleted or rewritten rasters
    return str(install_leaflet(APP_DIR / "static"))


def tile_source() -> TileSource:
    """Where the Predict page writes map tiles (``static/tiles``) and the URL they are served at."""
    from geoft.app.raster_layers import TileSource, static_url_prefix

    return TileSource(APP_DIR / "static", static_url_prefix(st.get_option("server.baseUrlPath") or ""))


def leaflet_urls() -> tuple[str, str]:
    from geoft.app.maps import leaflet_urls as urls

    return urls(st.get_option("server.baseUrlPath") or "")
