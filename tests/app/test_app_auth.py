"""Authentication: which login is required (env/secrets password, OIDC [auth]), the gates, the warning."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from geoft.app.auth import authlib_available, oidc_problems, oidc_providers, resolve_auth

REPO = Path(__file__).resolve().parents[2]
AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

OIDC = {
    "redirect_uri": "https://geoft.example.org/oauth2callback",
    "cookie_secret": "x" * 40,
    "client_id": "geoft",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration",
}
PAGES = [
    "app.py",
    "pages/1_Data.py",
    "pages/2_Model.py",
    "pages/3_Train.py",
    "pages/4_Runs.py",
    "pages/5_Predict.py",
]


# ---- the decision, without Streamlit ----


def test_resolve_auth_modes_and_precedence():
    assert resolve_auth(None, {}).mode == "none"
    assert not resolve_auth(None, {}).configured
    assert resolve_auth("env-pw", {}).password == "env-pw"
    from_secrets = resolve_auth(None, {"GEOFT_APP_PASSWORD": "file-pw"})
    assert (from_secrets.mode, from_secrets.password) == ("password", "file-pw")
    assert resolve_auth("env-pw", {"GEOFT_APP_PASSWORD": "file-pw"}).password == "env-pw"  # env wins
    assert resolve_auth(None, {"GEOFT_APP_PASSWORD": ""}).mode == "none"
    both = resolve_auth("env-pw", {"auth": OIDC})
    assert both.mode == "oidc" and both.configured  # OIDC wins over a password
    # An incomplete [auth] section still means "OIDC intended": the gate must refuse, not fall open.
    assert resolve_auth(None, {"auth": {}}).mode == "oidc"
    assert resolve_auth(None, {"auth": "oops"}).mode == "oidc"


def test_oidc_providers_and_problems():
    assert oidc_providers(OIDC) == ("default",)
    named = {
        "redirect_uri": OIDC["redirect_uri"],
        "cookie_secret": OIDC["cookie_secret"],
        "client_kwargs": {"prompt": "login"},  # a table, but not a provider
        "google": {k: OIDC[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "corp": {"client_id": "geoft"},
    }
    assert oidc_providers(named) == ("corp", "google")
    assert oidc_problems(OIDC) == []
    problems = oidc_problems(named)
    assert problems == [
        "`client_secret` is missing in [auth.corp]",
        "`server_metadata_url` is missing in [auth.corp]",
    ]
    assert "`cookie_secret` is missing" in oidc_problems(
        {k: v for k, v in OIDC.items() if k != "cookie_secret"}
    )
    assert any("/oauth2callback" in p for p in oidc_problems({**OIDC, "redirect_uri": "https://h/cb"}))
    assert any("no provider" in p for p in oidc_problems({"redirect_uri": "x", "cookie_secret": "y"}))
    assert any("'_'" in p for p in oidc_problems({**named, "my_idp": {"client_id": "a"}}))


def test_authlib_detection_follows_the_import(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("authlib")
    assert authlib_available()
    monkeypatch.setitem(sys.modules, "authlib", None)  # makes `import authlib` fail, as when not installed
    assert not authlib_available()


# ---- the gates, in the app (AppTest) ----


@pytest.fixture
def exposed() -> Iterator[None]:
    from streamlit import config

    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", old)


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real secrets.toml that Streamlit's own loader reads (not AppTest's in-memory secrets)."""
    from streamlit import config
    from streamlit.runtime.secrets import secrets_singleton

    path = tmp_path / "secrets.toml"
    old = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    secrets_singleton._reset()
    monkeypatch.setattr(secrets_singleton, "_file_watchers_installed", True)  # no poll threads in tests
    yield path
    secrets_singleton._reset()  # also removes the env vars Streamlit exported from the file
    config.set_option("secrets.files", old)


def app(page: str = "app.py", secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / page), default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    if user is not None:
        at.user = user
    return at.run()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def assert_gate_opens_with(at: AppTest, password: str) -> None:
    """The page is gated until ``password`` is entered, and no exposure warning shows either way."""
    assert "Run the demo" not in labels(at)
    at.text_input(key="geoft_login_password").input(password)
    at.text_input(key="geoft_login_name").input("alice")
    at.button[0].click().run()
    assert "Run the demo" in labels(at)
    assert "Logged in as **alice**" in texts(at, "caption")
    assert "reachable from other machines" not in texts(at, "warning")


def test_password_in_secrets_gates_and_silences_the_warning(home: Path, exposed: None):
    at = app(secrets={"GEOFT_APP_PASSWORD": "from-secrets"})
    assert not at.exception
    assert "reachable from other machines" not in texts(at, "warning")
    assert_gate_opens_with(at, "from-secrets")
    # Same exposed server, nothing configured: the loud warning.
    assert "reachable from other machines" in texts(app(), "warning")


def test_password_in_a_real_secrets_file(home: Path, exposed: None, secrets_file: Path):
    secrets_file.write_text('GEOFT_APP_PASSWORD = "file-pw"\n')
    at = app()
    assert not at.exception
    assert "reachable from other machines" not in texts(at, "warning")
    assert_gate_opens_with(at, "file-pw")


def test_unreadable_secrets_file_stops_every_page(home: Path, secrets_file: Path):
    secrets_file.write_text("[auth\nredirect_uri = ")  # broken TOML: must not fall open
    at = app()
    assert not at.exception
    assert "cannot read Streamlit secrets" in texts(at, "error")
    assert "Run the demo" not in labels(at)


@pytest.mark.parametrize("page", PAGES)
def test_oidc_gates_every_page(home: Path, page: str):
    pytest.importorskip("authlib")
    at = app(page, secrets={"auth": OIDC, "GEOFT_APP_PASSWORD": "ignored"})
    assert not at.exception
    assert labels(at) == ["Log in"]  # only the login button: no page content, no password form
    assert len(at.text_input) == 0
    assert not texts(at, "error")


def test_oidc_logged_in_user_sees_the_app_and_can_log_out(home: Path, exposed: None):
    pytest.importorskip("authlib")
    at = app(secrets={"auth": OIDC}, user={"is_logged_in": True, "email": "ana@example.org"})
    assert not at.exception
    assert "Run the demo" in labels(at)
    assert "ana@example.org" in "\n".join(str(c.value) for c in at.sidebar.caption)
    assert "reachable from other machines" not in texts(at, "warning")
    at.sidebar.button[0].click().run()  # Log out: st.logout() clears st.user for this session
    assert at.user.get("is_logged_in") is False
    assert "Run the demo" not in labels(at)  # the page stops; the browser follows the logout redirect
    assert labels(at.run()) == ["Log in"]


def test_oidc_named_providers_get_one_button_each(home: Path):
    pytest.importorskip("authlib")
    section = {
        "redirect_uri": OIDC["redirect_uri"],
        "cookie_secret": OIDC["cookie_secret"],
        "google": {k: OIDC[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "okta": {k: OIDC[k] for k in ("client_id", "client_secret", "server_metadata_url")},
    }
    assert labels(app(secrets={"auth": section})) == ["Log in with google", "Log in with okta"]


def test_oidc_login_click_is_accepted_by_streamlit(home: Path, secrets_file: Path):
    """With a real secrets file, st.login validates the config itself; no error reaches the page."""
    pytest.importorskip("authlib")
    secrets_file.write_text("[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in OIDC.items()))
    at = app()
    assert labels(at) == ["Log in"]
    at.button[0].click().run()
    assert not at.exception
    assert not texts(at, "error")
    assert "Run the demo" not in labels(at)  # still gated until the identity provider answers


def test_oidc_without_authlib_says_what_to_install(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "authlib", None)
    at = app(secrets={"auth": OIDC})
    assert not at.exception
    assert "Authlib" in texts(at, "error") and "geoft[oidc]" in texts(at, "error")
    assert labels(at) == []  # fails closed: no login button, no page


def test_incomplete_oidc_config_fails_closed(home: Path, exposed: None):
    at = app(secrets={"auth": {"client_id": "geoft", "GEOFT": 1}, "GEOFT_APP_PASSWORD": "pw"})
    assert not at.exception
    errors = texts(at, "error")
    assert "`redirect_uri` is missing" in errors and "`client_secret` is missing in [auth]" in errors
    assert labels(at) == [] and len(at.text_input) == 0


def test_login_throttle_locks_a_client_out_after_repeated_failures() -> None:
    from geoft.app.auth import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(max_failures=3, window_s=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.attempt("10.0.0.7", "guess", "s3cret") is False
    # locked: even the right password is refused, with the seconds to wait
    wait = throttle.attempt("10.0.0.7", "s3cret", "s3cret")
    assert wait is not True and wait is not False and 59.0 <= wait <= 60.0
    assert throttle.attempt("10.0.0.8", "s3cret", "s3cret") is True  # other clients are not affected
    now[0] += 61.0
    assert throttle.attempt("10.0.0.7", "s3cret", "s3cret") is True
    # a success forgets earlier failures
    assert throttle.attempt("10.0.0.7", "x", "s3cret") is False
    assert throttle.attempt("10.0.0.7", "s3cret", "s3cret") is True
    assert throttle.retry_after("10.0.0.7") == 0.0


def test_password_page_refuses_after_too_many_wrong_passwords(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from geoft.app.ui import _login_throttle

    monkeypatch.setenv("GEOFT_APP_PASSWORD", "s3cret")
    _login_throttle.clear()
    try:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        at.text_input(key="geoft_login_name").input("mallory")
        for _ in range(5):
            at.text_input(key="geoft_login_password").input("wrong")
            at.button[0].click().run()
        at.text_input(key="geoft_login_password").input("s3cret")
        at.button[0].click().run()
        errors = " ".join(e.value for e in at.error)
        assert "Too many wrong passwords" in errors
        assert not any(b.label == "Run the demo" for b in at.button)
    finally:
        _login_throttle.clear()
