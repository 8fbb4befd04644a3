"""Property-based fuzzing of every ``/public`` and ``/admin`` event.

Each event is sent hypothesis-made payloads: arbitrary JSON values, wrong
types, huge strings and deep nesting, unicode edge cases (NUL, lone
surrogates, RTL overrides, 10k combining marks), binary attachments, and
near-valid values (real room slugs, usernames and message ids) so that the
fuzz reaches the services and not only the schemas. For every call:

- the ack is the contract's: ``{"ok": true, ...}`` or an error with a
  contract code (never ``internal``), ``field`` with ``invalid``;
- an error ack changed nothing in the database (nothing half-written);
- the connection stays usable (``rooms:list`` answers right after);
- the server logged no error (no unhandled exception anywhere);
- nobody but bob (or an admin) changed bob's messages.

``derandomize`` makes the run the same on every machine and CI run.
"""
from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, LoginSession, Membership, Message, Room, User
from app.sockets.admin import AdminNamespace
from app.sockets.public import PublicNamespace
from tests.conftest import call

# Examples per event (26 tests): the module runs in about 80 s on this 2-core
# machine while other suites run beside it. docs/hardening.md has the figures.
EXAMPLES = 40
CODES = {"unauthenticated", "forbidden", "not_found", "invalid", "too_large", "rate_limited",
         "conflict", "internal"}


def events_of(namespace_class) -> list[str]:
    return sorted(name[3:].replace("_", ":", 1) for name in vars(namespace_class)
                  if name.startswith("on_") and hasattr(getattr(namespace_class, name), "schema"))


PUBLIC_EVENTS = events_of(PublicNamespace)
ADMIN_EVENTS = events_of(AdminNamespace)


# -- strategies ----------------------------------------------------------------------

NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202eevil\u202c", "\u200f\u200e",
    "a" + "\u0301" * 10_000, "\ufeff", "\U0001f600" * 50, "<script>alert(1)</script>",
    "'; DROP TABLE messages; --", "x" * 4001, "y" * 100_000, "\n" * 100, "%s%n{0}",
    "..\\..\\etc/passwd", "\u0000" * 3, "\x7f\x1b[2J",
])
TEXT = st.one_of(st.text(max_size=80), NASTY_TEXT)
# Text a real client types: printable, any script, right-to-left included.
PLAIN = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-2**70,
                                                                       max_value=2**70),
                   st.floats(), TEXT, st.binary(max_size=64))
JSON = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=25)


def deep(depth: int):
    value: object = "bottom"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


DEEP = st.integers(min_value=50, max_value=400).map(deep)


def near_valid(field: str, names: dict) -> st.SearchStrategy:
    """Values a real client would send in ``field``, valid or nearly."""
    ints = st.one_of(st.sampled_from(names["ids"]), st.sampled_from([0, -1, 1, 2**63 - 1, 2**63,
                                                                      2**64, 10**30]))
    pools = {
        "room": st.sampled_from(names["rooms"]),
        "user": st.sampled_from(names["users"]),
        "id": ints, "since": ints, "before": ints, "after": ints, "last_read_id": ints,
        "limit": st.sampled_from([1, 5, 100, 500, 501, 10**9, 0, -5]),
        "minutes": st.sampled_from([1, 0.5, 60, 0, -1, 10**12, float("nan"), float("inf")]),
        "client_id": st.one_of(st.uuids().map(str), st.sampled_from(["c", "", "k" * 65])),
        "private": st.booleans(), "typing": st.booleans(), "archived": st.booleans(),
    }
    return pools.get(field, st.one_of(PLAIN, PLAIN, NASTY_TEXT))


def payloads(schema, names: dict) -> st.SearchStrategy:
    fields = list(schema.model_fields)
    plausible = st.fixed_dictionaries({f: near_valid(f, names) for f in fields})
    field_value = {f: st.one_of(near_valid(f, names), JSON) for f in fields}
    shaped = st.fixed_dictionaries(
        {}, optional={**field_value, "extra": JSON, "__proto__": JSON})
    complete = st.fixed_dictionaries(field_value)
    # Half the time what a real (if careless) client sends, so the fuzz reaches
    # the services; the rest wrong types, missing fields, anything at all.
    return st.one_of(plausible, plausible, plausible, complete, shaped, JSON, DEEP,
                     st.binary(max_size=256))


# -- the world the fuzz runs in ----------------------------------------------------------

@pytest.fixture
def app_config():
    # The fuzz sends many valid messages quickly; the send rate has its own tests.
    return {"MESSAGE_RATE_LIMIT": "100000 per second"}


@pytest.fixture
def world(app, auth):
    """bob owns the public room 'lobby' and the private 'secret'; alice is in lobby."""
    auth.create("root", admin=True)
    bob, alice = auth.socket("bob"), auth.socket("alice")
    auth.create("carol")
    assert call(bob, "room:create", {"name": "lobby"})["ok"]
    secret = call(bob, "room:create", {"name": "secret", "private": True})["room"]["slug"]
    call(bob, "room:join", {"room": secret})
    ids = []
    for n, room in enumerate(["lobby", secret]):
        call(bob, "room:join", {"room": room})
        ids.append(call(bob, "message:send", {"room": room, "body": f"bob {n}",
                                              "client_id": f"bob-{n}"})["message"]["id"])
    call(alice, "room:join", {"room": "lobby"})
    ids.append(call(alice, "message:send", {"room": "lobby", "body": "alice",
                                            "client_id": "alice-0"})["message"]["id"])
    return {"alice": alice, "bob": bob, "ids": ids, "bob_ids": ids[:2],
            "rooms": ["lobby", secret, "secret", "dm-1-2", "nope", "LOBBY"],
            "users": ["alice", "bob", "carol", "Carol", "nobody"]}


def snapshot(app) -> tuple:
    """Everything an event may write, to prove an error ack wrote nothing."""
    with app.app_context():
        try:
            session = db.session
            counts = tuple(session.execute(select(func.count()).select_from(model)).scalar()
                           for model in (User, LoginSession, Room, Membership, Message,
                                         AuditEntry))
            messages = tuple(session.execute(select(Message.id, Message.body, Message.deleted,
                                                    Message.edited_at)).all())
            members = tuple(session.execute(select(Membership.room_id, Membership.user_id,
                                                   Membership.last_read_id)).all())
            users = tuple(session.execute(select(User.id, User.is_admin, User.banned,
                                                 User.banned_until)).all())
            rooms = tuple(session.execute(select(Room.id, Room.archived)).all())
            return counts, messages, members, users, rooms
        finally:
            db.session.remove()


def bob_messages(app, ids) -> list:
    with app.app_context():
        try:
            return db.session.execute(select(Message.body, Message.deleted)
                                      .where(Message.id.in_(ids)).order_by(Message.id)).all()
        finally:
            db.session.remove()


class ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def error_log():
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


# Outcomes per event (ok or error code), written to test-output/ for the report.
OUTCOMES: dict[str, Counter] = defaultdict(Counter)


@pytest.fixture(scope="module", autouse=True)
def _write_outcomes():
    yield
    out = Path(__file__).resolve().parents[2] / "test-output"
    out.mkdir(exist_ok=True)
    (out / "fuzz-outcomes.json").write_text(json.dumps(
        {event: dict(counts) for event, counts in sorted(OUTCOMES.items())}, indent=1))


def check_ack(ack, event: str, payload) -> None:
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (event, payload, ack)
    if not ack["ok"]:
        error = ack["error"]
        assert error["code"] in CODES and error["code"] != "internal", (event, payload, ack)
        assert isinstance(error["message"], str) and error["message"]
        if error["code"] == "invalid":
            assert isinstance(error["field"], str)


FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(app, sock, namespace, event, data, names, error_log, usable) -> None:
    schema = getattr(PublicNamespace if namespace == "/public" else AdminNamespace,
                     "on_" + event.replace(":", "_")).schema
    payload = data.draw(payloads(schema, names), label="payload")
    before = snapshot(app)
    ack = call(sock, event, payload, namespace=namespace)
    check_ack(ack, event, payload)
    OUTCOMES[f"{namespace} {event}"]["ok" if ack["ok"] else ack["error"]["code"]] += 1
    if not ack["ok"]:
        assert snapshot(app) == before, f"{event} {payload!r} answered an error but wrote"
    assert sock.is_connected(namespace), f"{event} {payload!r} closed the connection"
    assert usable(), f"the connection is unusable after {event} {payload!r}"
    assert error_log.records == [], [r.getMessage() for r in error_log.records]


@pytest.mark.parametrize("event", PUBLIC_EVENTS)
@FUZZ
@given(data=st.data())
def test_public_events_survive_any_payload(app, world, error_log, event, data):
    alice = world["alice"]
    fuzz(app, alice, "/public", event, data, world, error_log,
         lambda: call(alice, "rooms:list", {})["ok"])
    # Only bob, the lobby's owner (bob) or an admin may touch bob's messages.
    assert bob_messages(app, world["bob_ids"]) == [("bob 0", False), ("bob 1", False)]


@pytest.fixture
def console(auth, world):
    return auth.socket("root", namespace="/admin")


@pytest.mark.parametrize("event", ADMIN_EVENTS)
@FUZZ
@given(data=st.data())
def test_admin_events_survive_any_payload(app, world, console, error_log, event, data):
    fuzz(app, console, "/admin", event, data, world, error_log,
         lambda: call(console, "stats", {}, namespace="/admin")["ok"])


@FUZZ
@given(event=st.one_of(st.text(max_size=40), NASTY_TEXT), payload=JSON)
def test_unknown_events_answer_not_found(app, world, error_log, event, payload):
    alice = world["alice"]
    if event.replace(":", "_") in {n[3:] for n in vars(PublicNamespace) if n.startswith("on_")}:
        return
    ack = call(alice, event, payload)
    OUTCOMES["/public (unknown event)"][ack["error"]["code"]] += 1
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert call(alice, "rooms:list", {})["ok"]
    assert error_log.records == []


@FUZZ
@given(payload=st.one_of(JSON, DEEP))
def test_typing_without_ack_survives_any_payload(app, world, error_log, payload):
    alice = world["alice"]
    before = snapshot(app)
    alice.emit("typing", payload, namespace="/public")
    OUTCOMES["/public typing (no ack)"]["sent"] += 1
    assert snapshot(app) == before
    assert call(alice, "rooms:list", {})["ok"]
    assert error_log.records == []
