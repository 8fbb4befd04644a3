"""Reactions' rules that need an admin or a tight limit (archived rooms, the rate limit),
and what replies and reactions cost in SQL statements.

(The rest of replies and reactions is tested through a real gunicorn in
tests/e2e/test_replies_reactions.py.)
"""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import Reaction
from tests.conftest import call, in_db

from .conftest import joined, public_room, sent


@pytest.fixture
def reaction_limit(request) -> str:
    """``REACTION_RATE_LIMIT``: out of the way unless a test tightens it (indirect parametrize)."""
    return getattr(request, "param", "10000 per minute")


@pytest.fixture
def app_config(reaction_limit):
    return {"REACTION_RATE_LIMIT": reaction_limit}


def reactions(app) -> list[tuple]:
    return in_db(app, select(Reaction.user_id, Reaction.emoji).order_by(Reaction.emoji))


def test_an_archived_room_takes_no_reactions_and_keeps_the_ones_it_has(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    message = sent(alice, "general", "final words")
    assert call(bob, "reaction:add", {"id": message["id"], "emoji": "👍"}) == {"ok": True}
    auth.create("root", admin=True)
    console = auth.socket("root", namespace="/admin")
    assert call(console, "room:archive", {"room": "general"}, namespace="/admin")["ok"]
    refused = {"ok": False, "error": {"code": "forbidden", "field": "room",
                                      "message": "this room is archived and read-only"}}
    assert call(bob, "reaction:add", {"id": message["id"], "emoji": "🎉"}) == refused
    assert call(bob, "reaction:remove", {"id": message["id"], "emoji": "👍"}) == refused
    assert [m["reactions"] for m in call(bob, "room:join", {"room": "general"})["messages"]] \
        == [[{"emoji": "👍", "count": 1, "me": True}]]


@pytest.mark.parametrize("reaction_limit", ["4 per minute"], indirect=True)
def test_reactions_are_rate_limited_per_user_and_a_refusal_changes_nothing(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    message = sent(alice, "general")
    # Every well-formed request spends, a no-op included; a malformed one does not.
    assert call(bob, "reaction:add", {"id": message["id"], "emoji": "no"})["ok"] is False
    acks = [call(bob, "reaction:add", {"id": message["id"], "emoji": emoji})
            for emoji in ("👍", "👍", "🎉", "👀", "😂")]
    assert [a["ok"] for a in acks] == [True, True, True, True, False]
    assert acks[4]["error"]["code"] == "rate_limited" and acks[4]["error"]["retry_after"] > 0
    assert len(reactions(app)) == 3
    # Another user has their own budget.
    assert call(alice, "reaction:add", {"id": message["id"], "emoji": "😂"}) == {"ok": True}
    assert in_db(app, select(func.count()).select_from(Reaction))[0][0] == 4


class Statements:
    """Counts the SQL statements the app runs (SELECT, INSERT...) while it is active."""

    def __init__(self, app):
        self.app = app
        self.engine = None
        self.count = 0

    def _count(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        with self.app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)


def test_a_history_page_reads_replies_and_reactions_without_a_query_per_message(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    previous = sent(alice, "general", "first")
    for n in range(15):  # within the send limit (20 in 2 s)
        ack = call(bob, "message:send", {"room": "general", "body": f"reply {n}",
                                         "client_id": f"r{n}", "reply_to": previous["id"]})
        previous = ack["message"]
        call(alice, "reaction:add", {"id": previous["id"], "emoji": "👍"})

    def statements_for(limit: int) -> int:
        with Statements(app) as counted:
            page = call(bob, "message:history", {"room": "general", "limit": limit})
        assert len(page["messages"]) == limit
        assert all(m["reply_to"] and m["reactions"] for m in page["messages"])
        return counted.count

    assert statements_for(15) == statements_for(3)


def test_a_reply_costs_the_send_one_statement_more(app, auth):
    alice = auth.socket("alice")
    public_room(alice)
    original = sent(alice, "general", "original")

    def statements_for(payload: dict) -> int:
        with Statements(app) as counted:
            assert call(alice, "message:send", {"room": "general", **payload})["ok"]
        return counted.count

    plain = statements_for({"body": "plain", "client_id": "p1"})
    assert statements_for({"body": "reply", "client_id": "p2",
                           "reply_to": original["id"]}) == plain + 1


def test_a_reply_to_no_such_message_spends_none_of_the_send_limit(app, auth):
    # The send limit is 20 in 2 seconds: 25 refused replies, then sends still pass.
    alice = auth.socket("alice")
    public_room(alice)
    for n in range(25):
        ack = call(alice, "message:send", {"room": "general", "body": "answer",
                                           "client_id": f"x{n}", "reply_to": 10**9})
        assert ack["error"]["code"] == "not_found" and ack["error"]["field"] == "reply_to"
    assert sent(alice, "general", "still allowed")["reply_to"] is None
