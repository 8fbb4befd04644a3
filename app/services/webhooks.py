"""Outgoing webhooks: the rooms' changes POSTed, signed, to URLs the admins register.

Where deliveries come from: the change log's transaction (an outbox).
``changes.record`` calls ``enqueue`` right after it writes the change's
``room_changes`` row, in the same transaction: one ``webhook_deliveries``
row per active webhook whose filter matches. Either the change and its
deliveries commit together or neither does, so a crash at any moment loses
no delivery (an enqueue after the commit would lose those of a process
killed between the two), and nothing is queued for a change that rolled
back. Per-room order comes for free from the log: a room's positions are
taken under its row lock and commit in order, so a delivery for position
``p + 1`` never becomes visible before the one for ``p``. (The other
design, each webhook reading the log by its own per-room cursor, would
make the hot path free but loses changes to retention and to compaction
of deleted messages, and would still need a table of attempts for the
console; the outbox costs one indexed query per change, on a table of a
few rows, and nothing else when no webhook matches.)

Delivering: one dispatcher per server process (``start``), woken after a
commit that queued deliveries and every ``WEBHOOK_POLL_SECONDS``. It claims
due rows by setting a lease (``claimed_by``, ``claimed_until``) in one
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``: on
PostgreSQL two processes (or hosts) never claim one row, and neither waits
for the other's locks; on SQLite the ``UPDATE`` takes the database's one
write lock, which serializes claims of processes on the host just as well.
A row is claimable only while no earlier change of its room is pending for
the same webhook (claimed or not, waiting for a retry or not): a room's
changes reach a receiver one at a time, in order. A process killed
mid-delivery leaves its claim to expire (``WEBHOOK_LEASE_SECONDS``, longer
than an attempt can last), and the next dispatcher retries it: at least
once, never lost. A late answer from an attempt whose lease was taken over
is dropped (the ``UPDATE`` names the claim).

Each attempt is one POST (``httpx``, no redirects followed, connect and read
timeouts, the whole attempt bounded by their sum) carrying the same body
and delivery id every time. 2xx is delivered. Timeouts, connection errors,
5xx, 408 and 429 are retried after ``WEBHOOK_BACKOFF_SECONDS * 2^(n-1)``
(+-50 % jitter, at most ``WEBHOOK_MAX_BACKOFF_SECONDS``) until
``WEBHOOK_RETRY_HOURS`` after the change; then the delivery is failed. Any
other answer (a 3xx that is not followed, a 4xx) fails it at once, as does
an address the guard refuses. ``WEBHOOK_DISABLE_AFTER`` deliveries failing
for good in a row (a success resets the count) disable the webhook, with a
``webhook:disabled`` audit entry.

The address guard (``resolve``): the URL's host is resolved here and every
address it has must be public (not loopback, private, link-local, shared,
reserved, multicast or unspecified, IPv4-mapped ones included) unless
``WEBHOOK_ALLOW_PRIVATE_NETWORKS``; the request then goes to the address that
was checked (the URL's host replaced by it, ``Host`` and TLS SNI/certificate
check still naming the host), so a DNS answer that changes between the check
and the connect (rebinding) cannot point the request elsewhere. No redirect
is followed, so none can lead to a private address either.

The secret: generated at registration and shown once; stored encrypted
(Fernet, key derived from ``SECRET_KEY`` with HKDF), since the server must
sign with it. Changing ``SECRET_KEY`` makes stored secrets unreadable:
deliveries then fail ("secret unreadable") until the secret is rotated.

Which rooms: a webhook for "all rooms" gets the changes of public rooms; a
private room or a direct message reaches only a webhook that names it.

Deleted messages: as the log forgets a deleted message's entries
(compaction), their deliveries still pending are dropped (status
``dropped``) and no stored body keeps the text; the ``message:deleted``
change itself is delivered. A redelivery needs its change still in the log.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import threading
import time
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import (and_, bindparam, delete, exists, func, insert, or_, select, update)
from sqlalchemy.orm import aliased

from .. import bus, metrics
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import Room, RoomChange, Webhook, WebhookDelivery, WebhookRoom, isoformat, utcnow
from . import Actor, audit, changes

log = logging.getLogger(__name__)

# The change log's event names (what ``changes.record`` is called with).
EVENTS = ("message", "message:updated", "message:deleted", "member:added", "member:removed",
          "room:updated", "room:archived")
SECRET_PREFIX = "whsec_"  # recognisable in a leaked-secret scan
SIGNATURE_HEADER = "X-Parley-Signature"
TIMESTAMP_HEADER = "X-Parley-Timestamp"
DELIVERY_HEADER = "X-Parley-Delivery"
EVENT_HEADER = "X-Parley-Event"
USER_AGENT = "Parley-Webhooks/1"
URL_MAX_LENGTH = 2000
MAX_ROOMS = 100
DELIVERIES_DEFAULT_LIMIT = 50
DELIVERIES_MAX_LIMIT = 200
# The console shows this much of a receiver's failure; the answer body is never read further.
_ERROR_LENGTH = 200
# Retried answers: the receiver is busy or down, not refusing the request.
_RETRIED_CODES = {408, 429}
# Finished deliveries are pruned at most this often per process.
_PRUNE_EVERY_SECONDS = 3600.0

_webhooks = Webhook.__table__
_rooms_of = WebhookRoom.__table__
_deliveries = WebhookDelivery.__table__
_room_table = Room.__table__


# -- signing and the secret ------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Parley-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           tolerance: float = 300, now: float | None = None) -> bool:
    """What a receiver does (docs/api.md): the signature matches and the timestamp is fresh."""
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"parley webhook secrets").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret: str) -> str:
    return _fernet(current_app.config["SECRET_KEY"]).encrypt(secret.encode()).decode()


def _unseal(sealed: str) -> str | None:
    try:
        return _fernet(current_app.config["SECRET_KEY"]).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# -- the address guard -----------------------------------------------------------

class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def address_allowed(address: str, allow_private: bool) -> bool:
    """Whether a request may go to ``address``: public unicast only, unless ``allow_private``."""
    ip = ipaddress.ip_address(address)
    if allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                 or ip.is_link_local or ip.is_private or ip.is_unspecified)


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for ``host``: every address it resolves to
    must be allowed (a host with one private address among public ones is
    refused), and the first is used. Raises ``AddressRefused``, or ``OSError``
    when the name does not resolve (retried: DNS may be having a moment)."""
    try:
        addresses = [ipaddress.ip_address(host).compressed]
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0].split("%", 1)[0] for info in infos))
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        if not address_allowed(address, allow_private):
            raise AddressRefused(f"{host} resolves to {address}, a non-public address "
                                 "(WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)")
    return addresses[0]


def check_url(url: str) -> str:
    """A webhook URL as stored: http(s), a host, no credentials; a literal
    address must pass the guard now (host names are checked at each delivery,
    since what they resolve to can change)."""
    url = url.strip()
    if not url or len(url) > URL_MAX_LENGTH:
        raise Invalid(f"the URL must be 1 to {URL_MAX_LENGTH} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("that is not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("the URL must start with http:// or https:// and name a host", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("the URL must not carry credentials: the signature authenticates "
                      "Parley to the receiver", field="url")
    if port == 0:
        raise Invalid("that is not a valid URL", field="url")
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not address_allowed(parts.hostname, current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]):
        raise Invalid(f"{parts.hostname} is not a public address (WEBHOOK_ALLOW_PRIVATE_NETWORKS "
                      "is off)", field="url")
    return url


# -- registering (the console and the CLI) ---------------------------------------

def _check_events(events: list[str] | None) -> list[str]:
    events = list(dict.fromkeys(events or ()))
    unknown = [name for name in events if name not in EVENTS]
    if unknown:
        raise Invalid(f"unknown event {unknown[0]!r}; events are: {', '.join(EVENTS)}",
                      field="events")
    return events


def _check_rooms(slugs: list[str] | None) -> list[Room] | None:
    """None: every public room; else the rooms named (each must exist)."""
    if slugs is None:
        return None
    slugs = list(dict.fromkeys(slugs))
    if not slugs:
        raise Invalid("name at least one room, or leave rooms out for every public room",
                      field="rooms")
    if len(slugs) > MAX_ROOMS:
        raise Invalid(f"at most {MAX_ROOMS} rooms", field="rooms")
    found = {room.slug: room for room in
             db.session.execute(select(Room).where(Room.slug.in_(slugs))).scalars()}
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise NotFound(f"no room {missing[0]!r}", field="rooms")
    return [found[slug] for slug in slugs]


def _get(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}", field="id")
    return webhook


def _room_slugs(webhook_ids: list[int]) -> dict[int, list[str]]:
    rows = db.session.execute(
        select(WebhookRoom.webhook_id, Room.slug).join(Room, Room.id == WebhookRoom.room_id)
        .where(WebhookRoom.webhook_id.in_(webhook_ids)).order_by(Room.slug)).all()
    slugs: dict[int, list[str]] = {}
    for webhook_id, slug in rows:
        slugs.setdefault(webhook_id, []).append(slug)
    return slugs


def _as_dict(webhook: Webhook, slugs: list[str] | None = None, pending: int = 0) -> dict:
    return {"id": webhook.id, "url": webhook.url,
            "rooms": None if webhook.all_rooms else (slugs or []),
            "events": json.loads(webhook.events), "active": webhook.active,
            "disabled_reason": webhook.disabled_reason, "failed_in_a_row": webhook.failed_in_a_row,
            "pending": pending, "created_by": webhook.created_by,
            "created_at": isoformat(webhook.created_at)}


def _describe(webhook: Webhook, rooms: list[Room] | None, events: list[str]) -> str:
    where = "every public room" if rooms is None else "rooms " + ", ".join(r.slug for r in rooms)
    what = "every event" if not events else ", ".join(events)
    return f"{webhook.url} ({where}; {what})"


def _set_rooms(webhook: Webhook, rooms: list[Room] | None) -> None:
    db.session.execute(delete(_rooms_of).where(_rooms_of.c.webhook_id == webhook.id))
    webhook.all_rooms = rooms is None
    if rooms:
        db.session.execute(insert(_rooms_of), [{"webhook_id": webhook.id, "room_id": room.id}
                                               for room in rooms])


def create_webhook(actor: Actor, url: str, rooms: list[str] | None = None,
                   events: list[str] | None = None, active: bool = True) -> tuple[dict, str]:
    """Register a webhook; returns it and its secret (shown this once). Audited."""
    url = check_url(url)
    events = _check_events(events)
    room_rows = _check_rooms(rooms)
    secret = _new_secret()
    webhook = Webhook(url=url, secret=_seal(secret), all_rooms=room_rows is None,
                      events=json.dumps(events), active=active, failed_in_a_row=0,
                      disabled_reason="", created_by=actor.username)
    db.session.add(webhook)
    db.session.flush()
    _set_rooms(webhook, room_rows)
    audit.record(actor.username, "webhook:create", f"webhook {webhook.id}",
                 _describe(webhook, room_rows, events))
    db.session.commit()
    log.info("webhook %s created", webhook.id)
    return get_webhook(webhook.id), secret


def get_webhook(webhook_id: int) -> dict:
    webhook = _get(webhook_id)
    return _as_dict(webhook, _room_slugs([webhook.id]).get(webhook.id), _pending([webhook.id])
                    .get(webhook.id, 0))


def _pending(webhook_ids: list[int]) -> dict[int, int]:
    return dict(db.session.execute(
        select(_deliveries.c.webhook_id, func.count())
        .where(_deliveries.c.webhook_id.in_(webhook_ids), _deliveries.c.status == "pending")
        .group_by(_deliveries.c.webhook_id)).all())


def list_webhooks() -> list[dict]:
    """Every webhook, oldest first, with its rooms and how many deliveries are pending."""
    hooks = db.session.execute(select(Webhook).order_by(Webhook.id)).scalars().all()
    ids = [hook.id for hook in hooks]
    slugs, pending = _room_slugs(ids), _pending(ids)
    return [_as_dict(hook, slugs.get(hook.id), pending.get(hook.id, 0)) for hook in hooks]


_UNSET = object()


def update_webhook(actor: Actor, webhook_id: int, *, url=_UNSET, rooms=_UNSET, events=_UNSET,
                   active=_UNSET, rotate_secret: bool = False) -> tuple[dict, str | None]:
    """Change what was given; ``rotate_secret`` makes a new secret (returned, shown once).

    Re-activating clears the failure count; changes made while a webhook
    was inactive were not queued for it. Audited.
    """
    webhook = _get(webhook_id)
    done = []
    if url is not _UNSET:
        webhook.url = check_url(url)
        done.append(f"url {webhook.url}")
    if events is not _UNSET:
        webhook.events = json.dumps(_check_events(events))
        done.append("events " + (", ".join(json.loads(webhook.events)) or "all"))
    if rooms is not _UNSET:
        room_rows = _check_rooms(rooms)
        _set_rooms(webhook, room_rows)
        done.append("rooms " + (", ".join(r.slug for r in room_rows) if room_rows else
                                "every public room"))
    if active is not _UNSET and active != webhook.active:
        webhook.active = active
        if active:
            webhook.failed_in_a_row = 0
            webhook.disabled_reason = ""
        done.append("enabled" if active else "disabled")
    secret = None
    if rotate_secret:
        secret = _new_secret()
        webhook.secret = _seal(secret)
        done.append("secret rotated")
    if done:
        audit.record(actor.username, "webhook:update", f"webhook {webhook.id}", "; ".join(done))
    db.session.commit()
    if active is True:
        wake()
    return get_webhook(webhook.id), secret


def delete_webhook(actor: Actor, webhook_id: int) -> None:
    """Remove a webhook with its pending and past deliveries. Audited."""
    webhook = _get(webhook_id)
    url = webhook.url
    db.session.execute(delete(_deliveries).where(_deliveries.c.webhook_id == webhook.id))
    db.session.execute(delete(_rooms_of).where(_rooms_of.c.webhook_id == webhook.id))
    db.session.delete(webhook)
    audit.record(actor.username, "webhook:delete", f"webhook {webhook_id}", url)
    db.session.commit()
    log.info("webhook %s deleted", webhook_id)


def _delivery_as_dict(row, slug: str) -> dict:
    return {"id": row.id, "webhook": row.webhook_id, "room": slug, "event": row.event,
            "cursor": row.position, "status": row.status, "attempts": row.attempts,
            "response_code": row.response_code, "latency_ms": row.latency_ms,
            "error": row.error, "created_at": isoformat(row.created_at),
            "last_attempt_at": isoformat(row.last_attempt_at),
            "next_attempt_at": isoformat(row.next_attempt_at) if row.status == "pending" else None,
            "finished_at": isoformat(row.finished_at)}


def deliveries(webhook_id: int, limit: int | None = None) -> list[dict]:
    """The webhook's newest deliveries, newest first."""
    _get(webhook_id)
    limit = min(limit or DELIVERIES_DEFAULT_LIMIT, DELIVERIES_MAX_LIMIT)
    rows = db.session.execute(
        select(WebhookDelivery, Room.slug).join(Room, Room.id == WebhookDelivery.room_id)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.position.desc())
        .limit(limit)).all()
    return [_delivery_as_dict(row, slug) for row, slug in rows]


def redeliver(actor: Actor, delivery_id: str) -> dict:
    """Queue a finished delivery again, at once: the same id and body, a fresh retry window.

    Only while its change is still in the room's log: a deleted message is
    not sent out again. Later changes of that room wait for it. Audited.
    """
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("no such delivery", field="delivery")
    webhook = _get(delivery.webhook_id)
    if not webhook.active:
        raise Conflict("the webhook is disabled: enable it first", field="delivery")
    if delivery.status == "pending":
        raise Conflict("that delivery is still pending", field="delivery")
    # A deleted message's entries leave the log (compaction), and so may not
    # leave Parley again; an entry past retention is as gone.
    if db.session.execute(select(RoomChange.position).where(
            RoomChange.room_id == delivery.room_id,
            RoomChange.position == delivery.position)).first() is None:
        raise Conflict("that change is no longer in the room's log (its message was deleted, "
                       "or it was pruned)", field="delivery")
    now = utcnow()
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.give_up_at = now + timedelta(hours=current_app.config["WEBHOOK_RETRY_HOURS"])
    delivery.claimed_by = None
    delivery.claimed_until = None
    delivery.finished_at = None
    audit.record(actor.username, "webhook:redeliver", f"webhook {webhook.id}", delivery.id)
    db.session.commit()
    wake()
    slug = db.session.execute(select(Room.slug).where(Room.id == delivery.room_id)).scalar_one()
    return _delivery_as_dict(delivery, slug)


# -- queueing (inside the change's transaction) -----------------------------------

_IS_PUBLIC_ROOM = (exists().where(_room_table.c.id == bindparam("room_id"),
                                  _room_table.c.private.is_(False),
                                  _room_table.c.is_dm.is_(False)))
_NAMES_ROOM = (exists().where(_rooms_of.c.webhook_id == _webhooks.c.id,
                              _rooms_of.c.room_id == bindparam("room_id")))
# Built once: ``changes.record`` runs it for every change. FOR KEY SHARE (on
# PostgreSQL; SQLite has one writer anyway): a webhook deleted meanwhile
# waits for this transaction, whose deliveries it then removes, instead of
# failing the change's insert on the foreign key. The insert's foreign-key
# check takes the same lock, so it costs nothing more.
_MATCHING = (select(_webhooks.c.id, _webhooks.c.events)
             .where(_webhooks.c.active.is_(True),
                    or_(and_(_webhooks.c.all_rooms.is_(True), _IS_PUBLIC_ROOM), _NAMES_ROOM))
             .with_for_update(read=True, key_share=True, of=_webhooks))
_INSERT_DELIVERY = insert(_deliveries)


@lru_cache(maxsize=256)
def _event_filter(events: str) -> frozenset[str]:
    return frozenset(json.loads(events))


def enqueue(connection, room_id: int, slug: str, position: int, event: str, data: dict) -> None:
    """Queue this change for every active webhook it matches, in the caller's transaction."""
    matching = [webhook_id for webhook_id, events in
                connection.execute(_MATCHING, {"room_id": room_id})
                if not _event_filter(events) or event in _event_filter(events)]
    if not matching:
        return
    now = utcnow()
    give_up_at = now + timedelta(hours=current_app.config["WEBHOOK_RETRY_HOURS"])
    rows = []
    for webhook_id in matching:
        delivery_id = "whd_" + secrets.token_hex(16)
        body = json.dumps({"id": delivery_id, "event": event, "room": slug, "cursor": position,
                           "data": data, "created_at": isoformat(now)},
                          separators=(",", ":"), ensure_ascii=False)
        rows.append({"id": delivery_id, "webhook_id": webhook_id, "room_id": room_id,
                     "position": position, "event": event, "body": body, "status": "pending",
                     "attempts": 0, "next_attempt_at": now, "give_up_at": give_up_at,
                     "error": "", "created_at": now})
    connection.execute(_INSERT_DELIVERY, rows)
    changes.after_commit(wake)


_changes_table = RoomChange.__table__
# (Bound names other than the columns': an UPDATE reserves those.)
_MESSAGE_POSITIONS = (select(_changes_table.c.position)
                      .where(_changes_table.c.room_id == bindparam("of_room"),
                             _changes_table.c.message_id == bindparam("of_message")))
_OF_MESSAGE = and_(_deliveries.c.room_id == bindparam("of_room"),
                   _deliveries.c.position.in_(_MESSAGE_POSITIONS))
# A deleted message is compacted out of the log (changes.forget_message):
# what was not sent yet is dropped, and no stored body keeps its text.
_DROP_UNSENT = (update(_deliveries)
                .where(_OF_MESSAGE, _deliveries.c.status == "pending")
                .values(status="dropped", body="", claimed_by=None, claimed_until=None,
                        error="its message was deleted before it was delivered",
                        finished_at=bindparam("dropped_at")))
_FORGET_SENT = update(_deliveries).where(_OF_MESSAGE, _deliveries.c.body != "").values(body="")


def forget_message(connection, room_id: int, message_id: int) -> None:
    """In the deleting transaction, before the log forgets the message's entries."""
    params = {"of_room": room_id, "of_message": message_id, "dropped_at": utcnow()}
    connection.execute(_DROP_UNSENT, params)
    connection.execute(_FORGET_SENT, params)


# -- the dispatcher ---------------------------------------------------------------

class _Dispatcher:
    """This process's one dispatcher: its wake-up call and the attempts in flight."""

    def __init__(self):
        self.wakeup = threading.Event()  # gevent's, under the patched server
        self.in_flight = 0
        self.started = False
        self.claims = 0
        self.pruned_at = 0.0


_dispatcher = _Dispatcher()


def wake() -> None:
    """Look for due deliveries now (after a commit that queued some)."""
    _dispatcher.wakeup.set()


def start(app) -> None:
    """Start this process's dispatcher (once). Not under the Flask test
    client (``TESTING``): those tests call ``dispatch_once`` themselves."""
    if _dispatcher.started or app.testing:
        return
    _dispatcher.started = True
    from ..extensions import socketio

    socketio.start_background_task(_dispatch_forever, app)
    log.info("webhook dispatcher started")


def _dispatch_forever(app) -> None:
    while True:
        _dispatcher.wakeup.wait(app.config["WEBHOOK_POLL_SECONDS"])
        _dispatcher.wakeup.clear()
        try:
            dispatch_once(app)
        except Exception:
            log.exception("webhook dispatch failed")


def dispatch_once(app, *, wait: bool = False) -> int:
    """Claim what this process has room for and start sending it; how many were claimed.

    ``wait``: send them here, one after the other (tests).
    """
    from ..extensions import socketio
    from ..sockets.shutdown import state as shutdown

    if shutdown.stopping:
        # A process on its way out claims nothing more: what it claimed
        # would wait for its lease to expire before another process sent it.
        return 0
    free = app.config["WEBHOOK_CONCURRENCY"] - _dispatcher.in_flight
    with app.app_context():
        try:
            claimed = _claim(free) if free > 0 else []
            if time.monotonic() - _dispatcher.pruned_at > _PRUNE_EVERY_SECONDS:
                _dispatcher.pruned_at = time.monotonic()
                prune()
        finally:
            db.session.remove()
    for item in claimed:
        _dispatcher.in_flight += 1
        if wait:
            _attempt_in_context(app, item)
        else:
            socketio.start_background_task(_attempt_in_context, app, item)
    return len(claimed)


def _claim(limit: int) -> list[dict]:
    now = utcnow()
    cfg = current_app.config
    # A read first: an idle queue costs no write transaction (SQLite's one
    # write lock) on every poll.
    if db.session.execute(
            select(_deliveries.c.id).join(_webhooks, _webhooks.c.id == _deliveries.c.webhook_id)
            .where(_deliveries.c.status == "pending", _deliveries.c.next_attempt_at <= now,
                   _webhooks.c.active.is_(True))
            .limit(1)).first() is None:
        db.session.commit()
        return []
    _dispatcher.claims += 1
    token = f"{bus.PROCESS_ID}/{_dispatcher.claims}"
    earlier = aliased(_deliveries)
    due = (select(_deliveries.c.id)
           .join(_webhooks, _webhooks.c.id == _deliveries.c.webhook_id)
           .where(_deliveries.c.status == "pending", _deliveries.c.next_attempt_at <= now,
                  or_(_deliveries.c.claimed_until.is_(None), _deliveries.c.claimed_until < now),
                  _webhooks.c.active.is_(True),
                  ~exists().where(earlier.c.webhook_id == _deliveries.c.webhook_id,
                                  earlier.c.room_id == _deliveries.c.room_id,
                                  earlier.c.status == "pending",
                                  earlier.c.position < _deliveries.c.position))
           .order_by(_deliveries.c.next_attempt_at, _deliveries.c.position)
           .limit(limit)
           .with_for_update(skip_locked=True, of=_deliveries)
           # Its own FROM, not the UPDATE's table.
           .correlate(None))
    result = db.session.execute(
        update(_deliveries).where(_deliveries.c.id.in_(due.scalar_subquery()))
        .values(claimed_by=token,
                claimed_until=now + timedelta(seconds=cfg["WEBHOOK_LEASE_SECONDS"]))
        .execution_options(synchronize_session=False))
    db.session.commit()
    if not result.rowcount:
        return []
    rows = db.session.execute(
        select(_deliveries.c.id, _deliveries.c.webhook_id, _deliveries.c.event,
               _deliveries.c.body, _deliveries.c.attempts, _deliveries.c.give_up_at,
               _webhooks.c.url, _webhooks.c.secret)
        .join(_webhooks, _webhooks.c.id == _deliveries.c.webhook_id)
        .where(_deliveries.c.claimed_by == token)).all()
    db.session.commit()
    return [{**row._asdict(), "token": token} for row in rows]


def _attempt_in_context(app, item: dict) -> None:
    try:
        with app.app_context():
            try:
                outcome = attempt(item)
                _finish(item, outcome)
            except Exception:
                db.session.rollback()
                log.exception("webhook delivery %s: recording the attempt failed", item["id"])
            finally:
                db.session.remove()
    finally:
        _dispatcher.in_flight -= 1
        wake()  # room for the next one (the room's next change may be due now)


class Outcome:
    """What one attempt came to: ``kind`` is delivered, retry or failed."""

    __slots__ = ("kind", "code", "latency_ms", "error")

    def __init__(self, kind: str, code: int | None = None, latency_ms: int | None = None,
                 error: str = ""):
        self.kind, self.code, self.latency_ms = kind, code, latency_ms
        self.error = error[:_ERROR_LENGTH]


@lru_cache(maxsize=1)
def _tls_context():
    import httpx

    return httpx.create_ssl_context()


def attempt(item: dict) -> Outcome:
    """POST the delivery once; never raises for anything the receiver or network does."""
    import gevent
    import httpx

    cfg = current_app.config
    secret = _unseal(item["secret"])
    if secret is None:
        return Outcome("failed", error="secret unreadable (SECRET_KEY changed?): rotate it")
    parts = urlsplit(item["url"])
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connect, read = cfg["WEBHOOK_CONNECT_TIMEOUT_SECONDS"], cfg["WEBHOOK_READ_TIMEOUT_SECONDS"]
    started = time.perf_counter()
    try:
        # A resolver that never answers must not outlive the lease either.
        with gevent.Timeout(connect, OSError("no answer in time")):
            address = resolve(host, port, cfg["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    except AddressRefused as refused:
        return Outcome("failed", error=str(refused))
    except OSError as exc:
        return Outcome("retry", error=f"cannot resolve {host}: {exc}")
    pinned = address if ":" not in address else f"[{address}]"
    target = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path or "/", parts.query, ""))
    body = item["body"].encode()
    timestamp = str(int(time.time()))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Content-Type": "application/json",
               "User-Agent": USER_AGENT, SIGNATURE_HEADER: sign(secret, timestamp, body),
               TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: item["id"],
               EVENT_HEADER: item["event"]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
    try:
        # The request within connect + read: a receiver trickling its answer
        # a byte at a time must not outlive the lease (which is longer than
        # connect + read + the resolver's connect, checked at start).
        with gevent.Timeout(connect + read, TimeoutError("the attempt took too long")):
            # One client per attempt: its connection is to the checked
            # address, never reused for another host on the same one.
            with httpx.Client(verify=_tls_context(), follow_redirects=False, timeout=timeout,
                              trust_env=False) as client:
                request = client.build_request("POST", target, content=body, headers=headers,
                                               extensions=extensions)
                # The answer's body is never read: only its status counts,
                # and a receiver must not make this process hold megabytes.
                response = client.send(request, stream=True)
                response.close()
    except (httpx.TimeoutException, TimeoutError) as exc:
        return Outcome("retry", latency_ms=_since(started), error=f"timed out: {exc}")
    except httpx.HTTPError as exc:
        return Outcome("retry", latency_ms=_since(started),
                       error=f"{type(exc).__name__}: {exc}")
    latency = _since(started)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("delivered", code, latency)
    if code >= 500 or code in _RETRIED_CODES:
        return Outcome("retry", code, latency, f"answered {code}")
    if 300 <= code < 400:
        return Outcome("failed", code, latency,
                       f"answered {code} (redirects are not followed)")
    return Outcome("failed", code, latency, f"answered {code}")


def _since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def backoff(attempts: int, cfg) -> float:
    """Seconds before retry number ``attempts`` (1 after the first failure)."""
    base = cfg["WEBHOOK_BACKOFF_SECONDS"] * 2 ** min(attempts - 1, 30)
    return min(base * random.uniform(0.5, 1.5), cfg["WEBHOOK_MAX_BACKOFF_SECONDS"])


def _finish(item: dict, outcome: Outcome) -> None:
    """Record the attempt, if this process still holds the claim; count and disable."""
    cfg = current_app.config
    now = utcnow()
    attempts = item["attempts"] + 1
    kind = outcome.kind
    values = {"attempts": attempts, "last_attempt_at": now, "response_code": outcome.code,
              "latency_ms": outcome.latency_ms, "error": outcome.error,
              "claimed_by": None, "claimed_until": None}
    give_up_at = item["give_up_at"]
    if give_up_at.tzinfo is None:  # SQLite hands back naive UTC
        give_up_at = give_up_at.replace(tzinfo=now.tzinfo)
    if kind == "retry":
        if now >= give_up_at:
            kind = "failed"
            values["error"] = (outcome.error + "; gave up after retrying")[:_ERROR_LENGTH]
        else:
            values["next_attempt_at"] = min(now + timedelta(seconds=backoff(attempts, cfg)),
                                            give_up_at)
    if kind != "retry":
        values.update(status=kind, finished_at=now)
    result = db.session.execute(
        update(_deliveries).where(_deliveries.c.id == item["id"],
                                  _deliveries.c.claimed_by == item["token"])
        .values(**values))
    if not result.rowcount:
        db.session.rollback()
        log.warning("webhook delivery %s: claim lost (lease expired?), result dropped",
                    item["id"])
        return
    if kind == "delivered":
        db.session.execute(update(_webhooks).where(_webhooks.c.id == item["webhook_id"],
                                                   _webhooks.c.failed_in_a_row != 0)
                           .values(failed_in_a_row=0))
    elif kind == "failed":
        failed = db.session.execute(
            update(_webhooks).where(_webhooks.c.id == item["webhook_id"])
            .values(failed_in_a_row=_webhooks.c.failed_in_a_row + 1)
            .returning(_webhooks.c.failed_in_a_row)).scalar()
        if failed is not None and failed >= cfg["WEBHOOK_DISABLE_AFTER"]:
            _disable(item["webhook_id"], failed, outcome.error)
    db.session.commit()
    metrics.webhook_delivery(kind)
    log.info("webhook delivery %s attempt %s: %s %s", item["id"], attempts, kind,
             outcome.code or outcome.error)


def _disable(webhook_id: int, failed: int, last_error: str) -> None:
    reason = f"{failed} deliveries failed in a row; last: {last_error}"[:200]
    result = db.session.execute(update(_webhooks).where(_webhooks.c.id == webhook_id,
                                                        _webhooks.c.active.is_(True))
                                .values(active=False, disabled_reason=reason))
    if result.rowcount:
        audit.record("server", "webhook:disabled", f"webhook {webhook_id}", reason)
        log.warning("webhook %s disabled: %s", webhook_id, reason)


# -- retention and metrics ----------------------------------------------------------

def prune(now=None) -> int:
    """Drop finished deliveries older than ``WEBHOOK_DELIVERY_RETENTION_DAYS``."""
    cutoff = (now or utcnow()) - timedelta(
        days=current_app.config["WEBHOOK_DELIVERY_RETENTION_DAYS"])
    result = db.session.execute(delete(_deliveries).where(_deliveries.c.status != "pending",
                                                          _deliveries.c.finished_at < cutoff))
    db.session.commit()
    return result.rowcount or 0


def queue_depth() -> int:
    """Deliveries pending (waiting or retrying), for every webhook."""
    return db.session.execute(select(func.count()).select_from(_deliveries)
                              .where(_deliveries.c.status == "pending")).scalar_one()
