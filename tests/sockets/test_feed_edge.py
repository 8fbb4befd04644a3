"""The SSE feed's edge, in process: who may open it, what a bad or too old
``Last-Event-ID`` gets. (Streaming itself is tested against gunicorn in
tests/e2e/test_feed.py.)"""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.feed import hub
from app.models import utcnow
from app.services import changes

from tests.conftest import call

from .conftest import public_room, sent

URL = "/api/v1/rooms/{}/events"


@pytest.fixture
def quick(app):
    app.config.update(SSE_HEARTBEAT_SECONDS=0.05)
    return app


def first_chunks(response, count: int) -> list[str]:
    chunks = []
    for chunk in response.response:
        chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        if len(chunks) == count:
            break
    response.close()
    return chunks


def test_a_last_event_id_the_log_no_longer_keeps_gets_a_reset_event(quick, auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    for n in range(5):
        sent(alice, slug, f"m{n}")
    quick.config.update(CHANGE_LOG_RETENTION_ENTRIES=1, CHANGE_LOG_RETENTION_DAYS=1)
    with quick.app_context():
        changes.prune(now=utcnow() + timedelta(days=2))
        db.session.remove()
    newest = call(alice, "message:history", {"room": slug})["cursor"]
    response = alice.http.get(URL.format(slug), headers={"Last-Event-ID": "1"}, buffered=False)
    assert response.status_code == 200
    hello, reset = first_chunks(response, 2)
    assert hello.startswith("retry: ")
    assert reset == f'id: {newest}\nevent: reset\ndata: {{"room": "{slug}", "cursor": {newest}}}\n\n'
    assert len(hub) == 0, "a closed stream leaves the hub"


def test_an_idle_feed_sends_heartbeats(quick, auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    response = alice.http.get(URL.format(slug), buffered=False)
    assert first_chunks(response, 3)[1:] == [": heartbeat\n\n", ": heartbeat\n\n"]


@pytest.mark.parametrize("last_event_id", ["abc", "-1", "1.5", "9" * 19, "١"])
def test_a_malformed_last_event_id_answers_400(app, auth, last_event_id):
    alice = auth.socket("alice")
    slug = public_room(alice)
    response = alice.http.get(URL.format(slug), headers={"Last-Event-ID": last_event_id})
    assert response.status_code == 400


def test_the_feed_needs_a_sign_in_and_hides_private_rooms(app, auth, client):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    secret = public_room(alice, "Secret", private=True)
    assert client.get(URL.format(secret)).status_code == 401
    assert bob.http.get(URL.format(secret)).status_code == 404
    assert bob.http.get(URL.format("nowhere")).status_code == 404


def test_a_reader_may_follow_while_signed_in_unbanned_and_a_member_of_a_private_room(app, auth):
    from sqlalchemy import select

    from app.models import Room, User
    from app.services import Actor, rooms, users

    alice = auth.socket("alice")
    auth.create("bob")
    secret = public_room(alice, "Secret", private=True)
    open_room = public_room(alice, "Open")
    call(alice, "room:invite", {"room": secret, "user": "bob"})
    with app.app_context():
        bob_id = users.find_user("bob").id
        token = users.start_session(users.find_user("bob")).token
        ids = dict(db.session.execute(select(Room.slug, Room.id)).all())
        assert rooms.may_follow(bob_id, token, ids[secret])
        assert rooms.may_follow(bob_id, token, ids[open_room]), "public: no membership needed"
        rooms.leave_room(Actor(bob_id, "bob"), secret)
        assert not rooms.may_follow(bob_id, token, ids[secret])
        assert rooms.may_follow(bob_id, token, ids[open_room])
        db.session.get(User, bob_id).banned = True
        db.session.commit()
        assert not rooms.may_follow(bob_id, token, ids[open_room])
        db.session.get(User, bob_id).banned = False
        users.end_session(token)
        assert not rooms.may_follow(bob_id, token, ids[open_room])
        db.session.remove()
