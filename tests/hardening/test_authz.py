"""Authentication and authorization: who may connect, and who may do what.

Cross-site WebSocket hijacking (a foreign Origin) is refused in the Engine.IO
handshake, which the Flask-SocketIO test client skips: that case is in
test_abuse.py against a real server.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app import create_app
from app.extensions import db, socketio
from app.models import Message, User
from app.sockets.admin import AdminNamespace
from tests.conftest import call, received
from tests.hardening.conftest import in_db
from tests.hardening.test_fuzz import snapshot

ADMIN = "/admin"
ADMIN_EVENTS = sorted(name[3:].replace("_", ":", 1) for name in vars(AdminNamespace)
                      if name.startswith("on_") and hasattr(getattr(AdminNamespace, name),
                                                            "schema"))


def session_cookie(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


def connects(app, http, namespace="/public") -> bool:
    return socketio.test_client(app, namespace=namespace,
                                flask_test_client=http).is_connected(namespace)


# -- the session cookie ---------------------------------------------------------------

def test_the_session_cookie_is_httponly_and_samesite_lax(app, auth):
    auth.create("bob")
    response = app.test_client().post("/login", data={"username": "bob",
                                                      "password": "correct-horse"})
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_in_production_the_session_cookie_is_secure(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_ENV", "production")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite3'}",
                      "SECRET_KEY": "production-test-secret",
                      "WTF_CSRF_ENABLED": False, "PASSWORD_TIME_COST": 1,
                      "PASSWORD_MEMORY_COST": 1024})
    with app.app_context():
        db.create_all()
        from app.services import users
        users.create_user("bob", "correct-horse")
    response = app.test_client().post("/login", base_url="https://chat.example.org",
                                      data={"username": "bob", "password": "correct-horse"})
    assert "Secure" in session_cookie(response)
    with app.app_context():
        db.engine.dispose()


def test_a_session_planted_before_sign_in_does_not_become_signed_in(app, auth):
    """Session fixation: the attacker's copy of the pre-sign-in cookie stays anonymous."""
    auth.create("bob")
    victim = app.test_client()
    victim.get("/login")
    planted = victim.get_cookie("session")
    attacker = app.test_client()
    if planted is not None:
        attacker.set_cookie("session", planted.value)
    assert victim.post("/login", data={"username": "bob",
                                       "password": "correct-horse"}).status_code == 303
    assert planted is None or victim.get_cookie("session").value != planted.value
    assert attacker.get("/").status_code == 302
    assert not connects(app, attacker)


def test_each_sign_in_gets_its_own_revocable_session(app, auth):
    auth.create("bob")
    first, second = auth.login("bob"), auth.login("bob")
    assert first.get_cookie("session").value != second.get_cookie("session").value
    first.post("/logout")
    assert not connects(app, first)
    assert connects(app, second)


# -- signed out, banned ------------------------------------------------------------------

def test_a_signed_out_cookie_is_refused_at_connect_and_its_sockets_closed(app, auth):
    bob = auth.socket("bob")
    stolen = app.test_client()
    stolen.set_cookie("session", bob.http.get_cookie("session").value)
    bob.http.post("/logout")
    assert not bob.is_connected("/public")
    assert not connects(app, stolen)
    assert stolen.get("/").status_code == 302


def test_a_banned_user_is_refused_at_connect_and_on_every_event(app, auth):
    auth.create("root", admin=True)
    console = auth.socket("root", namespace=ADMIN)
    bob = auth.socket("bob")
    http = auth.login("bob")
    assert call(console, "user:ban", {"user": "bob"}, namespace=ADMIN)["ok"]
    assert not bob.is_connected("/public")
    assert not connects(app, http)
    # Even a connection the bus missed cannot act: the ban is re-read at sign-in.
    assert app.test_client().post("/login", data={"username": "bob", "password":
                                                  "correct-horse"}).status_code in (401, 403)


# -- rooms and messages ----------------------------------------------------------------

def test_a_member_who_leaves_a_private_room_stops_receiving_it_at_once(app, auth):
    bob, carol, carol_tab = auth.socket("bob"), auth.socket("carol"), auth.socket("carol")
    call(bob, "room:create", {"name": "secret", "private": True})
    call(bob, "room:invite", {"room": "secret", "user": "carol"})
    for sock in (bob, carol, carol_tab):
        assert call(sock, "room:join", {"room": "secret"})["ok"]
    assert call(carol, "room:leave", {"room": "secret"})["ok"]
    received(carol_tab)
    call(bob, "message:send", {"room": "secret", "body": "after", "client_id": "a1"})
    assert received(carol_tab, "message") == []
    assert call(carol_tab, "message:history", {"room": "secret"})["error"]["code"] == "not_found"


def test_no_one_edits_or_deletes_anothers_message_unless_owner_or_admin(app, auth):
    auth.create("root", admin=True)
    owner, alice, bob = auth.socket("owner"), auth.socket("alice"), auth.socket("bob")
    root = auth.socket("root")
    call(owner, "room:create", {"name": "lobby"})
    for sock in (owner, alice, bob, root):
        call(sock, "room:join", {"room": "lobby"})
    ids = [call(bob, "message:send", {"room": "lobby", "body": f"bob {n}",
                                      "client_id": f"b{n}"})["message"]["id"] for n in range(3)]
    assert call(alice, "message:edit", {"id": ids[0], "body": "x"})["error"]["code"] == "forbidden"
    assert call(alice, "message:delete", {"id": ids[0]})["error"]["code"] == "forbidden"
    assert call(owner, "message:edit", {"id": ids[0], "body": "x"})["error"]["code"] == "forbidden"
    assert call(root, "message:edit", {"id": ids[0], "body": "x"})["error"]["code"] == "forbidden"
    assert in_db(app, select(Message.body, Message.deleted).where(Message.id == ids[0])) == [
        ("bob 0", False)]
    assert call(owner, "message:delete", {"id": ids[1]})["ok"]
    assert call(root, "message:delete", {"id": ids[2]})["ok"]


# -- /admin ------------------------------------------------------------------------------

def test_a_non_admin_cannot_open_the_console(app, auth):
    auth.create("bob")
    assert not connects(app, auth.login("bob"), ADMIN)


def test_an_admin_demoted_mid_connection_loses_the_console_at_once(app, auth):
    auth.create("root", admin=True)
    auth.create("deputy", admin=True)
    root = auth.socket("root", namespace=ADMIN)
    deputy = auth.socket("deputy", namespace=ADMIN)
    assert call(root, "user:demote", {"user": "deputy"}, namespace=ADMIN)["ok"]
    assert not deputy.is_connected(ADMIN)


@pytest.mark.parametrize("event", ADMIN_EVENTS)
def test_every_admin_event_is_refused_once_rights_are_gone(app, auth, event):
    """Rights taken away behind the bus's back (in the database) still stop every event."""
    auth.create("root", admin=True)
    auth.create("bob")
    console = auth.socket("root", namespace=ADMIN)
    with app.app_context():
        db.session.execute(update(User).where(User.username == "root").values(is_admin=False))
        db.session.commit()
        db.session.remove()
    before = snapshot(app)
    ack = call(console, event, {"user": "bob", "room": "lobby", "id": 1, "body": "x"},
               namespace=ADMIN)
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert snapshot(app) == before
