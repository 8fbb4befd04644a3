"""One pydantic model per socket event payload and per form.

Schemas check shapes and types (strictly: ``"5"`` is not a number here);
rules that depend on configuration or state (body length, membership) live in
the services, once.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from .errors import Invalid

_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: str) -> str:
    # Neither PostgreSQL text nor UTF-8 can hold these: refuse them up front
    # rather than fail half-way through a write.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if _SURROGATE.search(value):
        raise ValueError("must not contain unpaired surrogates")
    return value


Storable = AfterValidator(_storable)
# Length limits go before ``Storable``: checked on the plain string, their
# message reads "String should have at most 64 characters", not "items".
Text = Annotated[str, Storable]
RoomSlug = Annotated[str, Field(min_length=1, max_length=80), Storable]
Username = Annotated[str, Field(min_length=1, max_length=32), Storable]
MessageId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Cursor = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Empty(Payload):
    pass


class RoomCreate(Payload):
    name: Text
    topic: Text = ""
    private: bool = False


class RoomRef(Payload):
    room: RoomSlug


class RoomJoin(RoomRef):
    since: Cursor | None = None
    # A change-log position (the ``cursor`` of an earlier ack or event).
    cursor: Cursor | None = None
    limit: int | None = Field(default=None, ge=1)
    # At most this many ``members`` and ``online`` in the ack (issue 14);
    # the rest through ``room:members``.
    members_limit: int | None = Field(default=None, ge=0, le=500)

    @model_validator(mode="after")
    def _one_start(self):
        if self.since is not None and self.cursor is not None:
            raise ValueError("give 'since' or 'cursor', not both")
        return self


class RoomMembers(RoomRef):
    """``room:members``: a page of a room's members by username (after ``after``)."""
    after: Username | None = None
    online: bool = False
    limit: int = Field(default=100, ge=1, le=500)


class RoomUpdate(RoomRef):
    name: Text | None = None
    topic: Text | None = None


class RoomInvite(RoomRef):
    user: Username


class MessageSend(RoomRef):
    body: Text
    client_id: Annotated[str, Field(min_length=1, max_length=64), Storable]


class OneDirection(BaseModel):
    """A page of history: ``before`` or ``after`` an id (not both), and ``limit``.

    One rule for the socket's ``message:history`` and the REST route.
    """

    before: Cursor | None = None
    after: Cursor | None = None
    cursor: Cursor | None = None
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_direction(self):
        if self.before is not None and self.after is not None:
            raise ValueError("give 'before' or 'after', not both")
        if self.cursor is not None and (self.before is not None or self.after is not None):
            raise ValueError("give 'cursor' alone, without 'before' or 'after'")
        return self


class MessageHistory(RoomRef, OneDirection):
    pass


class MessageEdit(Payload):
    id: MessageId
    body: Text


class MessageRef(Payload):
    id: MessageId


class RoomRead(RoomRef):
    last_read_id: Cursor


class DmOpen(Payload):
    user: Username


class Typing(RoomRef):
    typing: bool


class UserLookup(Payload):
    """``users:search`` on ``/public``: names starting with ``query``, for autocompletion."""

    query: Annotated[str, Field(min_length=1, max_length=32), Storable]
    limit: int | None = Field(default=None, ge=1)


# -- /admin ------------------------------------------------------------------

# A ban or kick reason is stored in User.ban_reason (500 characters).
Reason = Annotated[str, Field(max_length=500), Storable]
# Ten years: "until unbanned" is the way to say forever.
BAN_MAX_MINUTES = 10 * 365 * 24 * 60


class UserSearch(Payload):
    query: Annotated[str, Field(max_length=32), Storable] = ""
    limit: int | None = Field(default=None, ge=1)


class UserRef(Payload):
    user: Username


class UserKick(UserRef):
    reason: Reason = ""


class UserBan(UserKick):
    # Whole or fractional minutes; absent means until unbanned.
    minutes: Annotated[float, Field(gt=0, le=BAN_MAX_MINUTES)] | None = None


class Announce(Payload):
    body: Text
    room: RoomSlug | None = None
    # How long it stays current (whole or fractional minutes); absent: until
    # someone dismisses it in their browser.
    minutes: Annotated[float, Field(gt=0, le=BAN_MAX_MINUTES)] | None = None


class RoomArchive(RoomRef):
    archived: bool = True


class RoomSearch(Payload):
    query: Annotated[str, Field(max_length=64), Storable] = ""


class RecentMessages(RoomRef):
    before: Cursor | None = None
    limit: int | None = Field(default=None, ge=1)
    # Required to read a direct message: why (recorded in the audit log).
    reason: Reason | None = None


class AuditHistory(Payload):
    before: Cursor | None = None
    limit: int | None = Field(default=None, ge=1)


class BotCreate(Payload):
    name: Username
    admin: bool = False


class BotRef(Payload):
    bot: Username


class Credentials(Payload):
    """The sign-in and sign-up forms (form fields arrive as text)."""

    username: Annotated[str, Field(max_length=200), Storable]
    password: Annotated[str, Field(max_length=1024), Storable]


class PasswordChange(Payload):
    """The account page's change-password form."""

    current_password: Annotated[str, Field(max_length=1024), Storable]
    new_password: Annotated[str, Field(max_length=1024), Storable]


P = TypeVar("P", bound=BaseModel)


def parse(schema: type[P], payload: Any) -> P:
    """Validate ``payload`` against ``schema`` or raise ``Invalid`` naming the field."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise Invalid("the payload must be a JSON object", field="payload")
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        # Our own checks' words, without pydantic's "Value error, " before them.
        reason = (str(first["ctx"]["error"]) if first["type"] == "value_error"
                  else first["msg"])
        raise Invalid(f"{field}: {reason}", field=field.split(".")[0]) from None


# -- REST API v1 (app/api) ----------------------------------------------------
#
# Request bodies reuse the socket payloads' rules where the shape is the same
# (``RoomCreate``, ``DmOpen``); the models below are the HTTP-only shapes and
# the answers, from which /api/v1/openapi.json is generated.

class TokenRequest(Payload):
    """``POST /api/v1/auth/token``: a username and password, or a bot's key."""

    username: Annotated[str, Field(max_length=200), Storable] | None = None
    password: Annotated[str, Field(max_length=1024), Storable] | None = None
    bot_key: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None

    @model_validator(mode="after")
    def _one_grant(self):
        if self.bot_key is not None:
            if self.username is not None or self.password is not None:
                raise ValueError("give a bot_key, or a username and password, not both")
        elif self.username is None or self.password is None:
            raise ValueError("give a username and password, or a bot_key")
        return self


class RefreshRequest(Payload):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200), Storable]


class MessageBody(Payload):
    """``POST /api/v1/rooms/<slug>/messages`` and ``PATCH /api/v1/messages/<id>``."""

    body: Text


class ReadMarker(Payload):
    last_read_id: Cursor


class HistoryQuery(OneDirection):
    """``GET /api/v1/rooms/<slug>/messages`` query: text in a URL, so not strict."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Shape(BaseModel):
    """An answer's shape (documentation and tests; answers are built by the services)."""

    model_config = ConfigDict(extra="allow")


class TokenPair(Shape):
    access_token: str
    refresh_token: str
    token_type: str = Field(description='always "Bearer"')
    expires_in: int = Field(description="the access token's lifetime in seconds")


class UserShape(Shape):
    id: int
    username: str
    bot: bool


class RoomShape(Shape):
    slug: str
    name: str
    topic: str
    private: bool
    created_at: str = Field(description="ISO 8601 UTC, YYYY-MM-DDTHH:MM:SS.sssZ")
    member_count: int
    dm: bool
    archived: bool
    owner_id: int | None
    unread: int | None = Field(default=None, description="only where the caller is a member")


class MessageShape(Shape):
    id: int
    room: str = Field(description="the room's slug")
    user: UserShape
    body: str
    created_at: str
    edited_at: str | None
    client_id: str


class RoomsReply(Shape):
    rooms: list[RoomShape]


class RoomReply(Shape):
    room: RoomShape


class MembersReply(Shape):
    members: list[UserShape]
    online: list[UserShape]


class MessagesReply(Shape):
    messages: list[MessageShape]
    has_more: bool


class MessageReply(Shape):
    message: MessageShape


class UnreadReply(Shape):
    unread: int


class ErrorBody(Shape):
    code: str = Field(description="unauthenticated, forbidden, not_found, invalid, too_large, "
                                  "rate_limited, conflict or internal")
    message: str
    field: str | None = None
    retry_after: float | None = None


class ErrorReply(Shape):
    error: ErrorBody


class Jwks(Shape):
    keys: list[dict]
