"""One pydantic model per socket event payload and per form.

Schemas check shapes and types (strictly: ``"5"`` is not a number here);
rules that depend on configuration or state (body length, membership) live in
the services, once.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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


class RoomRemove(RoomRef):
    user: Username


class MessageSend(RoomRef):
    body: Text
    client_id: Annotated[str, Field(min_length=1, max_length=64), Storable]
    # The id of the message of the same room this one answers.
    reply_to: MessageId | None = None


class OneDirection(BaseModel):
    """A page of history: ``before`` or ``after`` an id (not both), and ``limit``.

    One rule for the socket's ``message:history`` and the REST route.
    """

    before: Cursor | None = None
    after: Cursor | None = None
    cursor: Cursor | None = None
    # A message id: the page centred on it (a search result opened in its room).
    around: Cursor | None = None
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_direction(self):
        if self.before is not None and self.after is not None:
            raise ValueError("give 'before' or 'after', not both")
        if self.cursor is not None and (self.before is not None or self.after is not None):
            raise ValueError("give 'cursor' alone, without 'before' or 'after'")
        if self.around is not None and (self.before is not None or self.after is not None
                                        or self.cursor is not None):
            raise ValueError("give 'around' alone, without 'before', 'after' or 'cursor'")
        return self


class MessageHistory(RoomRef, OneDirection):
    pass


class MessageEdit(Payload):
    id: MessageId
    body: Text


class MessageRef(Payload):
    id: MessageId


class ReactionChange(Payload):
    """``reaction:add`` and ``reaction:remove``: which emoji is checked by the service."""

    id: MessageId
    emoji: Annotated[str, Field(min_length=1, max_length=64), Storable]


class RoomRead(RoomRef):
    last_read_id: Cursor


# Which levels exist is the service's rule (rooms.NOTIFY_LEVELS).
NotifyLevel = Annotated[str, Field(min_length=1, max_length=16), Storable]


class RoomNotify(RoomRef):
    level: NotifyLevel


class DmOpen(Payload):
    user: Username


class Typing(RoomRef):
    typing: bool


class UserLookup(Payload):
    """``users:search`` on ``/public``: names starting with ``query``, for autocompletion."""

    query: Annotated[str, Field(min_length=1, max_length=32), Storable]
    limit: int | None = Field(default=None, ge=1)


def _moment(value: Any) -> datetime:
    """A date (``2026-12-01``: its start, 00:00 UTC) or an ISO 8601 time (UTC
    when it names no offset), as an aware datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 time") from None
    else:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


Moment = Annotated[datetime, BeforeValidator(_moment)]
# Where the next page of a search starts: the ``next`` of the previous answer.
SearchCursor = Annotated[str, Field(min_length=1, max_length=40), Storable]


class SearchFilters(BaseModel):
    """A message search's filters, order and page: one rule for the socket's
    ``message:search`` and ``GET /api/v1/search`` (the words are checked by
    ``services.search``, against the configured limits)."""

    room: RoomSlug | None = Field(default=None, description="only this room (a slug)")
    author: Username | None = Field(default=None, description="only this user's messages")
    before: Moment | None = Field(default=None, description=(
        "messages created before this moment, excluded: a date (YYYY-MM-DD, its start "
        "in UTC) or an ISO 8601 time (UTC without an offset)"))
    after: Moment | None = Field(default=None, description=(
        "messages created at or after this moment (a date or an ISO 8601 time)"))
    order: Literal["relevance", "newest"] = "relevance"
    cursor: SearchCursor | None = Field(default=None,
                                        description="the previous page's next")
    limit: int | None = Field(default=None, ge=1, description="default 20, at most 50")

    @model_validator(mode="after")
    def _a_span(self):
        if self.before is not None and self.after is not None and self.after >= self.before:
            raise ValueError("'after' must be earlier than 'before'")
        return self


class MessageSearch(Payload, SearchFilters):
    query: Text


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


WebhookUrl = Annotated[str, Field(min_length=1, max_length=2000), Storable]
WebhookEvent = Annotated[str, Field(min_length=1, max_length=40), Storable]
WebhookId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class WebhookCreate(Payload):
    """``rooms``: null or absent for every public room; ``events``: empty or absent for all."""

    url: WebhookUrl
    rooms: list[RoomSlug] | None = Field(default=None, max_length=100)
    events: list[WebhookEvent] | None = Field(default=None, max_length=20)
    active: bool = True


class WebhookRef(Payload):
    id: WebhookId


class WebhookUpdate(WebhookRef):
    """Only the fields given change (``rooms: null`` means every public room)."""

    url: WebhookUrl | None = None
    rooms: list[RoomSlug] | None = Field(default=None, max_length=100)
    events: list[WebhookEvent] | None = Field(default=None, max_length=20)
    active: bool | None = None
    rotate_secret: bool = False


class WebhookDeliveries(WebhookRef):
    limit: int | None = Field(default=None, ge=1)


class DeliveryRef(Payload):
    delivery: Annotated[str, Field(min_length=1, max_length=40), Storable]


class Credentials(Payload):
    """The sign-in and sign-up forms (form fields arrive as text)."""

    username: Annotated[str, Field(max_length=200), Storable]
    password: Annotated[str, Field(max_length=1024), Storable]


class DisplayNameChange(Payload):
    """The account page's display-name form (empty clears it)."""

    display_name: Annotated[str, Field(max_length=1024), Storable]


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


class MessageCreate(MessageBody):
    """``POST /api/v1/rooms/<slug>/messages``: a body, and the message it replies to."""

    reply_to: MessageId | None = None


class ReactionBody(Payload):
    """``POST /api/v1/messages/<id>/reactions``."""

    emoji: Annotated[str, Field(min_length=1, max_length=64), Storable]


class ReadMarker(Payload):
    last_read_id: Cursor


class NotifyChoice(Payload):
    """``PUT /api/v1/rooms/<slug>/notify``."""

    level: NotifyLevel = Field(description="all, mentions or none")


class HistoryQuery(OneDirection):
    """``GET /api/v1/rooms/<slug>/messages`` query: text in a URL, so not strict."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SearchQuery(SearchFilters):
    """``GET /api/v1/search`` query (``q``: the words): text in a URL, so not strict."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    q: Text = Field(description="the words to find (all must match; not query syntax)")


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
    display_name: str | None = Field(description="what the user chose to be called; null when "
                                                 "unset. Not unique: show the username beside it")


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
    mentions_unread: int | None = Field(
        default=None, description="of the unread, those mentioning the caller (@name or "
                                  "@room); only where the caller is a member")
    notify: str | None = Field(
        default=None, description="the caller's notification level: all, mentions or none; "
                                  "only where the caller is a member")


class QuoteShape(Shape):
    id: int = Field(description="the id of the message replied to")
    author: UserShape | None = Field(description="null once the original is deleted")
    excerpt: str | None = Field(description="the start of the original's text (100 "
                                            "characters, whitespace runs as one space); "
                                            "null once it is deleted")
    deleted: bool


class ReactionShape(Shape):
    emoji: str
    count: int = Field(description="how many people reacted with it")
    me: bool = Field(description="whether the caller is one of them")


class MessageShape(Shape):
    id: int
    room: str = Field(description="the room's slug")
    user: UserShape
    body: str
    created_at: str
    edited_at: str | None
    client_id: str
    reply_to: QuoteShape | None = Field(description="the message this one replies to")
    reactions: list[ReactionShape] = Field(description="in the order first given")
    mentions: list[int] = Field(default=[], description="ids of the members it mentions by "
                                                        "name (@alice), ascending")
    mentions_room: bool = Field(default=False, description="an @room by the room's owner "
                                                           "or an admin: every member")


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
    has_newer: bool | None = Field(default=None,
                                   description="only with around=: newer messages remain")


class MessageReply(Shape):
    message: MessageShape


class SnippetPart(Shape):
    text: str
    match: bool = Field(description="a word the search matched (the UI marks it)")


class SearchResult(Shape):
    message: MessageShape
    room: str = Field(description="the room's slug")
    snippet: list[SnippetPart] = Field(
        description="the matched part of the body as plain text, cut into parts; "
                    "join the parts' text to read it")


class SearchReply(Shape):
    results: list[SearchResult]
    has_more: bool
    next: str | None = Field(description="give it as cursor= for the next page; "
                                         "null on the last page")


class UnreadReply(Shape):
    unread: int
    mentions_unread: int


class NotifyReply(Shape):
    room: str = Field(description="the room's slug")
    notify: str


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
