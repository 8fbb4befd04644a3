"""Webhooks through the ``/admin`` namespace (Flask-SocketIO test client), delivered
in-process by ``dispatch_once`` to a real receiver on loopback."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Room, Webhook, WebhookDelivery
from app.services import changes, webhooks
from tests.admin.conftest import acall, audit_rows
from tests.conftest import call, in_db, received
from tests.support.receiver import Receiver
from tests.support.server import wait_until


@pytest.fixture
def receiver(app):
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    running = Receiver().start()
    yield running
    running.stop()


def member(auth, name: str, room: str, **room_fields):
    sock = auth.socket(name)
    ack = call(sock, "room:create", {"name": room, **room_fields})
    assert ack["ok"], ack
    slug = ack["room"]["slug"]
    assert call(sock, "room:join", {"room": slug})["ok"]
    received(sock)
    return sock, slug


def send(sock, slug: str, body: str) -> dict:
    ack = call(sock, "message:send", {"room": slug, "body": body, "client_id": body})
    assert ack["ok"], ack
    return ack["message"]


def deliver_all(app) -> None:
    while webhooks.dispatch_once(app, wait=True):
        pass


def delivery_count(app) -> int:
    return in_db(app, select(func.count()).select_from(WebhookDelivery))[0][0]


def test_create_answers_the_secret_once_and_audits_without_it(app, console):
    ack = acall(console, "webhook:create", {"url": "https://hooks.example.com/parley",
                                            "events": ["message"]})

    assert ack["ok"] is True, ack
    assert ack["secret"].startswith("whsec_") and len(ack["secret"]) > 40
    hook = ack["webhook"]
    assert {k: hook[k] for k in ("url", "rooms", "events", "active", "pending")} == {
        "url": "https://hooks.example.com/parley", "rooms": None, "events": ["message"],
        "active": True, "pending": 0}
    listed = acall(console, "webhooks:list")
    assert listed["webhooks"] == [hook]
    assert ack["secret"] not in str(listed) and ack["secret"] not in str(audit_rows(app))
    stored = in_db(app, select(Webhook.secret))[0][0]
    assert ack["secret"] not in stored  # encrypted at rest
    assert audit_rows(app)[-1] == ("root", "webhook:create", f"webhook {hook['id']}",
                                   "https://hooks.example.com/parley (every public room; message)")


@pytest.mark.parametrize("payload, field", [
    ({"url": "gopher://example.com/"}, "url"),
    ({"url": "http://127.0.0.1/"}, "url"),
    ({"url": "https://example.com/", "events": ["message:sent"]}, "events"),
    ({"url": "https://example.com/", "rooms": []}, "rooms"),
    ({"url": "https://example.com/", "rooms": ["no-such-room"]}, "rooms"),
    ({"url": 5}, "url"),
])
def test_a_webhook_that_cannot_work_is_refused_and_nothing_is_stored(app, console, payload, field):
    ack = acall(console, "webhook:create", payload)

    assert ack["ok"] is False and ack["error"]["field"] == field, ack
    assert in_db(app, select(func.count()).select_from(Webhook))[0][0] == 0
    assert not [row for row in audit_rows(app) if row[1].startswith("webhook")]


def test_a_change_is_delivered_signed_with_the_socket_events_payload(app, auth, console, receiver):
    secret = acall(console, "webhook:create", {"url": receiver.url})["secret"]
    alice, slug = member(auth, "alice", "lobby")

    send(alice, slug, "hello hooks")
    [live] = received(alice, "message")
    deliver_all(app)

    [got] = [r for r in receiver.got() if r.json["event"] == "message"]
    assert webhooks.verify(secret, got.headers["x-parley-timestamp"], got.body,
                           got.headers["x-parley-signature"])
    assert got.json["data"] == live
    assert got.json["room"] == slug and got.json["cursor"] == live["cursor"]
    assert got.headers["x-parley-delivery"] == got.json["id"]
    assert got.headers["x-parley-event"] == "message"


def test_private_rooms_and_dms_reach_only_a_webhook_that_names_them(app, auth, console,
                                                                  receiver):
    alice, secret_slug = member(auth, "alice", "secret", private=True)
    everything = acall(console, "webhook:create", {"url": receiver.url})["webhook"]
    named = acall(console, "webhook:create", {"url": receiver.url + "?named",
                                              "rooms": [secret_slug]})["webhook"]

    auth.create("bob")
    dm = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    assert call(alice, "room:join", {"room": dm})["ok"]

    send(alice, secret_slug, "psst")
    send(alice, dm, "just between us")
    deliver_all(app)

    assert {r.path for r in receiver.got()} == {"/hook?named"}
    assert [r.json["room"] for r in receiver.got()] == [secret_slug]
    assert acall(console, "webhook:deliveries", {"id": everything["id"]})["deliveries"] == []
    [delivery] = acall(console, "webhook:deliveries", {"id": named["id"]})["deliveries"]
    assert (delivery["status"], delivery["response_code"], delivery["attempts"]) == (
        "delivered", 200, 1)


def test_an_inactive_webhook_queues_nothing(app, auth, console, receiver):
    acall(console, "webhook:create", {"url": receiver.url, "active": False})
    alice, slug = member(auth, "alice", "lobby")

    send(alice, slug, "unheard")
    deliver_all(app)

    assert delivery_count(app) == 0 and receiver.got() == []


def test_redeliver_sends_the_same_delivery_again(app, auth, console, receiver):
    hook = acall(console, "webhook:create", {"url": receiver.url, "events": ["message"]})["webhook"]
    alice, slug = member(auth, "alice", "lobby")
    send(alice, slug, "again please")
    deliver_all(app)
    [delivery] = acall(console, "webhook:deliveries", {"id": hook["id"]})["deliveries"]

    ack = acall(console, "webhook:redeliver", {"delivery": delivery["id"]})
    assert ack["ok"] and ack["delivery"]["status"] == "pending", ack
    deliver_all(app)

    first, second = receiver.got()
    assert first.body == second.body and second.delivery == delivery["id"]
    assert acall(console, "webhook:deliveries", {"id": hook["id"]})["deliveries"][0][
        "attempts"] == 2
    assert ("root", "webhook:redeliver", f"webhook {hook['id']}", delivery["id"]) in audit_rows(app)


def test_delete_removes_the_webhook_and_its_queue(app, auth, console, receiver):
    hook = acall(console, "webhook:create", {"url": receiver.url})["webhook"]
    alice, slug = member(auth, "alice", "lobby")
    send(alice, slug, "queued")
    assert delivery_count(app) > 0

    assert acall(console, "webhook:delete", {"id": hook["id"]}) == {"ok": True}
    deliver_all(app)

    assert receiver.got() == [] and delivery_count(app) == 0
    assert acall(console, "webhooks:list")["webhooks"] == []
    assert audit_rows(app)[-1] == ("root", "webhook:delete", f"webhook {hook['id']}", receiver.url)


def test_update_changes_only_what_is_given_and_can_rotate_the_secret(app, auth, console):
    _, slug = member(auth, "alice", "lobby")
    hook = acall(console, "webhook:create", {"url": "https://example.com/a",
                                             "events": ["message"]})["webhook"]

    ack = acall(console, "webhook:update", {"id": hook["id"], "rooms": [slug],
                                            "rotate_secret": True})

    assert ack["ok"] and ack["secret"].startswith("whsec_"), ack
    assert (ack["webhook"]["url"], ack["webhook"]["rooms"], ack["webhook"]["events"]) == (
        "https://example.com/a", [slug], ["message"])
    back = acall(console, "webhook:update", {"id": hook["id"], "rooms": None})
    assert back["webhook"]["rooms"] is None and "secret" not in back


def test_a_receiver_that_refuses_disables_the_webhook_after_the_set_failures(app, auth, console,
                                                                           receiver):
    app.config["WEBHOOK_DISABLE_AFTER"] = 2
    receiver.answer = lambda number, got: 400
    hook = acall(console, "webhook:create", {"url": receiver.url, "events": ["message"]})["webhook"]
    alice, slug = member(auth, "alice", "lobby")

    for body in ("one", "two", "three"):
        send(alice, slug, body)
    deliver_all(app)

    assert len(receiver.got()) == 2  # 400 is not retried; the third is never sent
    [listed] = acall(console, "webhooks:list")["webhooks"]
    assert listed["active"] is False and listed["disabled_reason"].startswith(
        "2 deliveries failed in a row")
    actions = in_db(app, select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                    .where(AuditEntry.action == "webhook:disabled"))
    assert [tuple(row) for row in actions] == [("server", "webhook:disabled", f"webhook {hook['id']}")]


def test_a_delivery_exists_exactly_when_its_change_commits(app, auth, console):
    acall(console, "webhook:create", {"url": "https://hooks.example.com/"})
    _, slug = member(auth, "alice", "lobby")
    before = delivery_count(app)

    with app.app_context():
        room_id = db.session.execute(select(Room.id).where(Room.slug == slug)).scalar_one()
        changes.record(room_id, slug, "room:updated", {"room": slug})
        queued = db.session.execute(select(func.count()).select_from(WebhookDelivery)).scalar()
        db.session.rollback()
        db.session.remove()

    assert queued == before + 1 and delivery_count(app) == before


def test_a_delivery_failing_past_its_retry_window_is_marked_failed(app, auth, console, receiver):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=0.05, WEBHOOK_MAX_BACKOFF_SECONDS=0.1,
                      WEBHOOK_RETRY_HOURS=1 / 3600)  # a one-second window
    receiver.answer = lambda number, got: 503
    hook = acall(console, "webhook:create", {"url": receiver.url, "events": ["message"]})["webhook"]
    alice, slug = member(auth, "alice", "lobby")
    send(alice, slug, "never accepted")

    def finished():
        webhooks.dispatch_once(app, wait=True)
        done = acall(console, "webhook:deliveries", {"id": hook["id"]})["deliveries"]
        return done if done[0]["status"] != "pending" else None

    [delivery] = wait_until(finished, 10, interval=0.05)
    assert delivery["status"] == "failed" and delivery["response_code"] == 503
    assert delivery["error"] == "answered 503; gave up after retrying"
    assert delivery["attempts"] == len(receiver.got()) >= 3
    assert len({r.delivery for r in receiver.got()}) == 1


def test_a_deleted_messages_delivery_is_not_redelivered(app, auth, console, receiver):
    hook = acall(console, "webhook:create", {"url": receiver.url, "events": ["message"]})["webhook"]
    alice, slug = member(auth, "alice", "lobby")
    message = send(alice, slug, "regrettable")
    deliver_all(app)
    [delivery] = acall(console, "webhook:deliveries", {"id": hook["id"]})["deliveries"]
    assert call(alice, "message:delete", {"id": message["id"]})["ok"]

    ack = acall(console, "webhook:redeliver", {"delivery": delivery["id"]})

    assert ack["ok"] is False and ack["error"]["code"] == "conflict", ack
    assert "no longer in the room's log" in ack["error"]["message"]
    deliver_all(app)
    assert len(receiver.got()) == 1


def test_a_message_deleted_before_delivery_is_dropped_and_its_text_forgotten(app, auth, console,
                                                                            receiver):
    app.config.update(WEBHOOK_BACKOFF_SECONDS=0.01, WEBHOOK_MAX_BACKOFF_SECONDS=0.01)
    receiver.answer = lambda number, got: 500 if number == 1 else 200
    hook = acall(console, "webhook:create", {"url": receiver.url,
                                             "events": ["message", "message:deleted"]})["webhook"]
    alice, slug = member(auth, "alice", "lobby")
    message = send(alice, slug, "regrettable")
    webhooks.dispatch_once(app, wait=True)  # answered 500: waits for a retry

    assert call(alice, "message:delete", {"id": message["id"]})["ok"]
    wait_until(lambda: webhooks.dispatch_once(app, wait=True) == 0 and len(receiver.got()) == 2)

    assert [r.json["event"] for r in receiver.got()] == ["message", "message:deleted"]
    statuses = [(d["event"], d["status"]) for d in
                acall(console, "webhook:deliveries", {"id": hook["id"]})["deliveries"]]
    assert sorted(statuses) == [("message", "dropped"), ("message:deleted", "delivered")]
    assert not [body for (body,) in in_db(app, select(WebhookDelivery.body))
                if "regrettable" in body]
