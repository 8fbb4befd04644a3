"""Reactions' rules that need an admin or a tight limit: archived rooms, the rate limit.

(The rest of replies and reactions is tested through a real gunicorn in
tests/e2e/test_replies_reactions.py.)
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import Reaction
from tests.conftest import _reset_process_state, call, in_db

from .conftest import joined, public_room, sent


@pytest.fixture
def app(tmp_path, monkeypatch):
    # The suite's app with a reaction limit small enough to reach.
    monkeypatch.setenv("PARLEY_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
                      "REACTION_RATE_LIMIT": "4 per minute"})
    with app.app_context():
        db.create_all()
    _reset_process_state()
    yield app
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


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
