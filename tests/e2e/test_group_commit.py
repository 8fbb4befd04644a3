"""Group commit (app/services/send_queue.py) against a real gunicorn.

Many sends at once are written in shared transactions; each is still acked
once, after its commit, with its own id; every member sees each message once
and in the order of record; a replayed ``client_id`` stores nothing new
whether it lands in the same batch or a later one; a row the database
refuses fails alone; a database that cannot be written gives error acks and
no phantom message. On SQLite with one worker, and on PostgreSQL with two
workers (on Redis), whose writers contend for the rooms' rows.
"""
from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support import postgres
from tests.support.server import RedisServer, flask_cli, wait_until

from .conftest import NS, create_users, e2e_env, start_server, stop_server

pytestmark = pytest.mark.e2e

PEERS = 8
ROOMS = 4
SENDS_PER_PEER = 40


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("group-commit") / "parley.sqlite3"


@pytest.fixture(scope="module")
def gc_sqlite(sqlite_file):
    env = e2e_env(f"sqlite:///{sqlite_file}")
    flask_cli(env, "init-db")
    create_users(env)
    server = start_server(env, "group-commit-sqlite")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def gc_postgres_url(postgres_url):
    """A database of this module's own (the suite's is shared by its pg_server)."""
    with postgres.throwaway_database() as url:
        yield url


@pytest.fixture(scope="module")
def gc_postgres(gc_postgres_url):
    """Two workers on one PostgreSQL database, broadcasting through Redis."""
    postgres_url = gc_postgres_url
    redis = RedisServer().start()
    env = e2e_env(postgres_url, WEB_CONCURRENCY="2", REDIS_URL=redis.url,
                  WEBSOCKET_ONLY="true")
    flask_cli(env, "init-db")
    create_users(env)
    server = start_server(env, "group-commit-postgres")
    yield server
    stop_server(server)
    redis.stop()


@pytest.fixture
def target(request):
    return request.getfixturevalue({"sqlite": "gc_sqlite", "postgres": "gc_postgres"}[
        getattr(request, "param", "sqlite")])


BOTH = pytest.mark.parametrize(
    "target", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def rows(target, sqlite_file: Path, postgres_url: str | None, query: str, params=()):
    """Rows from the server's database (``?`` placeholders)."""
    if target.env["DATABASE_URL"].startswith("sqlite"):
        with sqlite3.connect(sqlite_file) as conn:
            return [tuple(r) for r in conn.execute(query, params).fetchall()]
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query.replace("?", "%s"), params).fetchall()]


@pytest.fixture
def db_rows(request, target, sqlite_file):
    url = request.getfixturevalue("gc_postgres_url") if "postgres" in target.env[
        "DATABASE_URL"] else None
    return lambda query, params=(): rows(target, sqlite_file, url, query, params)


class Acks:
    def __init__(self):
        self.lock = threading.Lock()
        self.got: list[tuple[dict, dict]] = []

    def emit(self, peer, payload: dict) -> None:
        peer.sio.emit("message:send", payload, namespace=NS,
                      callback=lambda ack, payload=payload: self._keep(payload, ack))

    def _keep(self, payload, ack):
        with self.lock:
            self.got.append((payload, ack))

    def wait(self, count: int, timeout: float = 60) -> list[tuple[dict, dict]]:
        wait_until(lambda: len(self.got) >= count, timeout,
                   message=f"{len(self.got)} of {count} acks arrived")
        return list(self.got)


def messages_in(peer, room: str) -> list[dict]:
    return [m for m in peer.got("message") if m["room"] == room]


@BOTH
def test_concurrent_sends_are_each_acked_once_and_every_member_gets_them_in_order(
        target, peers, db_rows):
    members = [peers(("alice", "bob")[i % 2]) for i in range(PEERS)]
    rooms = [members[0].create_room() for _ in range(ROOMS)]
    for member in members:
        for room in rooms:
            member.ok("room:join", {"room": room})
    acks = Acks()
    for i in range(SENDS_PER_PEER):
        for n, member in enumerate(members):
            acks.emit(member, {"room": rooms[(i + n) % ROOMS], "body": f"{n}:{i}",
                               "client_id": uuid.uuid4().hex})
    total = PEERS * SENDS_PER_PEER
    got = acks.wait(total)

    assert [ack for _, ack in got if not ack["ok"]] == []
    ids = [ack["message"]["id"] for _, ack in got]
    assert len(set(ids)) == total
    for payload, ack in got:
        assert (ack["message"]["room"], ack["message"]["body"],
                ack["message"]["client_id"]) == (payload["room"], payload["body"],
                                                 payload["client_id"])
    for room in rooms:
        acked = sorted(ack["message"]["id"] for payload, ack in got if payload["room"] == room)
        for member in members:
            wait_until(lambda: len(messages_in(member, room)) >= len(acked), 30,
                       message=f"{member.username} is missing messages of {room}")
        for member in members:
            seen = messages_in(member, room)
            assert sorted(m["id"] for m in seen) == acked  # each once, none lost
            by_cursor = sorted(seen, key=lambda m: m["cursor"])
            # Positions are dense and in the order of the ids.
            assert [m["id"] for m in by_cursor] == acked
            assert [m["cursor"] for m in by_cursor] == list(
                range(by_cursor[0]["cursor"], by_cursor[0]["cursor"] + len(acked)))
            if target.env.get("WEB_CONCURRENCY", "1") == "1":
                # One process publishes in the order of record.
                assert [m["id"] for m in seen] == acked
        stored = db_rows("SELECT m.id, c.position FROM messages m"
                         " JOIN rooms r ON r.id = m.room_id"
                         " JOIN room_changes c ON c.message_id = m.id"
                         " WHERE r.slug = ? ORDER BY m.id", (room,))
        assert [mid for mid, _ in stored] == acked
        assert [pos for _, pos in stored] == sorted(pos for _, pos in stored)


@BOTH
def test_a_client_id_replayed_in_the_same_batch_and_a_later_one_stores_one_message(
        target, peers, db_rows):
    alice, again, bob = peers("alice"), peers("alice"), peers("bob")
    room = alice.create_room()
    for peer in (alice, again, bob):
        peer.ok("room:join", {"room": room})
    client_id = uuid.uuid4().hex
    acks = Acks()
    # Sent together from two connections of the same author, among other sends.
    for i in range(10):
        acks.emit(alice if i % 2 else again, {"room": room, "body": "once",
                                             "client_id": client_id})
        acks.emit(bob, {"room": room, "body": f"other {i}", "client_id": uuid.uuid4().hex})
    got = acks.wait(20)
    later = alice.send(room, "once", client_id=client_id)

    replays = [ack for payload, ack in got if payload["client_id"] == client_id]
    assert all(ack["ok"] for _, ack in got), got
    assert {ack["message"]["id"] for ack in replays} == {later["id"]}
    assert db_rows("SELECT count(*) FROM messages WHERE client_id = ?", (client_id,)) == [(1,)]
    bob.wait_for("message", lambda m: m["body"] == "other 9")
    wait_until(lambda: len(messages_in(bob, room)) >= 11, 10)
    assert [m["id"] for m in messages_in(bob, room) if m["client_id"] == client_id] == [
        later["id"]]


@BOTH
def test_replies_and_mentions_written_together_carry_their_quotes_and_a_bad_reply_to_fails_alone(
        target, peers, db_rows):
    alice, bob = peers("alice"), peers("bob")
    room, elsewhere = alice.create_room(), alice.create_room()
    for peer in (alice, bob):
        peer.ok("room:join", {"room": room})
    alice.ok("room:join", {"room": elsewhere})
    original = bob.send(room, "the   original\ntext")
    foreign = alice.send(elsewhere, "another room's")
    bob_id = original["user"]["id"]
    bad = {5: 10**12, 11: foreign["id"]}  # no such message; another room's
    acks = Acks()
    for i in range(24):
        payload = {"room": room, "body": f"@bob reply {i}" if i % 3 == 0 else f"reply {i}",
                   "client_id": uuid.uuid4().hex, "reply_to": bad.get(i, original["id"])}
        acks.emit(alice, payload)
    got = acks.wait(24)

    refused = sorted(payload["body"] for payload, ack in got if not ack["ok"])
    assert refused == ["reply 11", "reply 5"]
    assert all(ack == {"ok": False, "error": {
        "code": "not_found", "field": "reply_to",
        "message": "no such message in this room to reply to"}}
        for _, ack in got if not ack["ok"])
    stored = sorted((ack["message"] for _, ack in got if ack["ok"]), key=lambda m: m["id"])
    assert len(stored) == 22
    for message in stored:
        assert message["reply_to"] == {
            "id": original["id"], "deleted": False, "excerpt": "the original text",
            "author": original["user"]}
        assert message["reactions"] == []
        assert message["mentions"] == ([bob_id] if message["body"].startswith("@") else [])
        assert message["mentions_room"] is False
    # Positions stay dense past the refused sends, in the order of the ids.
    wait_until(lambda: len(messages_in(bob, room)) >= 23, 20)
    seen = [m for m in messages_in(bob, room) if m["id"] != original["id"]]
    assert [m["id"] for m in sorted(seen, key=lambda m: m["cursor"])] == [m["id"] for m in stored]
    cursors = sorted(m["cursor"] for m in messages_in(bob, room))
    assert cursors == list(range(cursors[0], cursors[0] + 23))
    assert {m["id"]: m["reply_to"] for m in seen} == {m["id"]: m["reply_to"] for m in stored}
    mentioned = [m["id"] for m in stored if m["mentions"]]
    wait_until(lambda: len(bob.got("mention")) >= len(mentioned), 20)
    assert sorted(p["message"]["id"] for p in bob.got("mention")) == mentioned
    assert db_rows("SELECT count(*) FROM message_mentions WHERE user_id = ? AND message_id"
                   " IN (SELECT m.id FROM messages m JOIN rooms r ON r.id = m.room_id"
                   " WHERE r.slug = ?)", (bob_id, room)) == [(len(mentioned),)]
    assert db_rows("SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id"
                   " WHERE r.slug = ? AND m.reply_to_id = ?", (room, original["id"])) == [(22,)]


def test_a_reply_whose_client_id_is_stored_is_answered_as_its_replay_whatever_its_reply_to(
        gc_sqlite, peers):
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    first = alice.send(room, "first")
    client_id = uuid.uuid4().hex
    reply = alice.ok("message:send", {"room": room, "body": "answer", "client_id": client_id,
                                      "reply_to": first["id"]})["message"]

    again = alice.call("message:send", {"room": room, "body": "answer",
                                        "client_id": client_id, "reply_to": 10**12})

    assert again == {"ok": True, "message": reply}


def test_a_row_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(
        gc_sqlite, peers, sqlite_file, db_rows):
    # A constraint the database holds and the server does not know of (an
    # operator's trigger, or a check of a later schema) stands for any row
    # that fails in the write after passing every check before it.
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("CREATE TRIGGER IF NOT EXISTS refuse_poison BEFORE INSERT ON messages"
                     " WHEN NEW.body = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    try:
        alice, bob = peers("alice"), peers("bob")
        room = alice.create_room()
        alice.ok("room:join", {"room": room})
        bob.ok("room:join", {"room": room})
        acks = Acks()
        for i in range(30):
            acks.emit(alice if i % 2 else bob, {
                "room": room, "body": "poison" if i == 15 else f"fine {i}",
                "client_id": uuid.uuid4().hex})
        got = acks.wait(30)
    finally:
        with sqlite3.connect(sqlite_file) as conn:
            conn.execute("DROP TRIGGER refuse_poison")

    refused = [ack for payload, ack in got if payload["body"] == "poison"]
    assert refused == [{"ok": False, "error": {"code": "internal", "message": "internal error"}}]
    stored = [ack["message"] for payload, ack in got if payload["body"] != "poison"]
    assert len(stored) == 29 and all(ack["ok"] for payload, ack in got
                                     if payload["body"] != "poison")
    wait_until(lambda: len(messages_in(bob, room)) >= 29, 10)
    assert sorted(m["id"] for m in messages_in(bob, room)) == sorted(m["id"] for m in stored)
    assert db_rows("SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id"
                   " WHERE r.slug = ? AND m.body = 'poison'", (room,)) == [(0,)]


def test_a_room_archived_by_another_process_refuses_the_send_when_it_is_written(
        gc_sqlite, peers, sqlite_file, db_rows):
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    alice.send(room, "before")
    # Archived in the database only, as by a process whose notice has not
    # arrived: this connection's copy of the room still says writable.
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("UPDATE rooms SET archived = 1 WHERE slug = ?", (room,))

    ack = alice.call("message:send", {"room": room, "body": "after",
                                      "client_id": uuid.uuid4().hex})

    assert ack == {"ok": False, "error": {"code": "forbidden", "field": "room",
                                          "message": "this room is archived and read-only"}}
    assert db_rows("SELECT m.body FROM messages m JOIN rooms r ON r.id = m.room_id"
                   " WHERE r.slug = ?", (room,)) == [("before",)]


@BOTH
def test_while_the_database_cannot_be_written_sends_get_error_acks_and_store_nothing(
        target, peers, sqlite_file, db_rows, request):
    alice, bob = peers("alice"), peers("bob")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    bob.ok("room:join", {"room": room})
    acks = Acks()
    with outage(target, sqlite_file, request):
        for i in range(6):
            acks.emit(alice, {"room": room, "body": f"lost {i}", "client_id": uuid.uuid4().hex})
        got = acks.wait(6, timeout=60)
    assert {ack["error"]["code"] for _, ack in got if not ack["ok"]} == {"internal"}
    assert all(not ack["ok"] for _, ack in got), got
    # Back: a send goes through, and none of the refused ones ever appears.
    after = alice.send(room, "after the outage")
    bob.wait_for("message", lambda m: m["id"] == after["id"])
    assert [m["body"] for m in messages_in(bob, room)] == ["after the outage"]
    assert db_rows("SELECT m.body FROM messages m JOIN rooms r ON r.id = m.room_id"
                   " WHERE r.slug = ?", (room,)) == [("after the outage",)]


class outage:
    """SQLite: another connection holds the write lock past the busy timeout.
    PostgreSQL: the database takes no connections and its sessions are ended."""

    def __init__(self, target, sqlite_file, request):
        self.sqlite = target.env["DATABASE_URL"].startswith("sqlite")
        self.sqlite_file = sqlite_file
        self.url = None if self.sqlite else request.getfixturevalue("gc_postgres_url")

    def __enter__(self):
        if self.sqlite:
            self.conn = sqlite3.connect(self.sqlite_file, isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            self.name = self.url.rsplit("/", 1)[1]
            self.conn = psycopg.connect(postgres.ADMIN_URL, autocommit=True)
            self.conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            self.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = %s", (self.name,))
        return self

    def __exit__(self, *exc):
        if self.sqlite:
            self.conn.execute("ROLLBACK")
        else:
            self.conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
        self.conn.close()
