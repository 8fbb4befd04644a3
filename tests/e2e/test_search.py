"""Message search (``message:search``, ``GET /api/v1/search``) on a real gunicorn worker,
on SQLite and on PostgreSQL.

Each test searches for words of its own (``word()``), so the shared server's
other messages never match. What a search must never show: a private room's
or a DM's messages to anyone but its current members, and deleted messages.
"""
from __future__ import annotations

import re
import secrets
import string
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import create_engine, text

from app.models import SEARCH_INDEX, SEARCH_TABLE, Message, utcnow
from app.services import Actor
from app.services import search as search_service
from tests.support.server import sign_in

from .conftest import BOTH_DATABASES, e2e_env, start_server, stop_server, unique
from tests.support.server import TEST_PASSWORD, flask_cli

pytestmark = pytest.mark.e2e


def word() -> str:
    """A word no other message holds: letters only, so both stemmers keep it whole
    (its stem is the same in the message and in the query either way)."""
    return "zq" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


def search(peer, query, **fields) -> dict:
    return peer.call("message:search", {"query": query, **fields})


def found(ack: dict) -> list[int]:
    assert ack["ok"] is True, ack
    return [result["message"]["id"] for result in ack["results"]]


def rest_search(peer, **params) -> requests.Response:
    """``GET /api/v1/search`` with the peer's session cookie (a safe method: no CSRF)."""
    return peer.http.get(peer.url + "/api/v1/search", params=params, timeout=10)


def shared_room(owner, *others, private=False) -> str:
    room = owner.create_room(private=private)
    owner.ok("room:join", {"room": room})
    for other in others:
        if private:
            owner.ok("room:invite", {"room": room, "user": other.username})
        other.ok("room:join", {"room": room})
    return room


@BOTH_DATABASES
def test_a_search_finds_the_message_with_its_words_marked_in_a_plain_text_snippet(target, peers):
    alice, bob = peers("alice"), peers("bob")
    room = shared_room(alice)
    term = word()
    message = alice.send(room, f"We <b>shipped</b> the {term} build & it works")
    alice.send(room, "an unrelated line")

    ack = search(bob, term)  # bob never joined the public room

    assert ack == {"ok": True, "has_more": False, "next": None, "results": [{
        "message": message, "room": room,
        "snippet": [{"text": "We <b>shipped</b> the ", "match": False},
                    {"text": term, "match": True},
                    {"text": " build & it works", "match": False}]}]}


@BOTH_DATABASES
def test_the_rest_route_answers_what_the_socket_acks(target, peers):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    alice.send(room, f"first {term}")
    alice.send(room, f"second {term} and {term} again")

    ack = search(alice, term, order="newest")
    response = rest_search(alice, q=term, order="newest")

    assert response.status_code == 200, response.text
    assert response.json() == {k: v for k, v in ack.items() if k != "ok"}
    assert [r["snippet"] for r in response.json()["results"]][0] == [
        {"text": "second ", "match": False}, {"text": term, "match": True},
        {"text": " and ", "match": False}, {"text": term, "match": True},
        {"text": " again", "match": False}]


@BOTH_DATABASES
def test_stemming_finds_other_forms_of_a_word_and_every_word_must_match(target, peers):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    deployed = alice.send(room, f"{term} deployed the servers")
    alice.send(room, f"{term} wrote the docs")

    assert found(search(alice, f"{term} deploying")) == [deployed["id"]]
    assert found(search(alice, f"deploys {term} server")) == [deployed["id"]]


@BOTH_DATABASES
def test_a_private_room_is_searched_by_its_members_only_and_not_after_leaving(target, peers):
    alice, bob, carol = peers("alice"), peers("bob"), peers("alice")
    room = shared_room(alice, private=True)
    term = word()
    secret = alice.send(room, f"the {term} plan")

    assert found(search(bob, term)) == []
    assert found(search(carol, term)) == [secret["id"]]  # alice again, another session
    alice.ok("room:invite", {"room": room, "user": "bob"})
    assert found(search(bob, term)) == [secret["id"]]
    bob.ok("room:leave", {"room": room})
    assert found(search(bob, term)) == []
    # Narrowing to the room answers as for a room that does not exist.
    assert search(bob, term, room=room)["error"]["code"] == "not_found"
    assert rest_search(bob, q=term).json()["results"] == []


@BOTH_DATABASES
def test_a_direct_message_is_found_by_its_two_people_only(target, peers):
    alice, bob = peers("alice"), peers("bob")
    dm = alice.ok("dm:open", {"user": "bob"})["room"]["slug"]
    term = word()
    sent = alice.send(dm, f"just between us: {term}")
    outsider_http = sign_in(target.url, unique_user(target))
    outsider = peers_of(target, outsider_http)

    assert found(search(bob, term)) == [sent["id"]]
    assert found(search(alice, term)) == [sent["id"]]
    assert outsider.get(target.url + "/api/v1/search", params={"q": term},
                        timeout=10).json()["results"] == []


def unique_user(target) -> str:
    """A new account, signed up through the form (registration is open)."""
    from tests.support.server import sign_up

    name = unique("searcher")[:32]
    sign_up(target.url, name)
    return name


def peers_of(target, http):
    return http


@BOTH_DATABASES
def test_archived_rooms_stay_searchable_by_whoever_may_read_them(target, peers, database_url):
    alice, bob = peers("alice"), peers("bob")
    public, private = shared_room(alice), shared_room(alice, private=True)
    term = word()
    in_public = alice.send(public, f"{term} in the open")
    in_private = alice.send(private, f"{term} behind doors")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE rooms SET archived = :yes WHERE slug IN (:a, :b)"),
                               {"yes": True, "a": public, "b": private})
    finally:
        engine.dispose()

    assert found(search(alice, term, order="newest")) == [in_private["id"], in_public["id"]]
    assert found(search(bob, term)) == [in_public["id"]]


@BOTH_DATABASES
def test_an_edit_and_a_deletion_are_reflected_in_the_next_search_at_once(target, peers):
    alice = peers("alice")
    room = shared_room(alice)
    old, new, gone = word(), word(), word()
    edited = alice.send(room, f"about {old}")
    deleted = alice.send(room, f"about {gone}")

    alice.ok("message:edit", {"id": edited["id"], "body": f"now about {new}"})
    alice.ok("message:delete", {"id": deleted["id"]})

    assert found(search(alice, old)) == []
    after_edit = search(alice, new)
    assert found(after_edit) == [edited["id"]]
    assert after_edit["results"][0]["message"]["edited_at"] is not None
    assert found(search(alice, gone)) == []


@BOTH_DATABASES
def test_filters_narrow_by_room_author_and_time(target, peers):
    alice, bob = peers("alice"), peers("bob")
    first, second = shared_room(alice, bob), shared_room(alice, bob)
    term = word()
    a1 = alice.send(first, f"{term} one")
    b1 = bob.send(first, f"{term} two")
    a2 = alice.send(second, f"{term} three")
    moment = datetime.fromisoformat(b1["created_at"].replace("Z", "+00:00"))

    assert found(search(bob, term, room=first, order="newest")) == [b1["id"], a1["id"]]
    assert found(search(bob, term, author="Alice", order="newest")) == [a2["id"], a1["id"]]
    assert found(search(bob, term, author="alice", room=second)) == [a2["id"]]
    assert found(search(bob, term, after=b1["created_at"], order="newest")) == [a2["id"], b1["id"]]
    assert found(search(bob, term, before=b1["created_at"])) == [a1["id"]]
    day = (moment + timedelta(days=1)).date().isoformat()
    assert found(search(bob, term, after=day)) == []
    assert len(found(search(bob, term, before=day))) == 3
    assert search(bob, term, author="nobody-" + uuid.uuid4().hex[:8])["error"]["code"] == "not_found"
    assert search(bob, term, after="yesterday")["error"] == {
        "code": "invalid", "field": "after",
        "message": "after: must be a date (YYYY-MM-DD) or an ISO 8601 time"}


@BOTH_DATABASES
def test_pages_follow_next_to_the_end_without_repeats_in_either_order(target, peers):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    sent = [alice.send(room, f"{term} number {i}")["id"] for i in range(7)]

    for order in ("newest", "relevance"):
        seen, cursor = [], None
        for _ in range(5):
            ack = search(alice, term, order=order, limit=3, **({"cursor": cursor} if cursor else {}))
            seen += found(ack)
            assert ack["has_more"] is (ack["next"] is not None)
            cursor = ack["next"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(sent), order
        if order == "newest":
            assert seen == sent[::-1]
    wrong = search(alice, term, order="newest", cursor="r3")
    assert wrong["error"]["code"] == "invalid" and wrong["error"]["field"] == "cursor"


HOSTILE_AROUND_A_WORD = ['"{w}', '{w}"', '"{w}"', "{w}*", "*{w}", "{w}:", "body:{w}",
                         "({w})", "-{w}", "^{w}", "{w};--", "'{w}'", "{w}\\", "{{{w}}}",
                         "NEAR({w})", "{w} OR", "{w} AND NOT", "{w} &|! <->"]
WORDLESS = ['"', '""', "*", ":", "()", "- * ^ \" ' :", "   "]


@BOTH_DATABASES
def test_query_syntax_from_the_caller_is_never_taken_as_syntax(target, peers):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    sent = alice.send(room, f"body:{term} AND NOT OR NEAR")

    for form in HOSTILE_AROUND_A_WORD:
        query = form.format(w=term)
        for ack in (search(alice, query), rest_search(alice, q=query).json() | {"ok": True}):
            assert ack["ok"] is True, (query, ack)
            assert [r["message"]["id"] for r in ack["results"]] == [sent["id"]], query
    for query in WORDLESS:
        ack = search(alice, query)
        assert ack["ok"] is False and ack["error"] == {
            "code": "invalid", "field": "query", "message": "search for at least one word"}, query
        response = rest_search(alice, q=query)
        assert response.status_code == 400 and response.json()["error"]["field"] == "query"


@BOTH_DATABASES
def test_an_empty_a_10kb_a_nul_and_a_many_word_query_are_refused_cleanly(target, peers):
    alice = peers("alice")
    cases = {"": "query", "x" * 10_000: "query", "a\x00b": "query",
             " ".join(["word"] * 17): "query"}
    for query, field in cases.items():
        ack = search(alice, query)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", (query[:20], ack)
        assert ack["error"]["field"] == field
        response = rest_search(alice, q=query)
        if len(query) > 4000:
            # Over gunicorn's request-line limit: refused before the app.
            assert response.status_code == 414
            continue
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid"
    assert search(alice, "x" * 201)["error"]["message"] == "a search is at most 200 characters"
    assert rest_search(alice, q="x" * 1000).json()["error"]["code"] == "invalid"
    assert rest_search(alice).json()["error"]["field"] == "q"
    assert search(alice, "ok", order="oldest")["error"]["field"] == "order"
    assert alice.call("message:search", {"query": 5})["error"]["field"] == "query"


def test_the_rest_route_needs_a_signed_in_caller_and_takes_a_bearer_token(server, peers):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    sent = alice.send(room, term)
    assert requests.get(server.url + "/api/v1/search", params={"q": term},
                        timeout=10).status_code == 401
    pair = requests.post(server.url + "/api/v1/auth/token", timeout=10,
                         json={"username": "alice", "password": TEST_PASSWORD}).json()
    response = requests.get(server.url + "/api/v1/search", params={"q": term}, timeout=10,
                            headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert response.status_code == 200
    assert [r["message"]["id"] for r in response.json()["results"]] == [sent["id"]]


def test_message_history_around_an_id_answers_the_page_centred_on_it(server, peers):
    alice = peers("alice")
    room = shared_room(alice)
    ids = [alice.send(room, f"line {i}")["id"] for i in range(12)]

    page = alice.ok("message:history", {"room": room, "around": ids[6], "limit": 4})
    assert [m["id"] for m in page["messages"]] == ids[4:8]
    assert page["has_more"] is True and page["has_newer"] is True
    edge = alice.ok("message:history", {"room": room, "around": ids[10], "limit": 6})
    assert [m["id"] for m in edge["messages"]] == ids[7:12]
    assert edge["has_newer"] is False
    rest = alice.http.get(f"{server.url}/api/v1/rooms/{room}/messages",
                          params={"around": ids[6], "limit": 4}, timeout=10).json()
    assert rest == {"messages": page["messages"], "has_more": True, "has_newer": True}
    both = alice.call("message:history", {"room": room, "around": ids[6], "before": ids[7]})
    assert both["error"]["code"] == "invalid"


# -- 10,000 messages: the index, not a scan --------------------------------------------

@pytest.fixture
def database_url(target, request):
    name = request.node.callspec.params["target"]
    if name == "sqlite":
        return request.getfixturevalue("sqlite_env")["DATABASE_URL"]
    return request.getfixturevalue("postgres_url")


def fill(engine, room: str, username: str, term: str, count: int = 10_000) -> list[int]:
    """``count`` messages straight into the table (the database's triggers or
    index keep the search index); every hundredth holds ``term``."""
    with engine.begin() as connection:
        room_id = connection.execute(text("SELECT id FROM rooms WHERE slug = :s"),
                                     {"s": room}).scalar_one()
        user_id = connection.execute(text("SELECT id FROM users WHERE username_key = :u"),
                                     {"u": username}).scalar_one()
        rows = [{"room_id": room_id, "user_id": user_id, "client_id": uuid.uuid4().hex,
                 "body": (f"status {i} {term}" if i % 100 == 0 else f"routine status line {i}"),
                 "created_at": utcnow(), "deleted": False} for i in range(count)]
        connection.execute(Message.__table__.insert(), rows)
        ids = connection.execute(text(
            "SELECT id FROM messages WHERE room_id = :r AND body LIKE :t ORDER BY id"),
            {"r": room_id, "t": f"%{term}%"}).scalars().all()
        return list(ids), user_id


def plan(engine, statement) -> list[str]:
    compiled = statement.compile(dialect=engine.dialect)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            params = tuple(compiled.params[name] for name in compiled.positiontup)
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
            return [row[3] for row in rows]
        connection.exec_driver_sql("ANALYZE messages")
        # A table this small may be read whole when that is cheaper; what is
        # checked is that the query's expression can use the index at all.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        return [row[0] for row in rows]


@BOTH_DATABASES
def test_over_10000_messages_the_search_reads_the_index_and_answers(target, peers, database_url):
    alice = peers("alice")
    room = shared_room(alice)
    term = word()
    engine = create_engine(database_url)
    try:
        ids, user_id = fill(engine, room, "alice", term)
        actor = Actor(id=user_id, username="alice")
        for order in ("relevance", "newest"):
            statement = search_service.page_statement(actor, [term], [], order,
                                                      search_service.Page(), 21,
                                                      engine.dialect.name)
            lines = plan(engine, statement)
            text_plan = "\n".join(lines)
            print(order, text_plan, sep="\n")
            if engine.dialect.name == "sqlite":
                assert any(f"{SEARCH_TABLE} VIRTUAL TABLE INDEX" in line for line in lines), text_plan
                assert not any(re.match(r"SCAN (messages|rooms)\b(?!_fts)", line)
                               for line in lines), text_plan
            else:
                assert SEARCH_INDEX in text_plan, text_plan
                assert "Seq Scan on messages" not in text_plan, text_plan
    finally:
        engine.dispose()

    started = time.perf_counter()
    ack = search(alice, term, order="newest", limit=50)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert found(ack) == ids[::-1][:50] and ack["has_more"] is True
    relevance = search(alice, f"status {term}", limit=50, cursor="r50")
    assert sorted(found(relevance)) == ids[:50] and relevance["has_more"] is False
    print(f"search over 10,000 messages ({target.url}): {elapsed_ms:.1f} ms")


# -- the rate limit ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('search-db') / 'parley.sqlite3'}")
    env["SEARCH_RATE_LIMIT"] = "3 per minute"
    flask_cli(env, "init-db")
    flask_cli(env, "create-user", "seeker", "--password-stdin", stdin=TEST_PASSWORD + "\n")
    running = start_server(env, "server-search-limit")
    yield running
    stop_server(running)


def test_searches_past_the_limit_are_refused_over_both_doors(limited):
    from .conftest import Peer

    seeker = Peer(limited.url, "seeker").connect()
    try:
        # A refused query (invalid) spends nothing.
        assert search(seeker, "*")["error"]["code"] == "invalid"
        for _ in range(3):
            assert search(seeker, "anything")["ok"] is True
        refused = search(seeker, "anything")
        assert refused["error"]["code"] == "rate_limited" and refused["error"]["retry_after"] > 0
        response = rest_search(seeker, q="anything")
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    finally:
        seeker.close()
