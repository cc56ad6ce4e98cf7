"""Which login the app requires (OIDC, shared password, none) and the 'exposed without auth' check.

No Streamlit import here: the decisions are plain functions, tested without a server.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a typed password with the configured one."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _client_key(client: object) -> str:
    """The throttle's key: the client's address, or one shared key when it is unknown (not a string)."""
    return client if isinstance(client, str) and client else "unknown"


class LoginThrottle:
    """Rate limit for password attempts, per client (its IP address, or one shared key when unknown).

    After ``max_failures`` wrong passwords within ``window_s`` seconds, that client's next attempts are
    refused, without comparing the password, until the oldest of those failures is ``window_s`` old.
    One instance serves the whole server process (every session); it is thread-safe.
    """

    def __init__(
        self, max_failures: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures, self.window_s, self._clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, client: object) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            failures = self._recent(_client_key(client), now)
            if len(failures) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - failures[0]))

    def attempt(self, client: object, given: str, expected: str) -> bool | float:
        """``True`` for the right password; ``False`` for a wrong one (counted); or, while the client is
        locked out, the seconds to wait (nothing compared, nothing counted)."""
        wait = self.retry_after(client)
        if wait > 0:
            return wait
        if password_matches(given, expected):
            with self._lock:
                self._failures.pop(_client_key(client), None)
            return True
        with self._lock:
            self._recent(_client_key(client), self._clock()).append(self._clock())
        return False


MAX_USER_NAME = 80


def clean_user_name(raw: object) -> str | None:
    """The name typed at the password login, trimmed; None when it is empty or unusable (too long,
    control characters). With a shared password this name is what runs are recorded under."""
    name = " ".join(str(raw or "").split())
    if not name or len(name) > MAX_USER_NAME or not name.isprintable():
        return None
    return name


def oidc_identity(user: Mapping[str, Any]) -> str | None:
    """Who an OIDC login is, for run ownership: the email, else the name, else the subject id."""
    for key in ("email", "name", "sub"):
        value = user.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def is_local_address(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable only from this machine.

    Streamlit's default (empty ``server.address``) listens on every interface, so it is *not* local.
    """
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# Streamlit's documented [auth] layout: the top-level keys, and the keys each provider needs.
OIDC_TOP_KEYS = ("redirect_uri", "cookie_secret")
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
AUTHLIB_MIN = (1, 3, 2)  # what st.login requires (streamlit's "auth" extra)


@dataclass(frozen=True)
class AuthSettings:
    """How the app authenticates users: OIDC (``st.login``), a shared password, or not at all.

    When both are configured OIDC wins and the password is ignored: per-user identity is the
    stronger control, and asking for a shared password after single sign-on adds nothing.
    """

    password: str | None = None
    oidc_providers: tuple[str, ...] = ()
    oidc_section: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def mode(self) -> str:
        """``"oidc"``, ``"password"`` or ``"none"``."""
        if self.oidc_section is not None:
            return "oidc"
        return "password" if self.password else "none"

    @property
    def configured(self) -> bool:
        """True when some login is required before a page is shown."""
        return self.mode != "none"


def oidc_providers(section: Mapping[str, Any]) -> tuple[str, ...]:
    """Provider names in an ``[auth]`` section, as ``st.login(provider)`` takes them.

    Client keys directly under ``[auth]`` are the ``"default"`` provider; every sub-table
    holding client keys (``[auth.google]``) is a named one; other tables (``client_kwargs``) are not.
    """

    def has_client_keys(keys: Mapping[str, Any]) -> bool:
        return any(key in keys for key in OIDC_PROVIDER_KEYS)

    names = ["default"] if has_client_keys(section) else []
    names += sorted(k for k, v in section.items() if isinstance(v, Mapping) and has_client_keys(v))
    return tuple(names)


def resolve_auth(env_password: str | None, secrets: Mapping[str, Any]) -> AuthSettings:
    """Decide the auth mode from the environment password and Streamlit secrets.

    Password: ``GEOFT_APP_PASSWORD`` from the environment, else from secrets. OIDC: an ``[auth]``
    section in secrets (even an incomplete one: the gate then refuses to run, it never falls open).
    """
    password = env_password or secrets.get("GEOFT_APP_PASSWORD") or None
    section = secrets.get("auth")
    if section is not None and not isinstance(section, Mapping):
        section = {}  # `auth = "..."`: still an attempt at OIDC, reported by oidc_problems
    return AuthSettings(
        password=str(password) if password else None,
        oidc_providers=oidc_providers(section) if section is not None else (),
        oidc_section=section,
    )


def oidc_problems(section: Mapping[str, Any]) -> list[str]:
    """What is missing from an ``[auth]`` section (empty when ``st.login`` can use it)."""
    problems = [f"`{key}` is missing" for key in OIDC_TOP_KEYS if not section.get(key)]
    redirect = str(section.get("redirect_uri") or "")
    if redirect and not redirect.rstrip("/").endswith("/oauth2callback"):
        problems.append("`redirect_uri` must end in /oauth2callback (Streamlit's callback route)")
    providers = oidc_providers(section)
    if not providers:
        problems.append("no provider: add `client_id`, `client_secret`, `server_metadata_url`")
    for name in providers:
        keys = section if name == "default" else section[name]
        where = "[auth]" if name == "default" else f"[auth.{name}]"
        if "_" in name:
            problems.append(f"provider name {name!r} must not contain '_' (Streamlit refuses it)")
        problems += [f"`{key}` is missing in {where}" for key in OIDC_PROVIDER_KEYS if not keys.get(key)]
    return problems


def authlib_available() -> bool:
    """True when Authlib (>= 1.3.2, which ``st.login`` needs) can be imported."""
    try:
        import authlib
    except ImportError:
        return False
    try:
        version = tuple(int(p) for p in str(authlib.__version__).split(".")[:3])
    except ValueError:
        return True  # an unusual version string: let Streamlit judge it
    return version >= AUTHLIB_MIN
