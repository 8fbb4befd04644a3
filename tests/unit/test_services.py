"""Services on their own: the rules each is the one place for."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.errors import Forbidden, Invalid, NotFound, Unauthenticated
from app.extensions import db
from app.models import LoginSession, User, isoformat, utcnow
from app.services import Actor, messages, rooms, users

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


def refused(error_type, fn, *args, **kwargs):
    with pytest.raises(error_type) as caught:
        fn(*args, **kwargs)
    return caught.value


# -- limits -----------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ("", "a message cannot be empty"),
    ("   ", "a message cannot be empty"),
    ("\n\t \r\n", "a message cannot be empty"),
    ("x" * 4001, "a message is at most 4000 characters"),
    (" " * 3999 + "xx", "a message is at most 4000 characters"),
])
def test_a_body_empty_after_trimming_or_over_4000_characters_is_invalid(ctx, body, message):
    error = refused(Invalid, messages.check_body, body)
    assert (error.code, error.field, error.message) == ("invalid", "body", message)


@pytest.mark.parametrize("body", ["x", "x" * 4000, "  indented\n  code  ", "\U0001F600" * 4000])
def test_a_body_of_1_to_4000_characters_is_kept_as_written(ctx, body):
    assert messages.check_body(body) == body


def test_the_body_limit_is_configurable(ctx):
    ctx.config["MESSAGE_MAX_LENGTH"] = 10
    assert messages.check_body("x" * 10) == "x" * 10
    assert refused(Invalid, messages.check_body, "x" * 11).message == \
        "a message is at most 10 characters"


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_a_room_name_must_be_1_to_64_characters(ctx, name):
    error = refused(Invalid, rooms.check_room_name, name)
    assert (error.code, error.field, error.message) == (
        "invalid", "name", "a room name is 1 to 64 characters")


@pytest.mark.parametrize("name, kept", [("x", "x"), ("x" * 64, "x" * 64),
                                        ("  Lobby  ", "Lobby")])
def test_a_room_name_is_trimmed(ctx, name, kept):
    assert rooms.check_room_name(name) == kept


def test_a_topic_is_at_most_256_characters(ctx):
    assert rooms.check_topic("t" * 256) == "t" * 256
    error = refused(Invalid, rooms.check_topic, "t" * 257)
    assert (error.field, error.message) == ("topic", "a topic is at most 256 characters")


@pytest.mark.parametrize("asked, used", [(None, 100), (1, 1), (100, 100), (500, 500),
                                         (501, 500), (10_000, 500)])
def test_a_history_limit_defaults_to_100_and_is_clamped_to_500(ctx, asked, used):
    assert messages.clamp_limit(asked) == used


# -- time and names ---------------------------------------------------------

@pytest.mark.parametrize("moment, text", [
    (datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=timezone.utc), "2026-11-22T10:00:00.123Z"),
    (datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc), "2026-11-22T10:00:00.000Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone.utc), "2026-01-02T03:04:05.999Z"),
    # another zone is converted to UTC, never written with an offset
    (datetime(2026, 11, 22, 11, 30, 0, 5000, tzinfo=timezone(timedelta(hours=1, minutes=30))),
     "2026-11-22T10:00:00.005Z"),
    # SQLite hands back naive datetimes: they are UTC already
    (datetime(2026, 11, 22, 10, 0, 0, 1000), "2026-11-22T10:00:00.001Z"),
    (None, None),
])
def test_times_are_written_in_utc_with_milliseconds_and_z(moment, text):
    assert isoformat(moment) == text


def test_now_is_written_in_the_contracts_format():
    assert TIME_FORMAT.match(isoformat(utcnow()))


@pytest.mark.parametrize("name, slug", [
    ("General", "general"),
    ("Off Topic", "off-topic"),
    ("  Café & Crème!  ", "cafe-creme"),
    ("C++ / Rust", "c-rust"),
    ("a" * 64, "a" * 48),
    ("--x--", "x"),
])
def test_a_room_address_is_its_name_in_lowercase_ascii(name, slug):
    assert rooms.slugify(name) == slug


@pytest.mark.parametrize("name", ["日本語", "!!!", "💬"])
def test_a_name_with_no_latin_letters_still_gets_an_address(name):
    slug = rooms.slugify(name)
    assert re.fullmatch(r"room-[0-9a-f]{6}", slug)
    assert rooms.slugify(name) != slug  # random, so two such rooms do not collide


# -- accounts ---------------------------------------------------------------

def test_a_password_is_stored_as_an_argon2id_hash(ctx):
    user = users.create_user("alice", "correct-horse")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct-horse" not in user.password_hash


def test_the_right_password_signs_in(ctx):
    users.create_user("alice", "correct-horse")
    assert users.authenticate("alice", "correct-horse").username == "alice"
    # Usernames are one regardless of case.
    assert users.authenticate("ALICE", "correct-horse").username == "alice"


def test_a_wrong_password_and_an_unknown_user_answer_alike(ctx):
    users.create_user("alice", "correct-horse")
    wrong = refused(Unauthenticated, users.authenticate, "alice", "battery-staple")
    unknown = refused(Unauthenticated, users.authenticate, "nobody", "correct-horse")
    malformed = refused(Unauthenticated, users.authenticate, "no body!", "correct-horse")
    assert wrong.message == unknown.message == malformed.message == "wrong username or password"


def test_a_banned_user_cannot_sign_in(ctx):
    user = users.create_user("mallory", "correct-horse")
    user.banned = True
    db.session.commit()
    error = refused(Forbidden, users.authenticate, "mallory", "correct-horse")
    assert error.message == "this account is banned until an admin lifts the ban"


def test_a_banned_users_sign_in_refusal_says_until_when_and_why(ctx):
    user = users.create_user("mallory", "correct-horse")
    user.banned, user.ban_reason = True, "spam"
    user.banned_until = datetime(2099, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    db.session.commit()
    error = refused(Forbidden, users.authenticate, "mallory", "correct-horse")
    assert error.message == "this account is banned until 2099-01-02 03:04 UTC: spam"


def test_a_ban_that_has_ended_no_longer_keeps_a_user_out(ctx):
    user = users.create_user("mallory", "correct-horse")
    user.banned, user.banned_until = True, utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert users.authenticate("mallory", "correct-horse").id == user.id


def test_a_ban_with_an_end_keeps_a_user_out_until_then(ctx):
    user = users.create_user("mallory", "correct-horse")
    user.banned, user.banned_until = True, utcnow() + timedelta(minutes=1)
    db.session.commit()
    refused(Forbidden, users.authenticate, "mallory", "correct-horse")


def test_a_hash_made_with_older_parameters_is_upgraded_at_sign_in(ctx):
    user = users.create_user("alice", "correct-horse")
    old_hash = user.password_hash
    ctx.config["PASSWORD_TIME_COST"] = 2
    users.authenticate("alice", "correct-horse")
    stored = db.session.execute(select(User.password_hash)).scalar_one()
    assert stored != old_hash and "t=2" in stored
    assert users.authenticate("alice", "correct-horse").id == user.id


@pytest.mark.parametrize("username, password, field", [
    ("a", "correct-horse", "username"),
    ("a" * 33, "correct-horse", "username"),
    ("has space", "correct-horse", "username"),
    ("alice", "short", "password"),
    ("alice", "p" * 1025, "password"),
])
def test_an_account_needs_a_valid_username_and_password(ctx, username, password, field):
    error = refused(Invalid, users.create_user, username, password)
    assert error.field == field
    assert db.session.execute(select(User)).first() is None


def test_a_username_is_taken_regardless_of_case(ctx):
    users.create_user("alice", "correct-horse")
    assert refused(Exception, users.create_user, "Alice", "correct-horse").code == "conflict"


# -- sign-in sessions -------------------------------------------------------

def test_a_live_session_token_loads_its_user(ctx):
    user = users.create_user("alice", "correct-horse")
    token = users.start_session(user).token
    db.session.remove()
    loaded = users.load_session(token)
    assert loaded.id == user.id and loaded.get_id() == token


def test_ending_a_session_makes_its_token_load_no_one(ctx):
    user = users.create_user("alice", "correct-horse")
    user_id = user.id
    token = users.start_session(user).token
    other = users.start_session(user).token
    users.end_session(token)
    db.session.remove()
    assert users.load_session(token) is None
    assert users.load_session(other).id == user_id  # the other sign-in lives on
    revoked_at = db.session.get(LoginSession, token).revoked_at
    users.end_session(token)  # ending it again changes nothing
    assert db.session.get(LoginSession, token).revoked_at == revoked_at


@pytest.mark.parametrize("token", ["", "no-such-token"])
def test_an_unknown_token_loads_no_one(ctx, token):
    assert users.load_session(token) is None


def test_ending_all_sessions_signs_out_everywhere(ctx):
    user = users.create_user("alice", "correct-horse")
    tokens = [users.start_session(user).token for _ in range(3)]
    users.end_all_sessions(user)
    assert [users.load_session(t) for t in tokens] == [None, None, None]


# -- rooms and messages without a socket ------------------------------------

def test_get_user_of_an_unknown_name_is_not_found(ctx):
    error = refused(NotFound, users.get_user, "nobody")
    assert (error.code, error.field) == ("not_found", "user")


def test_history_pages_are_ascending_and_say_whether_more_remain(ctx):
    alice = Actor.of(users.create_user("alice", "correct-horse"))
    rooms.create_room(alice, "General")
    room = rooms.member_room(alice, "general")
    ids = [messages.send(alice, room, f"m{i}", f"c{i}")["id"] for i in range(5)]
    latest, more = messages.history(alice, "general", limit=2)
    assert ([m["id"] for m in latest], more) == (ids[3:], True)
    assert latest == messages.history(alice, "general", after=ids[2])[0]
    page, more = messages.history(alice, "general", before=ids[3], limit=2)
    assert ([m["id"] for m in page], more) == (ids[1:3], True)
    page, more = messages.history(alice, "general", after=ids[0], limit=3)
    assert ([m["id"] for m in page], more) == (ids[1:4], True)
