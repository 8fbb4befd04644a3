"""Authentication and authorization: who may connect, and who may do what.

Cross-site WebSocket hijacking (a foreign Origin) is refused in the Engine.IO
handshake, which the Flask-SocketIO test client skips: that case is in
test_abuse.py against a real server.
"""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select, update

from app import create_app
from app.extensions import db, socketio
from app.models import Membership, Message, Room, User
from app.sockets.admin import AdminNamespace
from tests.conftest import call, received, without_cursor
from tests.hardening.conftest import audit_rows, in_db
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
    secret = call(bob, "room:create", {"name": "secret", "private": True})["room"]["slug"]
    call(bob, "room:invite", {"room": secret, "user": "carol"})
    for sock in (bob, carol, carol_tab):
        assert call(sock, "room:join", {"room": secret})["ok"]
    assert call(carol, "room:leave", {"room": secret})["ok"]
    received(carol_tab)
    call(bob, "message:send", {"room": secret, "body": "after", "client_id": "a1"})
    assert received(carol_tab, "message") == []
    assert call(carol_tab, "message:history", {"room": secret})["error"]["code"] == "not_found"


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


# -- direct messages cannot be captured (issue 12 §1) -------------------------------------

DM_LOOKALIKES = ["dm-1-2", "DM 1 2", "Dm_1_2", "dm 1-2", "ｄｍ－１－２", "dm\u200b-1-2", "dm",
                 "DM -- 1 -- 2!", "d\u0308m 1 2"]


def members(app, slug: str) -> list[int]:
    return sorted(uid for (uid,) in in_db(
        app, select(Membership.user_id).join(Room, Room.id == Membership.room_id)
        .where(Room.slug == slug)))


@pytest.mark.parametrize("name", DM_LOOKALIKES)
def test_no_room_name_makes_a_slug_in_the_dm_address_space(auth, name):
    mallory = auth.socket("mallory")
    ack = call(mallory, "room:create", {"name": name})
    assert ack["ok"], ack
    assert not ack["room"]["slug"].startswith("dm-") and ack["room"]["slug"] != "dm"
    assert ack["room"]["dm"] is False


def test_a_room_named_like_a_dm_never_becomes_the_dm(app, auth):
    alice_id, bob_id = auth.create("alice"), auth.create("bob")
    mallory = auth.socket("mallory")
    traps = [call(mallory, "room:create", {"name": f"dm-{alice_id}-{bob_id}"})["room"]["slug"],
             call(mallory, "room:create", {"name": f"dm-{alice_id}-{bob_id}",
                                           "private": True})["room"]["slug"]]
    alice, bob = auth.socket("alice"), auth.socket("bob")
    dm = call(alice, "dm:open", {"user": "bob"})["room"]
    assert dm["slug"] not in traps and dm["dm"] is True and dm["owner_id"] is None
    assert members(app, dm["slug"]) == [alice_id, bob_id]
    call(alice, "room:join", {"room": dm["slug"]})
    call(alice, "message:send", {"room": dm["slug"], "body": "just us", "client_id": "d1"})
    assert call(mallory, "message:history", {"room": dm["slug"]})["error"]["code"] == \
        "not_found"
    for trap in traps:
        assert members(app, trap) == [in_db(app, select(User.id).where(
            User.username == "mallory"))[0][0]]
    assert call(bob, "dm:open", {"user": "alice"})["room"]["slug"] == dm["slug"]


def test_dm_open_never_adopts_a_room_made_at_a_dm_address_before(app, auth):
    """A database from before: mallory's room sits at the pair's old DM slug."""
    alice_id, bob_id, mallory_id = (auth.create(n) for n in ("alice", "bob", "mallory"))
    legacy = f"dm-{alice_id}-{bob_id}"
    with app.app_context():
        room = Room(slug=legacy, name="alice & bob", private=True, owner_id=mallory_id)
        db.session.add(room)
        db.session.flush()
        db.session.add(Membership(room_id=room.id, user_id=mallory_id))
        db.session.commit()
        db.session.remove()
    dm = call(auth.socket("alice"), "dm:open", {"user": "bob"})["room"]
    assert dm["slug"] != legacy
    assert members(app, legacy) == [mallory_id]
    assert members(app, dm["slug"]) == [alice_id, bob_id]


def test_a_dm_slug_is_not_derived_from_the_user_ids(auth):
    alice_id, bob_id = auth.create("alice"), auth.create("bob")
    slug = call(auth.socket("alice"), "dm:open", {"user": "bob"})["room"]["slug"]
    assert slug.startswith("dm-") and str(alice_id) not in slug[3:].split("-")
    assert slug != f"dm-{alice_id}-{bob_id}"


def plant_rooms_posing_as_dms(app) -> tuple[str, str]:
    """A room:create room at a DM address, and a DM with a third member."""
    alice_id, bob_id, mallory_id = 1, 2, 3
    with app.app_context():
        made = Room(slug="dm-1-2", name="trap", private=True, owner_id=mallory_id)
        crowded = Room(slug="dm-abc", name="x & y", private=True, is_dm=True,
                       dm_low_id=alice_id, dm_high_id=bob_id)
        db.session.add_all([made, crowded])
        db.session.flush()
        db.session.add_all([Membership(room_id=made.id, user_id=mallory_id),
                            Membership(room_id=crowded.id, user_id=mallory_id)])
        db.session.commit()
        slugs = made.slug, crowded.slug
        db.session.remove()
    return slugs


def test_check_rooms_lists_the_rooms_posing_as_dms_and_fails(app, auth):
    for name in ("alice", "bob", "mallory"):
        auth.create(name)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["check-rooms"]).exit_code == 0
    made, crowded = plant_rooms_posing_as_dms(app)
    result = runner.invoke(args=["check-rooms"])
    assert result.exit_code == 1
    assert f"{made}: in the DM address space but not made as a DM (owner id 3)" in result.output
    assert f"{crowded}: a DM with members other than its pair (user ids [3])" in result.output


def test_the_server_warns_at_start_of_rooms_posing_as_dms(app, auth, caplog):
    for name in ("alice", "bob", "mallory"):
        auth.create(name)
    made, crowded = plant_rooms_posing_as_dms(app)
    with caplog.at_level(logging.WARNING, logger="app"):
        app.extensions["parley_start"]()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert made in warnings[0] and crowded in warnings[0] and "check-rooms" in warnings[0]


# -- a non-member cannot tell a private room, a DM or a message from nothing (§1) ----------

def test_room_create_with_the_name_of_a_room_one_cannot_see_reveals_nothing(app, auth):
    bob, mallory = auth.socket("bob"), auth.socket("mallory")
    secret = call(bob, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    # A private room from before unlisted slugs, at its readable address.
    with app.app_context():
        db.session.add(Room(slug="hq", name="HQ", private=True, owner_id=1))
        db.session.commit()
        db.session.remove()
    for name in ("Secret", "HQ"):
        for private in (False, True):
            ack = call(mallory, "room:create", {"name": name, "private": private})
            assert ack["ok"], ack
            assert ack["room"]["slug"] not in (secret, "hq")
            assert ack["room"]["member_count"] == 1
    # A room mallory can see is listed to her anyway: that conflict tells her nothing new.
    call(bob, "room:create", {"name": "Lobby"})
    assert call(mallory, "room:create", {"name": "lobby"})["error"]["code"] == "conflict"


def test_a_private_rooms_slug_is_unlisted_and_never_collides(auth):
    bob, carol = auth.socket("bob"), auth.socket("carol")
    first = call(bob, "room:create", {"name": "Team", "private": True})["room"]["slug"]
    second = call(carol, "room:create", {"name": "Team", "private": True})["room"]["slug"]
    public = call(carol, "room:create", {"name": "Team"})["room"]["slug"]
    assert first != second and first.startswith("team_") and second.startswith("team_")
    assert public == "team"


def invisible_message(auth, *, dm: bool) -> int:
    bob = auth.socket("bob")
    if dm:
        auth.create("carol")
        slug = call(bob, "dm:open", {"user": "carol"})["room"]["slug"]
    else:
        slug = call(bob, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(bob, "room:join", {"room": slug})
    return call(bob, "message:send", {"room": slug, "body": "ours",
                                      "client_id": "b1"})["message"]["id"]


@pytest.mark.parametrize("dm", [False, True], ids=["private room", "dm"])
@pytest.mark.parametrize("event, extra", [("message:edit", {"body": "mine now"}),
                                          ("message:delete", {})])
def test_changing_a_message_one_cannot_see_answers_like_a_missing_id(app, auth, dm, event,
                                                                     extra):
    message_id = invisible_message(auth, dm=dm)
    mallory = auth.socket("mallory")
    before = snapshot(app)
    missing = call(mallory, event, {"id": message_id + 1000, **extra})
    assert missing["error"] == {"code": "not_found", "message": "no such message",
                                "field": "id"}
    assert call(mallory, event, {"id": message_id, **extra}) == missing
    assert snapshot(app) == before


def test_every_room_event_answers_an_outsider_of_a_dm_like_a_missing_room(app, auth):
    bob = auth.socket("bob")
    auth.create("carol")
    slug = call(bob, "dm:open", {"user": "carol"})["room"]["slug"]
    mallory = auth.socket("mallory")
    before = snapshot(app)
    for event, payload in [("room:join", {}), ("room:leave", {}), ("message:history", {}),
                           ("room:read", {"last_read_id": 1}), ("room:invite", {"user": "x"}),
                           ("room:remove", {"user": "carol"}), ("room:delete", {}),
                           ("message:send", {"body": "hi", "client_id": "m1"})]:
        missing = call(mallory, event, {"room": "dm-nothing-here", **payload})
        assert missing["error"]["code"] == "not_found", (event, missing)
        assert call(mallory, event, {"room": slug, **payload}) == missing, event
    assert snapshot(app) == before


# -- rights end with membership (§1) --------------------------------------------------------

@pytest.fixture
def left_room(app, auth):
    """bob owns the private room, carol posted in it, and both have left."""
    auth.create("root", admin=True)
    bob, carol = auth.socket("bob"), auth.socket("carol")
    slug = call(bob, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(bob, "room:invite", {"room": slug, "user": "carol"})
    for sock in (bob, carol):
        call(sock, "room:join", {"room": slug})
    ids = {who: call(sock, "message:send", {"room": slug, "body": f"{who}'s",
                                            "client_id": f"{who}-1"})["message"]["id"]
           for who, sock in (("bob", bob), ("carol", carol))}
    for sock in (bob, carol):
        assert call(sock, "room:leave", {"room": slug})["ok"]
    return {"bob": bob, "carol": carol, "ids": ids, "slug": slug}


def live_bodies(app, ids) -> list:
    return in_db(app, select(Message.body, Message.deleted).where(Message.id.in_(ids))
                 .order_by(Message.id))


def test_an_owner_who_left_cannot_delete_others_messages(app, left_room):
    ack = call(left_room["bob"], "message:delete", {"id": left_room["ids"]["carol"]})
    assert ack["error"] == {"code": "not_found", "message": "no such message", "field": "id"}
    assert live_bodies(app, [left_room["ids"]["carol"]]) == [("carol's", False)]


@pytest.mark.parametrize("event, extra", [("message:edit", {"body": "changed"}),
                                          ("message:delete", {})])
def test_an_author_who_left_a_private_room_cannot_change_their_message(app, left_room,
                                                                      event, extra):
    ack = call(left_room["carol"], event, {"id": left_room["ids"]["carol"], **extra})
    assert ack["error"] == {"code": "not_found", "message": "no such message", "field": "id"}
    assert live_bodies(app, [left_room["ids"]["carol"]]) == [("carol's", False)]


def test_an_admin_deletes_in_a_private_room_without_being_a_member(app, auth, left_room):
    root = auth.socket("root")
    assert call(root, "message:delete", {"id": left_room["ids"]["carol"]}) == {"ok": True}
    assert live_bodies(app, [left_room["ids"]["carol"]]) == [("carol's", True)]


def test_an_author_in_a_public_room_changes_their_message_without_being_a_member(app, auth):
    bob = auth.socket("bob")
    call(bob, "room:create", {"name": "Lobby"})
    call(bob, "room:join", {"room": "lobby"})
    message_id = call(bob, "message:send", {"room": "lobby", "body": "hi",
                                            "client_id": "b1"})["message"]["id"]
    call(bob, "room:leave", {"room": "lobby"})
    assert call(bob, "message:edit", {"id": message_id, "body": "hello"})["ok"]
    assert call(bob, "message:delete", {"id": message_id})["ok"]


# -- dm:open is capped, room:create conflicts spend the cap (§3) ----------------------------

@pytest.mark.parametrize("app_config", [{"DM_OPEN_RATE_LIMIT": "2 per hour"}])
def test_new_direct_messages_are_capped_and_reopening_is_free(app, auth):
    for name in ("b1", "b2", "b3"):
        auth.create(name)
    alice = auth.socket("alice")
    assert [call(alice, "dm:open", {"user": n})["ok"] for n in ("b1", "b2")] == [True, True]
    ack = call(alice, "dm:open", {"user": "b3"})
    assert ack["error"]["code"] == "rate_limited" and ack["error"]["retry_after"] > 60
    assert call(alice, "dm:open", {"user": "b1"})["ok"]  # an existing DM is free
    assert len(in_db(app, select(Room.id).where(Room.is_dm.is_(True)))) == 2
    assert ("server", "rate-limit:dm_open", "alice") in audit_rows(app)


@pytest.mark.parametrize("app_config", [{"ROOM_CREATE_RATE_LIMIT": "2 per hour"}])
def test_room_create_conflicts_spend_the_cap_so_names_cannot_be_probed_past_it(app, auth):
    call(auth.socket("bob"), "room:create", {"name": "Lobby"})
    mallory = auth.socket("mallory")
    codes = [call(mallory, "room:create", {"name": "lobby"})["error"]["code"] for _ in range(3)]
    assert codes == ["conflict", "conflict", "rate_limited"]
    assert call(mallory, "room:create", {"name": "fresh"})["error"]["code"] == "rate_limited"


# -- contract points (§5) ---------------------------------------------------------------

def test_an_admin_who_is_not_a_member_invites_to_a_private_room(app, auth):
    auth.create("root", admin=True)
    bob, root = auth.socket("bob"), auth.socket("root")
    carol = auth.socket("carol")
    slug = call(bob, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    assert call(root, "room:invite", {"room": slug, "user": "carol"}) == {"ok": True}
    assert [a["room"]["slug"] for a in received(carol, "room:added")] == [slug]
    assert in_db(app, select(func.count()).select_from(Membership)
                 .join(Room, Room.id == Membership.room_id).where(Room.slug == slug)) == [(2,)]
    # A DM still takes no third member, admin or not.
    auth.create("dave")
    dm = call(bob, "dm:open", {"user": "dave"})["room"]["slug"]
    assert call(root, "room:invite", {"room": dm, "user": "carol"})["error"]["code"] == \
        "forbidden"


INVISIBLE = ["\u200b", "\ufeff", "\u2060", "\u200d\u200c", "\u00ad", "\u180e", "\u3164",
             "\u2800", " \u200b\n\t", "\U000e0020\U000e0041", "\ufe0f", "\u202e\u2066",
             "\u034f", "\u3000\u2028"]


@pytest.mark.parametrize("body", INVISIBLE)
def test_a_body_of_only_invisible_characters_is_empty(app, auth, body):
    auth.create("root", admin=True)
    bob = auth.socket("bob")
    call(bob, "room:create", {"name": "Lobby"})
    call(bob, "room:join", {"room": "lobby"})
    message_id = call(bob, "message:send", {"room": "lobby", "body": "hi",
                                            "client_id": "b0"})["message"]["id"]
    console = auth.socket("root", namespace=ADMIN)
    before = snapshot(app)
    empty = {"code": "invalid", "message": "a message cannot be empty", "field": "body"}
    assert call(bob, "message:send", {"room": "lobby", "body": body,
                                      "client_id": "b1"})["error"] == empty
    assert call(bob, "message:edit", {"id": message_id, "body": body})["error"] == empty
    assert call(bob, "room:create", {"name": body})["error"]["field"] == "name"
    assert call(console, "announce", {"body": body}, namespace=ADMIN)["error"] == empty
    assert snapshot(app) == before
    assert call(bob, "room:create", {"name": "Topics", "topic": body})["room"]["topic"] == ""


def test_visible_text_around_invisible_characters_is_kept(auth):
    bob = auth.socket("bob")
    call(bob, "room:create", {"name": "Lobby"})
    call(bob, "room:join", {"room": "lobby"})
    for body in ("a\u200b", "\u200bb", "👍🏽", "\u0301", "x\ufe0f"):
        ack = call(bob, "message:send", {"room": "lobby", "body": body, "client_id": body})
        assert ack["ok"] and ack["message"]["body"] == body


def test_a_client_id_reused_in_another_room_is_a_conflict(app, auth):
    bob = auth.socket("bob")
    for name in ("One", "Two"):
        call(bob, "room:create", {"name": name})
        call(bob, "room:join", {"room": name.lower()})
    first = call(bob, "message:send", {"room": "one", "body": "hi", "client_id": "c1"})
    # A retry in the same room acks the stored message; elsewhere it is refused.
    assert call(bob, "message:send", {"room": "one", "body": "hi",
                                      "client_id": "c1"}) == first
    ack = call(bob, "message:send", {"room": "two", "body": "hi", "client_id": "c1"})
    assert ack["error"] == {"code": "conflict", "field": "client_id",
                            "message": "this client_id already names a message in another room"}
    assert call(bob, "message:history", {"room": "two"})["messages"] == []
    assert without_cursor(received(bob, "message")) == [first["message"]]


def test_replaying_the_client_id_of_a_deleted_message_answers_not_found(app, auth):
    bob = auth.socket("bob")
    call(bob, "room:create", {"name": "One"})
    call(bob, "room:join", {"room": "one"})
    message_id = call(bob, "message:send", {"room": "one", "body": "oops",
                                            "client_id": "c1"})["message"]["id"]
    assert call(bob, "message:delete", {"id": message_id})["ok"]
    before = snapshot(app)
    ack = call(bob, "message:send", {"room": "one", "body": "oops", "client_id": "c1"})
    assert ack["error"] == {"code": "not_found", "field": "client_id",
                            "message": "the message sent with this client_id has been deleted"}
    assert snapshot(app) == before
    assert call(bob, "message:history", {"room": "one"})["messages"] == []
