"""Passwords: the user's own change on /account, the admin's reset in the console,
the operator's on the command line. One service function (``users.set_password``)
under all three: the rules are check_password's, and the user's other sessions end."""
from __future__ import annotations

import pytest
from limits import parse
from sqlalchemy import select

from app.extensions import socketio
from app.services.ratelimit import limits

from app.models import AuditEntry, LoginSession, User
from tests.admin.conftest import ADMIN, acall
from tests.conftest import in_db

NEW = "a-brand-new-secret"


def can_sign_in(app, username: str, password: str) -> bool:
    response = app.test_client().post("/login", data={"username": username,
                                                      "password": password})
    return response.status_code == 303


def change(http, current: str, new: str):
    return http.post("/account", data={"current_password": current, "new_password": new})


def live_sessions(app, username: str) -> int:
    return len(in_db(app, select(LoginSession.token).join(User)
                     .where(User.username_key == username, LoginSession.revoked_at.is_(None))))


def password_hash(app, username: str) -> str:
    return in_db(app, select(User.password_hash).where(User.username_key == username))[0][0]


def test_the_account_page_asks_for_the_current_and_the_new_password(auth):
    auth.create("alice")
    page = auth.login("alice").get("/account").get_data(as_text=True)
    assert 'name="current_password"' in page and 'name="new_password"' in page
    assert 'autocomplete="new-password"' in page


def test_the_account_page_needs_a_signed_in_user(client):
    assert client.get("/account").status_code in (302, 303)


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, auth):
    other_socket = auth.socket("alice")
    this = auth.login("alice")
    this_socket = socketio.test_client(app, namespace="/public", flask_test_client=this)
    response = change(this, "correct-horse", NEW)
    assert response.status_code == 200
    assert "Your password was changed" in response.get_data(as_text=True)
    assert not other_socket.is_connected("/public")
    assert this_socket.is_connected("/public")
    assert this.get("/").status_code == 200
    assert other_socket.http.get("/").status_code in (302, 303)
    assert live_sessions(app, "alice") == 1
    assert can_sign_in(app, "alice", NEW)
    assert not can_sign_in(app, "alice", "correct-horse")


@pytest.mark.parametrize("current,new,message", [
    ("wrong-password", NEW, "the current password is wrong"),
    ("correct-horse", "short", "a password is 8 to 1024 characters"),
    ("correct-horse", "correct-horse", "the new password is the current one"),
])
def test_a_refused_change_says_why_and_changes_nothing(app, auth, current, new, message):
    other = auth.socket("alice")
    this = auth.login("alice")
    before = password_hash(app, "alice")
    response = change(this, current, new)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert password_hash(app, "alice") == before
    assert other.is_connected("/public") and live_sessions(app, "alice") == 2


def test_wrong_current_passwords_count_as_failed_sign_ins_of_the_account(app, auth,
                                                                        monkeypatch):
    # A stolen session cookie must not become a way to guess the password.
    monkeypatch.setitem(limits._rules, "signin_user", parse("3 per minute"))
    auth.create("alice")
    this = auth.login("alice")
    before = password_hash(app, "alice")
    for _ in range(3):
        assert change(this, "wrong-password", NEW).status_code == 400
    throttled = change(this, "correct-horse", NEW)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert "Too many wrong passwords" in throttled.get_data(as_text=True)
    assert password_hash(app, "alice") == before


# -- the admin's reset ---------------------------------------------------------------

def test_an_admin_reset_answers_a_temporary_password_and_signs_the_user_out(app, auth):
    auth.create("root", admin=True)
    console = auth.socket("root", namespace=ADMIN)
    bob = auth.socket("bob")
    ack = acall(console, "user:reset-password", {"user": "bob"})
    assert ack["ok"] is True, ack
    temporary = ack["user"]["temporary_password"]
    assert ack["user"]["username"] == "bob" and len(temporary) >= 12
    assert not bob.is_connected("/public")
    assert live_sessions(app, "bob") == 0
    assert can_sign_in(app, "bob", temporary)
    assert not can_sign_in(app, "bob", "correct-horse")
    entries = in_db(app, select(AuditEntry.actor, AuditEntry.action, AuditEntry.target,
                                AuditEntry.detail).where(AuditEntry.action == "user:reset-password"))
    assert [tuple(e) for e in entries] == [("root", "user:reset-password", "bob", "1 session ended")]
    assert temporary not in str(entries)


def test_an_admin_cannot_reset_their_own_password_from_the_console(app, auth):
    auth.create("root", admin=True)
    console = auth.socket("root", namespace=ADMIN)
    before = password_hash(app, "root")
    ack = acall(console, "user:reset-password", {"user": "root"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert password_hash(app, "root") == before and console.is_connected(ADMIN)


def test_resetting_an_unknown_user_answers_not_found(auth):
    auth.create("root", admin=True)
    console = auth.socket("root", namespace=ADMIN)
    ack = acall(console, "user:reset-password", {"user": "nobody"})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"


# -- the command line --------------------------------------------------------------

def test_the_cli_resets_a_password_from_stdin(app, auth, runner):
    bob = auth.socket("bob")
    result = runner.invoke(args=["reset-password", "bob", "--password-stdin"], input=NEW + "\n")
    assert result.exit_code == 0, result.output
    assert "password reset for bob" in result.output
    assert can_sign_in(app, "bob", NEW) and not can_sign_in(app, "bob", "correct-horse")
    assert not bob.is_connected("/public")
    entries = in_db(app, select(AuditEntry.actor, AuditEntry.target)
                    .where(AuditEntry.action == "user:reset-password"))
    assert [tuple(e) for e in entries] == [("cli", "bob")]


@pytest.mark.parametrize("name,password,message", [
    ("bob", "short", "a password is 8 to 1024 characters"),
    ("nobody", NEW, "no user named 'nobody'"),
])
def test_the_cli_refuses_a_bad_reset_and_changes_nothing(app, auth, runner, name, password,
                                                         message):
    auth.create("bob")
    before = password_hash(app, "bob")
    result = runner.invoke(args=["reset-password", name, "--password-stdin"],
                           input=password + "\n")
    assert result.exit_code != 0 and message in result.output
    assert password_hash(app, "bob") == before
