"""The chat's stored state: users and their sign-in sessions, rooms,
memberships, messages with their mentions and reactions, the rooms' change log,
announcements, outgoing webhooks and their deliveries, and the moderators' audit log."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime | None) -> str | None:
    """The contract's time format: ``2026-11-22T10:00:00.123Z``, always UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # Usernames are unique regardless of case ("Alice" and "alice" are one).
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    # What the UI shows beside the username (never instead of it): not
    # unique, so it identifies no one; null until the user picks one.
    display_name: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    banned_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ban_reason: Mapped[str | None] = mapped_column(String(500))
    # A bot signs in with its key (BotKey) for API tokens only, never to the web UI.
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def get_id(self) -> str:
        # Flask-Login stores this in the cookie: the token of the sign-in
        # session (set by the session loader), never the user id, so that
        # signing out (revoking the token) voids the cookie.
        login_session = getattr(self, "login_session", None)
        return login_session.token if login_session else ""

    def is_banned(self, now: datetime | None = None) -> bool:
        if not self.banned:
            return False
        if self.banned_until is None:
            return True
        until = self.banned_until
        if until.tzinfo is None:
            until = until.replace(tzinfo=timezone.utc)
        return until > (now or utcnow())

    def to_public(self) -> dict:
        return {"id": self.id, "username": self.username, "bot": self.is_bot,
                "display_name": self.display_name}


class LoginSession(db.Model):
    """One sign-in: the cookie holds its token; sign-out revokes it."""

    __tablename__ = "login_sessions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True,
                                       default=lambda: secrets.token_urlsafe(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(lazy="joined")


class Room(db.Model):
    __tablename__ = "rooms"
    __table_args__ = (
        # A direct message is found by its pair of users, never by its slug:
        # one DM per pair, and only a room the server made as a DM has one.
        # (A unique index rather than a constraint: SQLite adds it without
        # rebuilding the table.)
        Index("uq_rooms_dm_pair", "dm_low_id", "dm_high_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(256), default="")
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    is_dm: Mapped[bool] = mapped_column(Boolean, default=False)
    # The two users of a direct message, smaller id first; null for any other room.
    dm_low_id: Mapped[int | None] = mapped_column(Integer)
    dm_high_id: Mapped[int | None] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The change log's counter: the position of the room's latest change.
    # Writers take the next one with an UPDATE of this row, whose lock
    # serializes them, so positions commit in order (see services/changes.py).
    last_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Changes at or below this position were pruned: a cursor below it
    # cannot be caught up and is told to reset.
    floor_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Membership(db.Model):
    __tablename__ = "memberships"

    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_read_id: Mapped[int] = mapped_column(BigId, default=0)
    # The member's notification level here: "all", "mentions" or "none";
    # null means the default for the kind of room (services/mentions.py).
    # It changes what is pushed to them, never what is stored or counted.
    notify: Mapped[str | None] = mapped_column(String(8))


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # Idempotent send: a client_id names one message per author.
        UniqueConstraint("user_id", "client_id", name="uq_messages_user_client_id"),
        # History and catch-up read a room's messages by id.
        Index("ix_messages_room_id_id", "room_id", "id"),
        # Deleting a message finds the replies that quote it (their log
        # entries lose the quoted text).
        Index("ix_messages_reply_to_id", "reply_to_id"),
        {"sqlite_autoincrement": True},  # ids only grow, even after deletes
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The message of the same room this one answers. No foreign key: messages
    # are only ever soft-deleted (a room's go with it), and a plain column
    # is added to SQLite without rebuilding the table.
    reply_to_id: Mapped[int | None] = mapped_column(BigId)

    # "@room" by the room's owner or an admin: a mention of every member.
    mentions_room: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Reaction(db.Model):
    """One user's emoji on one message: at most one per user, emoji and message."""

    __tablename__ = "message_reactions"

    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"),
                                            primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    # A fully-qualified emoji (app/services/reactions.py): at most 10 code points.
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageMention(db.Model):
    """A member mentioned by name (``@alice``) in a message, as of its latest edit."""

    __tablename__ = "message_mentions"

    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


# -- full-text search over messages (app/services/search.py) ----------------------
#
# Kept by the database itself, so that a send, an edit or a deletion is
# searchable (or no longer) in the same transaction, whichever code path
# wrote it. Only live messages are indexed. The migration
# (6a3c9e1f4b20_message_search) creates the same objects; these statements
# serve ``db.create_all()`` (the fast tests).
#
# SQLite: an FTS5 table whose content is ``messages`` itself (it stores only
# the index), kept by three triggers: a send costs one FTS insert of the
# body's tokens. A batch rebuild of ``messages`` in a later migration drops
# the triggers with the table: it must create them again.
SEARCH_TABLE = "messages_fts"
# PostgreSQL: a GIN index on the body's tsvector, of live messages only.
SEARCH_INDEX = "ix_messages_search"
# Both stem English words ("deploys" finds "deployed"); PostgreSQL's
# configuration also drops English stop words, FTS5's tokenizer keeps them.
SEARCH_CONFIG = "english"
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NOT new.deleted BEGIN "
    "INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body); END",
    # An edit replaces the indexed text; a deletion (``deleted`` set) only
    # removes it. External content: the old text must be given back exactly.
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, body) "
    "SELECT 'delete', old.id, old.body WHERE NOT old.deleted; "
    "INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE NOT new.deleted; END",
    # Rows removed for good (a user's account deleted, cascading).
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN NOT old.deleted BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "END",
)
POSTGRES_SEARCH_DDL = (
    f"CREATE INDEX {SEARCH_INDEX} ON messages "
    f"USING gin (to_tsvector('{SEARCH_CONFIG}', body)) WHERE NOT deleted",
)


def is_search_object(name: str) -> bool:
    """A table or index of the search index, which the models do not map
    (Alembic's autogenerate and the schema test leave them alone)."""
    return name == SEARCH_INDEX or name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")


for _statement in SQLITE_SEARCH_DDL:
    event.listen(Message.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRES_SEARCH_DDL:
    event.listen(Message.__table__, "after_create",
                 DDL(_statement).execute_if(dialect="postgresql"))
event.listen(Message.__table__, "before_drop",
             DDL(f"DROP TABLE IF EXISTS {SEARCH_TABLE}").execute_if(dialect="sqlite"))


class Announcement(db.Model):
    """An admin's announcement, kept so that it reaches people who were offline.

    Shown to every ``/public`` client (or one room's members) while it is
    current: until ``expires_at``, or for good when that is empty.
    """

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoomChange(db.Model):
    """One visible change of a room, at its position in the room's log.

    ``payload`` is the JSON text a joined connection received live (with its
    ``cursor``), served as it is to catch-up and to the SSE feed.
    """

    __tablename__ = "room_changes"
    __table_args__ = (
        # Deleting a message removes its earlier entries (compaction).
        Index("ix_room_changes_message_id", "message_id"),
    )

    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    # No foreign key: the message:deleted entry outlives nothing, and
    # compaction finds a message's entries by this id.
    message_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(db.Model):
    """What moderators did and what the server noticed, kept for review."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(80), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")

    def to_public(self) -> dict:
        return {"id": self.id, "at": isoformat(self.at), "actor": self.actor,
                "action": self.action, "target": self.target, "detail": self.detail}


class Invite(db.Model):
    """A single-use sign-up code, for ``REGISTRATION_OPEN=invite``.

    Only the code's SHA-256 is kept: a copy of the database does not hand
    out codes that still work.
    """

    __tablename__ = "invites"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(80))  # an admin's username, or "cli"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TokenFamily(db.Model):
    """One token sign-in (``POST /api/v1/auth/token``) and the refresh tokens
    rotated from it. Access tokens name it in their ``sid`` claim.

    It is backed by a ``LoginSession`` (never shown to the client): whatever
    ends a user's sign-in sessions (sign-out, a ban) ends its tokens too, and
    the socket machinery that closes a session's connections closes a token's.
    """

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True,
                                    default=lambda: secrets.token_urlsafe(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_token: Mapped[str] = mapped_column(
        ForeignKey("login_sessions.token", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    login_session: Mapped[LoginSession] = relationship(lazy="joined")


class RefreshToken(db.Model):
    """A refresh token, kept as its SHA-256 only; single use (``used_at``)."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("token_families.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BotKey(db.Model):
    """A bot's one live key, kept as its SHA-256 only; revoking deletes it."""

    __tablename__ = "bot_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Webhook(db.Model):
    """An outgoing webhook: changes of its rooms (all public ones, or those
    listed in ``webhook_rooms``) and events are POSTed to ``url``, signed
    with its secret (app/services/webhooks.py).

    ``secret`` is the signing secret encrypted with a key derived from
    ``SECRET_KEY`` (Fernet): the server must sign with it, so it cannot be a
    hash, and a copy of the database alone does not hand it out.
    """

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(500))
    # Every public room (not private rooms or DMs: those only when listed).
    all_rooms: Mapped[bool] = mapped_column(Boolean, default=True)
    # JSON list of change-log event names; empty: every event.
    events: Mapped[str] = mapped_column(Text, default="[]")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Deliveries that ran out of retries one after the other (reset by a
    # success); at WEBHOOK_DISABLE_AFTER the webhook is disabled.
    failed_in_a_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookRoom(db.Model):
    """A room a webhook names explicitly (its only rooms when not ``all_rooms``)."""

    __tablename__ = "webhook_rooms"

    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"),
                                            primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


class WebhookDelivery(db.Model):
    """One change for one webhook: written in the change's transaction (the
    outbox), then claimed and POSTed by a dispatcher until delivered or failed.

    ``body`` is the exact JSON sent, so every attempt (and a redelivery)
    carries the same delivery id and bytes.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The dispatcher's scan: due pending rows.
        Index("ix_webhook_deliveries_status_due", "status", "next_attempt_at"),
        # Per-room order (is an earlier change of this room still pending for
        # this webhook?) and compaction (a deleted message's deliveries).
        Index("ix_webhook_deliveries_queue", "room_id", "webhook_id", "position"),
        # The console: a webhook's newest deliveries.
        Index("ix_webhook_deliveries_recent", "webhook_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    # "pending" (waiting, or retrying), "delivered", "failed", or "dropped"
    # (its message was deleted before it was delivered).
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Retries stop here (WEBHOOK_RETRY_HOURS after it was queued or redelivered).
    give_up_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A dispatcher's lease: another may take the row once it has passed
    # (the holder was killed), so nothing claimed is lost.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
