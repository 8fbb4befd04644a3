"""Moderation notices: a ban says it is a ban (until when, why), and announcements
are kept, so they survive a reload and reach people who were offline."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Announcement, utcnow
from tests.admin.conftest import acall, audit_rows, received_before_close
from tests.conftest import call, received


def chat(auth, name: str, room: str | None = None):
    sock = auth.socket(name)
    if room:
        call(sock, "room:create", {"name": room})
        assert call(sock, "room:join", {"room": room})["ok"]
    received(sock)
    return sock


# -- bans ----------------------------------------------------------------------

def test_a_timed_ban_tells_the_user_it_is_a_ban_and_until_when(auth, console):
    bob = chat(auth, "bob")
    ack = acall(console, "user:ban", {"user": "bob", "reason": "spam", "minutes": 60})
    assert ack["ok"]
    assert received_before_close(bob, "kicked") == [{
        "reason": "spam", "banned": True, "until": ack["user"]["banned_until"]}]


def test_a_kick_is_not_called_a_ban(auth, console):
    bob = chat(auth, "bob")
    assert acall(console, "user:kick", {"user": "bob", "reason": "calm down"})["ok"]
    assert received_before_close(bob, "kicked") == [{"reason": "calm down"}]


def test_signing_in_while_banned_says_until_when_and_why(app, auth, console):
    auth.create("bob")
    assert acall(console, "user:ban", {"user": "bob", "reason": "spam", "minutes": 60})["ok"]
    response = app.test_client().post("/login", data={"username": "bob",
                                                      "password": "correct-horse"})
    page = response.get_data(as_text=True)
    assert response.status_code == 401  # the sign-in form answers every refusal so
    assert "this account is banned until 20" in page and " UTC: spam" in page


# -- announcements ---------------------------------------------------------------

def test_an_announcement_is_kept_and_listed_to_someone_who_connects_later(auth, console):
    ack = acall(console, "announce", {"body": "Maintenance at 22:00"})
    late = chat(auth, "bob")
    listed = call(late, "announcements:list")
    assert listed == {"ok": True, "announcements": [ack["announcement"]]}
    assert ack["announcement"]["id"] >= 1 and ack["announcement"]["expires_at"] is None


def test_an_announcement_with_minutes_expires(app, auth, console):
    ack = acall(console, "announce", {"body": "Lunch in 5", "minutes": 5})
    announcement = ack["announcement"]
    assert announcement["expires_at"] > announcement["created_at"]
    bob = chat(auth, "bob")
    assert call(bob, "announcements:list")["announcements"] == [announcement]
    with app.app_context():
        db.session.execute(update(Announcement).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        db.session.remove()
    assert call(bob, "announcements:list")["announcements"] == []
    assert audit_rows(app)[-1] == ("root", "announce", "", "to every room, for 5 minutes: Lunch in 5")


def test_a_room_announcement_is_listed_only_to_the_rooms_members(auth, console):
    bob = chat(auth, "bob", "general")
    carol = chat(auth, "carol")
    ack = acall(console, "announce", {"body": "General: be kind", "room": "general"})
    assert call(bob, "announcements:list")["announcements"] == [ack["announcement"]]
    assert call(carol, "announcements:list")["announcements"] == []


def test_only_the_newest_three_current_announcements_are_listed(auth, console):
    bodies = [f"notice {n}" for n in range(5)]
    for body in bodies:
        assert acall(console, "announce", {"body": body})["ok"]
    bob = chat(auth, "bob")
    listed = call(bob, "announcements:list")["announcements"]
    assert [a["body"] for a in listed] == bodies[-3:]


@pytest.mark.parametrize("minutes", [0, -1, "5", True])
def test_bad_minutes_answer_invalid_and_keep_nothing(app, console, minutes):
    ack = acall(console, "announce", {"body": "hi", "minutes": minutes})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    assert ack["error"]["field"] == "minutes"
    with app.app_context():
        assert db.session.query(Announcement).count() == 0
        db.session.remove()
