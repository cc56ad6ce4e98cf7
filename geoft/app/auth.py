"""Optional shared-password gate and the 'exposed without auth' check."""

from __future__ import annotations

import hmac
import ipaddress


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a typed password with the configured one."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


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
