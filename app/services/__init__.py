"""The one path to the chat's state.

HTTP views, socket handlers, the admin console and the CLI all call these
functions. ``check_*`` functions validate and raise a ``DomainError``;
``do``-style functions change state, commit, and only then hand the event to
``app.events`` for broadcast.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: enough to authorize and to stamp a message, no more.

    A socket connection keeps one for its lifetime, so the hot path never
    reloads the user. Checks that depend on rights that can change (admin)
    reload them from the database.
    """

    id: int
    username: str
    bot: bool = False
    # Kept current on live connections by ``control.UserRenamed``.
    display_name: str | None = None

    @classmethod
    def of(cls, user) -> "Actor":
        return cls(id=user.id, username=user.username, bot=bool(user.is_bot),
                   display_name=user.display_name)

    def to_public(self) -> dict:
        return {"id": self.id, "username": self.username, "bot": self.bot,
                "display_name": self.display_name}
