"""The ``/admin`` namespace with the Flask-SocketIO test client: who may connect,
what each event answers and changes, and what reaches whom."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from app.bus import PROCESS_ID
from app.extensions import db
from app.models import AuditEntry, LoginSession, Message, Room, User
from app.services.audit import history
from app.services.connections import close_lapsed_consoles, live
from tests.admin.conftest import (ADMIN, acall, audit_rows, pushed, received_before_close,
                                  refused, state_of, user_row)
from tests.conftest import call, in_db, received, without_cursor

ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, ISO).replace(tzinfo=timezone.utc)


def chat(auth, name: str, room: str = "general"):
    """A member's chat connection that has joined ``room`` (created if missing)."""
    sock = auth.socket(name)
    call(sock, "room:create", {"name": room})
    assert call(sock, "room:join", {"room": room})["ok"]
    received(sock)
    return sock


def set_admin_in_db(app, username: str, is_admin: bool) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.username_key == username)
                           .values(is_admin=is_admin))
        db.session.commit()
        db.session.remove()


# -- connecting -----------------------------------------------------------------

def test_an_anonymous_connection_is_refused(app):
    assert refused(app, app.test_client())


def test_a_non_admin_connection_is_refused(app, auth):
    auth.create("bob")
    assert refused(app, auth.login("bob"))


def test_an_admin_connects_and_is_counted_as_a_console(app, auth):
    auth.create("root", admin=True)
    http = auth.login("root")
    assert not refused(app, http)
    assert len(live.admins) == 1


def test_the_first_console_starts_the_stats_push_once(auth, monkeypatch):
    started = []
    monkeypatch.setattr("app.services.connections.socketio.start_background_task",
                        lambda fn, *args: started.append(fn))
    auth.create("root", admin=True)
    auth.create("eve", admin=True)
    auth.socket("root", namespace=ADMIN)
    auth.socket("eve", namespace=ADMIN)
    assert len(started) == 1 and live.stats_push.running


def test_an_unknown_event_answers_not_found(console):
    ack = acall(console, "users:purge", {})
    assert ack == {"ok": False, "error": {"code": "not_found",
                                          "message": "unknown event 'users:purge'"}}


@pytest.mark.parametrize("event", ["connect", "disconnect"])
def test_a_client_event_named_like_the_lifecycle_changes_nothing(console, event):
    ack = acall(console, event, {})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert len(live.admins) == 1 and console.is_connected(ADMIN)
    assert acall(console, "stats")["ok"]


# -- every event re-checks the caller's rights -----------------------------------

EVERY_EVENT = [
    ("stats", {}),
    ("users:list", {}),
    ("user:kick", {"user": "bob"}),
    ("user:ban", {"user": "bob", "minutes": 5}),
    ("user:unban", {"user": "carol"}),
    ("user:promote", {"user": "bob"}),
    ("user:demote", {"user": "eve"}),
    ("user:reset-password", {"user": "bob"}),
    ("message:delete", {"id": 1}),
    ("announce", {"body": "hello all"}),
    ("rooms:list", {}),
    ("room:archive", {"room": "general"}),
    ("messages:recent", {"room": "general"}),
    ("audit:list", {}),
]


@pytest.fixture
def scene(app, auth, console):
    """bob chatting in #general with one message, carol banned, eve a second admin."""
    bob = chat(auth, "bob")
    assert call(bob, "message:send", {"room": "general", "body": "hi", "client_id": "m1"})["ok"]
    auth.create("carol")
    auth.create("eve", admin=True)
    assert acall(console, "user:ban", {"user": "carol"})["ok"]
    received(bob), pushed(console)
    return bob


@pytest.mark.parametrize("event,payload", EVERY_EVENT, ids=[e for e, _ in EVERY_EVENT])
def test_every_event_refuses_an_admin_demoted_while_connected(app, console, scene, event,
                                                              payload):
    set_admin_in_db(app, "root", False)
    before = state_of(app)
    ack = acall(console, event, payload)
    assert ack == {"ok": False, "error": {"code": "forbidden", "message": "admins only"}}
    assert state_of(app) == before
    assert scene.is_connected("/public") and received(scene) == []


@pytest.mark.parametrize("event,payload", EVERY_EVENT, ids=[e for e, _ in EVERY_EVENT])
def test_every_event_refuses_a_console_whose_session_was_signed_out(app, console, scene, event,
                                                                    payload):
    assert console.http.post("/logout").status_code == 303
    before = state_of(app)
    ack = acall(console, event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthenticated"
    assert state_of(app) == before


@pytest.mark.parametrize("event,payload", [
    ("users:list", {"query": 5}),
    ("users:list", {"limit": 0}),
    ("user:kick", {}),
    ("user:kick", {"user": "bob", "reason": "x" * 501}),
    ("user:ban", {"user": "bob", "minutes": 0}),
    ("user:ban", {"user": "bob", "minutes": "5"}),
    ("user:ban", {"user": "bob", "minutes": True}),
    ("user:ban", {"user": "bob", "minutes": 10 * 365 * 24 * 60 + 1}),
    ("user:unban", {"user": ""}),
    ("user:promote", {"user": None}),
    ("user:reset-password", {}),
    ("message:delete", {"id": "1"}),
    ("message:delete", {"id": 0}),
    ("announce", {}),
    ("announce", {"body": "hi", "room": ""}),
    ("room:archive", {"room": "general", "archived": "yes"}),
    ("messages:recent", {"room": "general", "limit": 0}),
    ("audit:list", {"before": -1}),
    ("stats", ["not", "an", "object"]),
])
def test_bad_input_answers_invalid_and_changes_nothing(app, console, scene, event, payload):
    before = state_of(app)
    ack = acall(console, event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
    assert ack["error"]["field"]
    assert state_of(app) == before
    assert scene.is_connected("/public") and console.is_connected(ADMIN)


# -- stats ----------------------------------------------------------------------------

def test_stats_count_the_chat_connections_users_rooms_and_messages(auth, console):
    alice = chat(auth, "alice")
    alice_tab = auth.socket("alice")
    chat(auth, "bob")
    for n in range(3):
        call(alice, "message:send", {"room": "general", "body": f"m{n}", "client_id": f"c{n}"})
    call(alice_tab, "room:create", {"name": "Random"})
    ack = acall(console, "stats")
    assert ack == {"ok": True, "connections": 3, "users_online": 2, "rooms": 2,
                   "messages_total": 3, "messages_last_minute": 3,
                   "workers": [{"id": PROCESS_ID, "connections": 3}]}


def test_stats_stop_counting_a_connection_that_closed(auth, console):
    bob = chat(auth, "bob")
    assert acall(console, "stats")["connections"] == 1
    bob.disconnect("/public")
    ack = acall(console, "stats")
    assert (ack["connections"], ack["users_online"], ack["workers"][0]["connections"]) == (0, 0, 0)


def test_the_stats_push_reaches_every_console_of_the_process(app, auth, console):
    auth.create("eve", admin=True)
    eve = auth.socket("eve", namespace=ADMIN)
    chat(auth, "bob")
    live.stats_push.push_once(app)
    expected = acall(console, "stats")
    del expected["ok"]
    assert pushed(console, "stats") == [expected]
    assert pushed(eve, "stats") == [expected]


def test_the_stats_push_closes_consoles_whose_rights_lapsed(app, auth, console):
    auth.create("eve", admin=True)
    auth.create("mallory", admin=True)
    eve = auth.socket("eve", namespace=ADMIN)
    mallory = auth.socket("mallory", namespace=ADMIN)
    set_admin_in_db(app, "eve", False)
    mallory.http.post("/logout")
    live.stats_push.push_once(app)
    assert not eve.is_connected(ADMIN) and not mallory.is_connected(ADMIN)
    assert console.is_connected(ADMIN) and len(pushed(console, "stats")) == 1
    assert len(live.admins) == 1


def test_the_sweep_leaves_rightful_consoles_alone(app, console):
    with app.app_context():
        assert close_lapsed_consoles() == 0
    assert console.is_connected(ADMIN) and len(live.admins) == 1


def _message_at(app, moment: datetime, n: int) -> None:
    with app.app_context():
        user = db.session.execute(select(User)).scalars().first()
        room = db.session.execute(select(Room)).scalars().first()
        db.session.add(Message(room_id=room.id, user_id=user.id, client_id=f"t{n}",
                               body="x", created_at=moment))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("old,recent", [(0, 0), (40, 0), (0, 9), (1, 1), (37, 5), (100, 64)])
def test_messages_last_minute_counts_only_the_last_sixty_seconds(app, auth, console, old,
                                                                  recent):
    chat(auth, "bob")
    now = datetime.now(timezone.utc)
    for n in range(old):
        _message_at(app, now - timedelta(minutes=5) + timedelta(seconds=n), n)
    _message_at(app, now - timedelta(seconds=61), 10_000)  # just outside the window
    for n in range(recent):
        _message_at(app, now - timedelta(seconds=50) + timedelta(seconds=n * 0.5), 20_000 + n)
    ack = acall(console, "stats")
    assert (ack["messages_last_minute"], ack["messages_total"]) == (recent, old + 1 + recent)


# -- users ------------------------------------------------------------------------------

def test_users_list_shows_online_admin_and_ban_state(auth, console):
    chat(auth, "bob")
    auth.create("carol")
    acall(console, "user:ban", {"user": "carol", "reason": "spam"})
    users = {u["username"]: u for u in acall(console, "users:list")["users"]}
    assert sorted(users) == ["bob", "carol", "root"]
    bob, carol, root = users["bob"], users["carol"], users["root"]
    assert (bob["online"], bob["is_admin"], bob["banned"], bob["banned_until"]) == \
        (True, False, False, None)
    assert (carol["online"], carol["banned"], carol["banned_until"], carol["ban_reason"]) == \
        (False, True, None, "spam")
    assert (root["online"], root["is_admin"]) == (False, True)  # online means in the chat
    assert set(bob) >= {"id", "username", "online", "is_admin", "banned", "banned_until"}


@pytest.mark.parametrize("query,expected", [
    ("", ["a.b", "a_b", "Alice", "alicia", "root"]),
    ("ALI", ["Alice", "alicia"]),
    ("lic", ["Alice", "alicia"]),
    ("_", ["a_b"]),        # a LIKE wildcard, taken literally
    ("%", []),
    ("nobody", []),
])
def test_users_list_finds_names_containing_the_query_in_any_case(auth, console, query,
                                                                 expected):
    for name in ["Alice", "alicia", "a_b", "a.b"]:
        auth.create(name)
    users = acall(console, "users:list", {"query": query})["users"]
    assert [u["username"] for u in users] == expected


def test_users_list_honours_the_limit(auth, console):
    for n in range(5):
        auth.create(f"user{n}")
    assert len(acall(console, "users:list", {"limit": 3})["users"]) == 3


def test_kick_closes_every_chat_connection_of_the_user(auth, console):
    bob, bob_tab = chat(auth, "bob"), auth.socket("bob")
    alice = chat(auth, "alice")
    ack = acall(console, "user:kick", {"user": "bob", "reason": "calm down"})
    assert ack == {"ok": True, "disconnected": 2}
    assert received_before_close(bob, "kicked") == [{"reason": "calm down"}]
    assert received_before_close(bob_tab, "kicked") == [{"reason": "calm down"}]
    assert not bob.is_connected("/public") and not bob_tab.is_connected("/public")
    assert alice.is_connected("/public") and received(alice, "kicked") == []


def test_a_kicked_user_may_connect_again(auth, console):
    bob = chat(auth, "bob")
    acall(console, "user:kick", {"user": "bob"})
    assert not bob.is_connected("/public")
    assert bob.connect("/public") is None and bob.is_connected("/public")


def test_kicking_a_user_with_no_connection_closes_none(auth, console):
    auth.create("bob")
    assert acall(console, "user:kick", {"user": "bob"}) == {"ok": True, "disconnected": 0}


def test_kicking_an_unknown_user_answers_not_found(console):
    ack = acall(console, "user:kick", {"user": "ghost"})
    assert ack["error"]["code"] == "not_found" and ack["error"]["field"] == "user"


def test_ban_closes_the_users_connections_and_keeps_them_out(app, auth, console):
    bob, bob_tab = chat(auth, "bob"), auth.socket("bob")
    ack = acall(console, "user:ban", {"user": "bob", "reason": "spam"})
    assert ack["ok"] and ack["disconnected"] == 2
    assert ack["user"]["banned"] is True and ack["user"]["banned_until"] is None
    assert received_before_close(bob, "kicked") == [{"reason": "spam", "banned": True,
                                                     "until": None}]
    assert not bob.is_connected("/public") and not bob_tab.is_connected("/public")
    # The old cookie no longer signs in a socket, and signing in again is refused.
    assert bob.connect("/public") is None and not bob.is_connected("/public")
    response = app.test_client().post("/login", data={"username": "bob",
                                                      "password": "correct-horse"})
    assert response.status_code == 401 and "banned" in response.get_data(as_text=True)
    with app.app_context():
        sessions = db.session.execute(select(LoginSession.revoked_at)
                                      .join(User).where(User.username == "bob")).all()
        assert sessions and all(revoked is not None for (revoked,) in sessions)


def test_a_ban_with_minutes_ends_then(app, auth, console):
    auth.create("bob")
    ack = acall(console, "user:ban", {"user": "bob", "minutes": 90})
    until = parse_time(ack["user"]["banned_until"])
    expected = datetime.now(timezone.utc) + timedelta(minutes=90)
    assert abs((until - expected).total_seconds()) < 5
    assert user_row(app, "bob").banned is True


def test_a_ban_that_has_ended_no_longer_keeps_the_user_out(app, auth, console):
    auth.create("bob")
    acall(console, "user:ban", {"user": "bob", "minutes": 1})
    with app.app_context():  # a minute later
        db.session.execute(update(User).where(User.username_key == "bob").values(
            banned_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
        db.session.commit()
    assert [u["banned"] for u in acall(console, "users:list", {"query": "bob"})["users"]] == \
        [False]
    auth.login("bob")  # asserts the sign-in succeeded


@pytest.mark.parametrize("target,message", [
    ("root", "you cannot ban yourself"),
    ("eve", "an admin cannot be banned; demote them first"),
])
def test_ban_refuses_the_caller_and_other_admins(app, auth, console, target, message):
    auth.create("eve", admin=True)
    before = state_of(app)
    ack = acall(console, "user:ban", {"user": target})
    assert ack == {"ok": False, "error": {"code": "forbidden", "message": message,
                                          "field": "user"}}
    assert state_of(app) == before


def test_unban_lets_the_user_sign_in_again(app, auth, console):
    auth.create("bob")
    acall(console, "user:ban", {"user": "bob", "reason": "spam"})
    ack = acall(console, "user:unban", {"user": "bob"})
    assert ack["ok"] and ack["user"]["banned"] is False
    assert tuple(user_row(app, "bob")) == (False, False, None, None)
    bob = auth.socket("bob")
    assert bob.is_connected("/public")


def test_unbanning_a_user_who_is_not_banned_changes_nothing(app, auth, console):
    auth.create("bob")
    before = state_of(app)
    assert acall(console, "user:unban", {"user": "bob"})["ok"]
    assert state_of(app) == before


def test_a_promoted_user_may_open_the_console(app, auth, console):
    auth.create("bob")
    http = auth.login("bob")
    assert refused(app, http)
    ack = acall(console, "user:promote", {"user": "bob"})
    assert ack["ok"] and ack["user"]["is_admin"] is True
    assert not refused(app, http)


def test_a_demoted_admin_loses_the_console_at_once(app, auth, console):
    auth.create("eve", admin=True)
    eve = auth.socket("eve", namespace=ADMIN)
    ack = acall(console, "user:demote", {"user": "eve"})
    assert ack["ok"] and ack["user"]["is_admin"] is False
    assert not eve.is_connected(ADMIN)
    assert refused(app, eve.http)
    assert user_row(app, "eve").is_admin is False


def test_an_admin_cannot_demote_themself(app, console):
    before = state_of(app)
    ack = acall(console, "user:demote", {"user": "root"})
    assert ack["error"] == {"code": "forbidden", "message": "you cannot demote yourself",
                            "field": "user"}
    assert state_of(app) == before


def test_a_banned_user_cannot_be_promoted(app, auth, console):
    auth.create("bob")
    acall(console, "user:ban", {"user": "bob"})
    before = state_of(app)
    assert acall(console, "user:promote", {"user": "bob"})["error"]["code"] == "conflict"
    assert state_of(app) == before


# -- messages and announcements ---------------------------------------------------------

def test_deleting_a_message_reaches_the_rooms_members(app, auth, console):
    bob, alice = chat(auth, "bob"), chat(auth, "alice")
    message = call(bob, "message:send", {"room": "general", "body": "rude", "client_id": "m1"})
    received(bob), received(alice)
    assert acall(console, "message:delete", {"id": message["message"]["id"]}) == {"ok": True}
    deleted = {"id": message["message"]["id"], "room": "general"}
    assert without_cursor(received(alice, "message:deleted")) == [deleted]
    assert without_cursor(received(bob, "message:deleted")) == [deleted]
    assert call(alice, "message:history", {"room": "general"})["messages"] == []


def test_deleting_a_message_twice_or_one_that_never_was_answers_not_found(auth, console):
    bob = chat(auth, "bob")
    message = call(bob, "message:send", {"room": "general", "body": "x", "client_id": "m1"})
    acall(console, "message:delete", {"id": message["message"]["id"]})
    for message_id in (message["message"]["id"], 999):
        ack = acall(console, "message:delete", {"id": message_id})
        assert ack["error"]["code"] == "not_found" and ack["error"]["field"] == "id"


def test_recent_messages_include_private_rooms_and_leave_out_deleted_ones(auth, console):
    bob = auth.socket("bob")
    secret = call(bob, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    ids = [call(bob, "message:send", {"room": secret, "body": f"m{n}",
                                      "client_id": f"c{n}"})["message"]["id"] for n in range(4)]
    acall(console, "message:delete", {"id": ids[1]})
    ack = acall(console, "messages:recent", {"room": secret, "limit": 2})
    assert [m["body"] for m in ack["messages"]] == ["m2", "m3"] and ack["has_more"] is True
    older = acall(console, "messages:recent", {"room": secret, "before": ids[2]})
    assert [m["body"] for m in older["messages"]] == ["m0"] and older["has_more"] is False


def test_recent_messages_of_an_unknown_room_answer_not_found(console):
    assert acall(console, "messages:recent", {"room": "nowhere"})["error"]["code"] == "not_found"


def test_an_announcement_reaches_every_chat_connection(auth, console):
    bob, idle = chat(auth, "bob"), auth.socket("carol")
    ack = acall(console, "announce", {"body": "Maintenance at 22:00"})
    assert ack["ok"] and ack["announcement"]["room"] is None
    expected = [ack["announcement"]]
    assert received(bob, "announcement") == expected
    assert received(idle, "announcement") == expected
    assert expected[0]["body"] == "Maintenance at 22:00"
    parse_time(expected[0]["created_at"])


def test_a_room_announcement_reaches_only_that_rooms_connections(auth, console):
    bob = chat(auth, "bob", "general")
    carol = chat(auth, "carol", "random")
    ack = acall(console, "announce", {"body": "General: be kind", "room": "general"})
    assert ack["ok"]
    assert received(bob, "announcement") == [{"id": ack["announcement"]["id"],
                                              "body": "General: be kind",
                                              "created_at": ack["announcement"]["created_at"],
                                              "room": "general", "expires_at": None}]
    assert received(carol, "announcement") == []


@pytest.mark.parametrize("payload,code,field", [
    ({"body": "   "}, "invalid", "body"),
    ({"body": "x" * 4001}, "invalid", "body"),
    ({"body": "hi", "room": "nowhere"}, "not_found", "room"),
])
def test_an_announcement_is_checked_like_a_message(auth, console, payload, code, field):
    bob = chat(auth, "bob")
    ack = acall(console, "announce", payload)
    assert (ack["error"]["code"], ack["error"]["field"]) == (code, field)
    assert received(bob, "announcement") == []


# -- rooms -----------------------------------------------------------------------------------

def test_rooms_list_counts_members_and_live_messages(auth, console):
    bob, alice = chat(auth, "bob"), chat(auth, "alice")
    hidden = call(bob, "room:create", {"name": "Hidden", "private": True})["room"]["slug"]
    sent = [call(alice, "message:send", {"room": "general", "body": f"m{n}",
                                         "client_id": f"c{n}"}) for n in range(3)]
    acall(console, "message:delete", {"id": sent[0]["message"]["id"]})
    rooms = {r["slug"]: r for r in acall(console, "rooms:list")["rooms"]}
    assert (rooms["general"]["member_count"], rooms["general"]["message_count"]) == (2, 2)
    assert (rooms[hidden]["member_count"], rooms[hidden]["private"]) == (1, True)
    assert [r["slug"] for r in acall(console, "rooms:list", {"query": "HID"})["rooms"]] == \
        [hidden]


def test_an_archived_room_is_read_only_to_its_members(auth, console):
    bob = chat(auth, "bob")
    sent = call(bob, "message:send", {"room": "general", "body": "before", "client_id": "m1"})
    received(bob)
    ack = acall(console, "room:archive", {"room": "general"})
    assert ack["ok"] and ack["room"]["archived"] is True and ack["room"]["message_count"] == 1
    assert without_cursor(received(bob, "room:archived")) == [{"room": "general", "archived": True}]
    refused_send = call(bob, "message:send", {"room": "general", "body": "after",
                                              "client_id": "m2"})
    assert refused_send["error"]["code"] == "forbidden"
    refused_edit = call(bob, "message:edit", {"id": sent["message"]["id"], "body": "changed"})
    assert refused_edit["error"]["code"] == "forbidden"
    # Still readable, and a new connection is refused just the same.
    assert [m["body"] for m in call(bob, "room:join", {"room": "general"})["messages"]] == \
        ["before"]
    later = chat(auth, "bob")
    assert call(later, "message:send", {"room": "general", "body": "x",
                                        "client_id": "m3"})["error"]["code"] == "forbidden"


def test_a_reopened_room_takes_messages_again(auth, console):
    bob = chat(auth, "bob")
    acall(console, "room:archive", {"room": "general"})
    ack = acall(console, "room:archive", {"room": "general", "archived": False})
    assert ack["room"]["archived"] is False
    assert call(bob, "message:send", {"room": "general", "body": "back",
                                      "client_id": "m1"})["ok"]


def test_archiving_an_unknown_room_answers_not_found(console):
    assert acall(console, "room:archive", {"room": "nowhere"})["error"]["code"] == "not_found"


# -- the audit log ------------------------------------------------------------------------------

def test_each_admin_action_is_stored_then_pushed_to_every_console(app, auth, console):
    auth.create("eve", admin=True)
    eve = auth.socket("eve", namespace=ADMIN)
    bob = chat(auth, "bob")
    message = call(bob, "message:send", {"room": "general", "body": "rude  words",
                                         "client_id": "m1"})
    acall(console, "user:kick", {"user": "bob", "reason": "calm down"})
    acall(console, "user:ban", {"user": "bob", "minutes": 30, "reason": "spam"})
    acall(console, "user:unban", {"user": "bob"})
    acall(console, "message:delete", {"id": message["message"]["id"]})
    acall(console, "announce", {"body": "hello"})
    acall(console, "announce", {"body": "hi general", "room": "general"})
    acall(console, "room:archive", {"room": "general"})
    acall(console, "room:archive", {"room": "general", "archived": False})
    acall(console, "user:promote", {"user": "bob"})
    acall(console, "user:demote", {"user": "bob"})
    expected = [
        ("root", "user:kick", "bob", "1 connection closed: calm down"),
        ("root", "user:ban", "bob", "for 30 minutes: spam"),
        ("root", "user:unban", "bob", ""),
        ("root", "message:delete", "general",
         f"message {message['message']['id']} by bob: rude words"),
        ("root", "announce", "", "to every room: hello"),
        ("root", "announce", "general", "to general: hi general"),
        ("root", "room:archive", "general", ""),
        ("root", "room:unarchive", "general", ""),
        ("root", "user:promote", "bob", ""),
        ("root", "user:demote", "bob", ""),
    ]
    assert audit_rows(app) == expected
    for sock in (console, eve):
        entries = pushed(sock, "audit")
        assert [(e["actor"], e["action"], e["target"], e["detail"]) for e in entries] == expected
        assert all(set(e) == {"id", "at", "actor", "action", "target", "detail"}
                   for e in entries)
        parse_time(entries[0]["at"])


def test_the_audit_history_pages_back_from_the_newest(app, console):
    with app.app_context():
        from app.services import audit
        for n in range(7):
            audit.notice("root", "announce", "", f"entry {n}")
    newest = acall(console, "audit:list", {"limit": 3})
    assert [e["detail"] for e in newest["entries"]] == ["entry 4", "entry 5", "entry 6"]
    assert newest["has_more"] is True
    older = acall(console, "audit:list", {"before": newest["entries"][0]["id"], "limit": 10})
    assert [e["detail"] for e in older["entries"]] == [f"entry {n}" for n in range(4)]
    assert older["has_more"] is False
    with app.app_context():
        assert history(limit=1)[0][0]["detail"] == "entry 6"


@pytest.mark.parametrize("failures,entries", [(4, 0), (5, 1), (9, 1), (10, 2), (20, 3)])
def test_repeated_failed_sign_ins_are_audited_without_flooding(app, auth, console, failures,
                                                               entries):
    auth.create("bob")
    http = app.test_client()
    for _ in range(failures):
        response = http.post("/login", data={"username": "Bob", "password": "wrong-guess"})
        assert response.status_code == 401
    rows = [row for row in audit_rows(app) if row[1] == "sign-in:failed"]
    assert len(rows) == entries
    if entries:
        assert rows[0] == ("server", "sign-in:failed", "Bob",
                           "5 failed sign-ins within 10 minutes")
        assert [e["action"] for e in pushed(console, "audit")] == ["sign-in:failed"] * entries


def test_failed_sign_ins_of_unknown_usernames_count_too(app, console):
    http = app.test_client()
    for _ in range(5):
        http.post("/login", data={"username": "ghost", "password": "guess-guess"})
    for _ in range(5):  # not a possible username: not worth an entry
        http.post("/login", data={"username": "<script>", "password": "guess-guess"})
    assert [row[2] for row in audit_rows(app)] == ["ghost"]


def test_a_successful_sign_in_is_not_a_failure(app, auth, console):
    auth.create("bob")
    for _ in range(6):
        auth.login("bob")
    assert audit_rows(app) == []


# -- direct messages are private: a compliance read, always audited ---------------

def _dm_with_a_message(auth):
    bob = auth.socket("bob")
    auth.create("carol")
    room = call(bob, "dm:open", {"user": "carol"})["room"]["slug"]
    call(bob, "message:send", {"room": room, "body": "between us", "client_id": "d1"})
    return room


def test_reading_a_direct_message_without_a_reason_is_refused_and_reveals_nothing(
        app, auth, console):
    room = _dm_with_a_message(auth)
    for payload in ({"room": room}, {"room": room, "reason": "   "}):
        ack = acall(console, "messages:recent", payload)
        assert ack["ok"] is False and "messages" not in ack
        assert ack["error"]["code"] == "forbidden" and ack["error"]["field"] == "reason"
    assert in_db(app, select(AuditEntry.action).where(AuditEntry.action == "dm:read")) == []


def test_a_compliance_read_of_a_direct_message_is_audited_with_its_reason(app, auth, console):
    room = _dm_with_a_message(auth)
    ack = acall(console, "messages:recent", {"room": room, "reason": "report #12: harassment"})
    assert [m["body"] for m in ack["messages"]] == ["between us"]
    rows = in_db(app, select(AuditEntry.actor, AuditEntry.action, AuditEntry.target,
                             AuditEntry.detail).where(AuditEntry.action == "dm:read"))
    assert rows == [("root", "dm:read", room, "1 message: report #12: harassment")]
    audited = [e for e in pushed(console, "audit") if e["action"] == "dm:read"]
    assert [e["detail"] for e in audited] == ["1 message: report #12: harassment"]
