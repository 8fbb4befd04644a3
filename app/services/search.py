"""Full-text search over the messages a user may read.

One function, ``search``, for the socket's ``message:search`` and
``GET /api/v1/search``. What may be read is decided in the query itself:

- public rooms, joined or not (anyone may join one and read it all; leaving
  takes no right away), archived ones included;
- private rooms and direct messages only while the caller is a member:
  never one they left or were never in;
- never a deleted message (the index holds only live ones, and the query
  says so again).

The index is the database's (app/models.py): SQLite's FTS5 table
``messages_fts``, PostgreSQL's GIN index on ``to_tsvector('english', body)``.
The caller's words are never handed to either as query syntax: on SQLite
each word becomes one quoted FTS5 string, on PostgreSQL the words go
through ``plainto_tsquery``. Every word must match (any order, stemmed).

Snippets are plain text cut into parts, each marked as a match or not: the
database marks the matches (its stemming decides what matched) with two
private-use characters, which are split off here. Nothing in an answer is
HTML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import and_, bindparam, exists, func, literal_column, or_, select, table, column

from ..errors import Invalid
from ..extensions import db
from ..models import (SEARCH_CONFIG, SEARCH_TABLE, Membership, Message, Room, User)
from . import Actor
from . import mentions, messages
from .ratelimit import limits
from .rooms import visible_room
from .users import get_user

# The database brackets each match in a snippet with these (private-use
# code points); a body that itself holds one gets no highlights (below).
MARK_START = "\ue000"
MARK_END = "\ue001"
ELLIPSIS = "…"
# A snippet: this many characters of the body at most (about two lines of
# the results list), starting up to SNIPPET_LEAD before the first match.
SNIPPET_CHARS = 200
SNIPPET_LEAD = 60
_WORD = re.compile(r"[^\W_]+")
_MARKS = re.compile(f"([{MARK_START}{MARK_END}])")
_CURSOR = {"newest": re.compile(r"^n(\d{1,19})$"), "relevance": re.compile(r"^r(\d{1,9})$")}

_fts = table(SEARCH_TABLE, column("rowid"), column("rank"))
_FTS_MATCH = literal_column(SEARCH_TABLE).op("MATCH")
# A literal, not a parameter: PostgreSQL uses the index only for the very
# expression it indexes, ``to_tsvector('english', body)``.
_CONFIG = literal_column(f"'{SEARCH_CONFIG}'")


@dataclass(frozen=True, slots=True)
class Page:
    """Where a page starts: after a message id (newest first) or at an offset."""

    before_id: int | None = None
    offset: int = 0


def words_of(query: str) -> list[str]:
    """The caller's words, or ``invalid`` for an empty, too long or wordless query.

    A word is a run of letters and digits, as both indexes cut text: all
    else (``*``, ``"``, ``:``, ``-``, ``_``) only separates words, so that
    ``body:deploy`` means the words "body" and "deploy" on either database
    (FTS5 would read one quoted string of two tokens as a phrase).
    """
    cfg = current_app.config
    if len(query) > cfg["SEARCH_QUERY_MAX_LENGTH"]:
        raise Invalid(f"a search is at most {cfg['SEARCH_QUERY_MAX_LENGTH']} characters",
                      field="query")
    words = _WORD.findall(query)
    if not words:
        raise Invalid("search for at least one word", field="query")
    if len(words) > cfg["SEARCH_MAX_WORDS"]:
        raise Invalid(f"a search is at most {cfg['SEARCH_MAX_WORDS']} words", field="query")
    return words


def fts5_query(words: list[str]) -> str:
    """Each word as an FTS5 string (its quotes doubled): no operator, column
    filter or prefix can come from the caller. Strings side by side: all must match."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _page_of(order: str, cursor: str | None) -> Page:
    if cursor is None:
        return Page()
    found = _CURSOR[order].match(cursor)
    if found is None:
        raise Invalid(f"not a cursor of a search by {order}: give the 'next' of the "
                      "previous page", field="cursor")
    value = int(found.group(1))
    if order == "newest":
        if value > 2**63 - 1:
            raise Invalid("not a cursor of this search", field="cursor")
        return Page(before_id=value)
    return Page(offset=value)


def _limit(limit: int | None) -> int:
    cfg = current_app.config
    return min(limit or cfg["SEARCH_DEFAULT_LIMIT"], cfg["SEARCH_MAX_LIMIT"])


def _readable(actor: Actor):
    """The rule, in SQL: a live message of a public room, or of a room the caller is in."""
    member = exists().where(Membership.room_id == Message.room_id,
                            Membership.user_id == actor.id)
    return and_(Message.deleted.is_(False), or_(Room.private.is_(False), member))


def search(actor: Actor, query: str, *, room: str | None = None, author: str | None = None,
           before: datetime | None = None, after: datetime | None = None,
           order: str = "relevance", cursor: str | None = None,
           limit: int | None = None) -> dict:
    """A page of the messages ``actor`` may read that hold every word of ``query``.

    ``{"results": [{"message", "room", "snippet"}...], "has_more", "next"}``:
    by relevance (best first) or newest first; ``next`` is the ``cursor`` of
    the following page, null on the last. ``room`` (a slug the caller can
    see) and ``author`` (a username) narrow it, ``after`` (included) and
    ``before`` (excluded) bound its time. Spends one unit of the ``search``
    limit (a query refused as invalid spends none).
    """
    words = words_of(query)
    page = _page_of(order, cursor)
    size = _limit(limit)
    # Spent before the room and author are looked up: naming users or rooms
    # one search at a time is held to the same pace.
    limits.hit("search", actor.id, actor.username)
    filters = []
    if room is not None:
        # A private room of others answers not_found, as everywhere.
        found, _member = visible_room(actor, room)
        filters.append(Message.room_id == found.id)
    if author is not None:
        filters.append(Message.user_id == get_user(author).id)
    if after is not None:
        filters.append(Message.created_at >= after)
    if before is not None:
        filters.append(Message.created_at < before)

    dialect = db.session.get_bind().dialect.name
    statement = page_statement(actor, words, filters, order, page, size + 1, dialect)
    ids = list(db.session.execute(statement).scalars())
    has_more = len(ids) > size
    ids = ids[:size]
    results = _results(words, ids, dialect, actor.id)
    following = None
    if has_more:
        following = f"n{ids[-1]}" if order == "newest" else f"r{page.offset + size}"
    return {"results": results, "has_more": has_more, "next": following}


def page_statement(actor: Actor, words: list[str], filters: list, order: str, page: Page,
                   count: int, dialect: str):
    """The query for a page's message ids (tests EXPLAIN it: it must use the index)."""
    build = _sqlite_page if dialect == "sqlite" else _postgres_page
    return build(actor, words, filters, order, page, count)


def _sqlite_page(actor, words, filters, order, page: Page, count: int):
    query = (select(Message.id)
             .select_from(_fts)
             .join(Message, Message.id == _fts.c.rowid)
             .join(Room, Room.id == Message.room_id)
             .where(_FTS_MATCH(bindparam("match", fts5_query(words))), _readable(actor),
                    *filters))
    if order == "newest":
        # The FTS table hands out rowids (message ids) in order: no sort.
        if page.before_id is not None:
            query = query.where(_fts.c.rowid < page.before_id)
        query = query.order_by(_fts.c.rowid.desc())
    else:
        # bm25: lower is better; ties newest first.
        query = query.order_by(_fts.c.rank, _fts.c.rowid.desc()).offset(page.offset)
    return query.limit(count)


def _tsquery(words: list[str]):
    return func.plainto_tsquery(_CONFIG, bindparam("words", " ".join(words)))


def _tsvector():
    return func.to_tsvector(_CONFIG, Message.body)


def _postgres_page(actor, words, filters, order, page: Page, count: int):
    tsquery = _tsquery(words)
    query = (select(Message.id)
             .join(Room, Room.id == Message.room_id)
             # ``NOT deleted`` as the partial index says it (``_readable``
             # says it too): the planner proves the index applies.
             .where(_tsvector().op("@@")(tsquery), literal_column("NOT messages.deleted"),
                    _readable(actor), *filters))
    if order == "newest":
        if page.before_id is not None:
            query = query.where(Message.id < page.before_id)
        query = query.order_by(Message.id.desc())
    else:
        rank = func.ts_rank_cd(_tsvector(), tsquery)
        query = query.order_by(rank.desc(), Message.id.desc()).offset(page.offset)
    return query.limit(count)


def _results(words: list[str], ids: list[int], dialect: str, viewer_id: int) -> list[dict]:
    """The page's messages (each as history shows it to ``viewer_id``: its quote and
    reactions) with their snippets, in the order of ``ids``."""
    if not ids:
        return []
    columns = (Message, User.id, User.username, User.is_bot, User.display_name, Room.slug)
    # The whole body with its matches marked; ``snippet_parts`` cuts the
    # window, alike for both databases. (PostgreSQL's own fragments drop
    # anything that looks like a tag: ``HighlightAll`` keeps the text whole.)
    if dialect == "sqlite":
        marked = func.highlight(literal_column(SEARCH_TABLE), 0, MARK_START, MARK_END)
        query = (select(*columns, marked)
                 .select_from(_fts)
                 .join(Message, Message.id == _fts.c.rowid)
                 .where(_FTS_MATCH(bindparam("match", fts5_query(words))),
                        _fts.c.rowid.in_(ids)))
    else:
        options = f'StartSel="{MARK_START}", StopSel="{MARK_END}", HighlightAll=true'
        marked = func.ts_headline(_CONFIG, Message.body, _tsquery(words),
                                  bindparam("options", options))
        query = select(*columns, marked).where(Message.id.in_(ids))
    query = messages.with_quotes(query.join(User, User.id == Message.user_id)
                                 .join(Room, Room.id == Message.room_id))
    reactions = messages.reactions_of(ids, viewer_id)
    mentioned = mentions.stored(ids)
    found = {}
    for message, uid, username, bot, shown, slug, marked, *original in \
            db.session.execute(query).all():
        found[message.id] = {
            "message": messages.message_to_public(
                message, slug, messages.author(uid, username, bot, shown),
                reply_to=messages.quote_of(message, *original),
                reactions=reactions.get(message.id, ()), mentioned=mentioned.get(message.id)),
            "room": slug,
            "snippet": snippet_parts(marked, message.body),
        }
    # A message deleted between the two reads is left out.
    return [found[message_id] for message_id in ids if message_id in found]


def snippet_parts(marked: str | None, body: str) -> list[dict]:
    """``[{"text", "match"}...]``: the part of ``body`` around its first match.

    ``marked`` is the whole body with each match bracketed by the database.
    A body holding one of the marks itself cannot be told apart from the
    database's marks: it is shown from its start, with no highlight.
    """
    parts: list[list] = []  # [text, match]
    inside = False
    for piece in _MARKS.split(marked or ""):
        if piece == MARK_START:
            inside = True
        elif piece == MARK_END:
            inside = False
        elif piece:
            if parts and parts[-1][1] == inside:
                parts[-1][0] += piece
            else:
                parts.append([piece, inside])
    if "".join(text for text, _ in parts) != body or not any(match for _, match in parts):
        parts = [[body, False]]
    # The window: a little before the first match, up to SNIPPET_CHARS in
    # all, cut at spaces; an ellipsis says where text was left out.
    first = 0
    for text, match in parts:
        if match:
            break
        first += len(text)
    else:
        first = 0  # nothing marked: from the start
    start = max(0, first - SNIPPET_LEAD)
    if start:
        space = body.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        space = body.rfind(" ", first + 1, end)
        end = space if space != -1 else end
    window: list[dict] = []
    offset = 0
    for text, match in parts:
        piece = text[max(start - offset, 0):max(end - offset, 0)]
        offset += len(text)
        if piece:
            window.append({"text": piece, "match": match})
    if start:
        window.insert(0, {"text": ELLIPSIS, "match": False})
    if end < len(body):
        window.append({"text": ELLIPSIS, "match": False})
    return window
