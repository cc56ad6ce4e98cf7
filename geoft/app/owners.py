"""Who may stop, resume or delete a run: its owner or an admin, once the app has a login.

Everyone sees every run. Without a login (single-user mode) there is no one to tell apart, and
every action stays allowed, as before owners existed. No Streamlit import: the job runner enforces
these rules for every caller, the pages only show them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from geoft.app.run_store import RunRecord
from geoft.errors import NotAllowedError


def user_key(name: str) -> str:
    """The form in which user names are compared (``Alice@Example.org`` is ``alice@example.org``)."""
    return name.strip().casefold()


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf the app acts; ``user=None`` in single-user mode (no login)."""

    user: str | None = None
    admins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, user: str | None, admins: Iterable[str] = ()) -> Actor:
        """An actor with its admin list (any spelling: names are compared by :func:`user_key`)."""
        return cls(user=user, admins=frozenset(user_key(a) for a in admins))

    @property
    def is_admin(self) -> bool:
        return self.user is not None and user_key(self.user) in self.admins

    def owns(self, run: RunRecord) -> bool:
        return self.user is not None and run.owner is not None and user_key(run.owner) == user_key(self.user)


SINGLE_USER = Actor()


def may_control(actor: Actor, run: RunRecord) -> bool:
    """True when ``actor`` may stop, resume or delete ``run``."""
    return actor.user is None or actor.is_admin or actor.owns(run)


def check_may_control(actor: Actor, run: RunRecord, action: str) -> None:
    """Raise :class:`NotAllowedError` (naming the owner and who may) unless ``actor`` may ``action`` ``run``."""
    if may_control(actor, run):
        return
    if run.owner is None:
        raise NotAllowedError(
            f"you cannot {action} run {run.name!r}: it has no recorded owner (it was started before the "
            "app had a login), so only an admin may stop, resume or delete it.",
            hint="ask an admin (a user named in GEOFT_ADMINS).",
        )
    raise NotAllowedError(
        f"you cannot {action} run {run.name!r}: it belongs to {run.owner}, and only its owner or an admin "
        "may stop, resume or delete it.",
        hint=f"ask {run.owner} or an admin (a user named in GEOFT_ADMINS); to train the same config "
        "yourself, open it on the Runs page (Config, 'Use this config for a new run').",
    )


def owner_label(run: RunRecord) -> str:
    """How the pages name a run's owner."""
    return run.owner or "no owner (started without login)"
