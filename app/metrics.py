"""Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Off by default (``METRICS_ENABLED``); when off, every hook below returns at
once and nothing is counted. When on, ``/metrics`` answers only a request
with ``Authorization: Bearer METRICS_TOKEN`` or one from
``METRICS_ALLOWED_ADDRESSES`` (addresses or networks; loopback by default).

Several gunicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory (gunicorn.conf.py empties it at start and marks dead workers);
prometheus-client then keeps every worker's values in files there and any
worker's ``/metrics`` answers for all of them.

The hooks are called from one place each: ``app/sockets/edge.py``'s
``acked`` (events, errors, send-to-ack latency, catch-up sizes), the API
edge, ``messages.send`` (messages stored), ``ratelimit.report``
(refusals) and the webhook dispatcher (attempts by outcome; the queue's
depth is counted at scrape time). Connections are counted by a per-process task every few seconds,
so a long-polling connection that upgrades to WebSocket moves series.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from contextlib import contextmanager

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, multiprocess)

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

# Latency buckets in seconds: a send is a few milliseconds on SQLite and
# PostgreSQL alike (docs/performance.md); the top buckets catch lock waits.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Catch-up pages are at most HISTORY_MAX_LIMIT (500), 100 by default.
PAGE_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 250, 500)
# How often each process recounts its connections by namespace and transport.
CONNECTIONS_EVERY_SECONDS = 5.0

CONNECTIONS = Gauge("parley_connections", "Live Socket.IO connections",
                    ["namespace", "transport"], multiprocess_mode="livesum")
EVENTS = Counter("parley_socket_events_total", "Socket.IO events answered, by outcome code",
                 ["namespace", "event", "code"])
API_REQUESTS = Counter("parley_api_requests_total", "REST API requests, by outcome code",
                       ["route", "code"])
SEND_ACK = Histogram("parley_message_send_ack_seconds",
                     "From a message send's arrival to its ack (stored and committed)",
                     ["door"], buckets=LATENCY_BUCKETS)
MESSAGES_STORED = Counter("parley_messages_stored_total", "Messages stored (replays excluded)")
CATCH_UP = Histogram("parley_catch_up_messages", "Messages in a room:join catch-up page",
                     buckets=PAGE_BUCKETS)
RATE_LIMITED = Counter("parley_rate_limit_refusals_total", "Requests refused by a limit",
                       ["rule"])
WEBHOOK_DELIVERIES = Counter("parley_webhook_deliveries_total",
                             "Webhook delivery attempts, by outcome (delivered, retry, failed)",
                             ["outcome"])
WEBHOOK_QUEUE = Gauge("parley_webhook_queue_depth",
                      "Webhook deliveries pending (waiting or retrying), at scrape time",
                      multiprocess_mode="livemostrecent")
REDIS_UP = Gauge("parley_redis_up", "1 when Redis answers a ping, 0 when not (at scrape time)",
                 multiprocess_mode="livemostrecent")

_enabled = False
_counting = False


def init_app(app) -> None:
    global _enabled
    _enabled = bool(app.config["METRICS_ENABLED"])
    app.register_blueprint(bp)


# -- hooks (no-ops while metrics are off) --------------------------------------

def socket_event(namespace: str, event: str, code: str, seconds: float, result) -> None:
    if not _enabled:
        return
    EVENTS.labels(namespace, event, code).inc()
    if code != "ok":
        return
    if event == "message:send":
        SEND_ACK.labels("socket").observe(seconds)
    elif event == "room:join" and isinstance(result, dict):
        CATCH_UP.observe(len(result.get("messages") or ()))


def api_request(route: str, code: str, seconds: float) -> None:
    if _enabled:
        API_REQUESTS.labels(route, code).inc()


@contextmanager
def send_timer():
    """Time a REST send (the socket's is timed in ``acked``)."""
    started = time.perf_counter()
    yield
    if _enabled:
        SEND_ACK.labels("rest").observe(time.perf_counter() - started)


def message_stored() -> None:
    if _enabled:
        MESSAGES_STORED.inc()


def webhook_delivery(outcome: str) -> None:
    if _enabled:
        WEBHOOK_DELIVERIES.labels(outcome).inc()


def rate_limited(rule: str) -> None:
    if _enabled:
        RATE_LIMITED.labels(rule).inc()


# -- connections, counted per process --------------------------------------------

def start(app) -> None:
    """Start this process's connection counter (once; called at the first connection)."""
    global _counting
    if not _enabled or _counting:
        return
    _counting = True
    from .extensions import socketio

    socketio.start_background_task(_count_forever)


def _count_forever() -> None:
    global _counting
    from .extensions import socketio

    try:
        while _enabled:
            try:
                count_connections()
            except Exception:
                log.warning("could not count connections for metrics", exc_info=True)
            socketio.sleep(CONNECTIONS_EVERY_SECONDS)
    finally:
        _counting = False


def count_connections() -> None:
    from .events import ADMIN, PUBLIC
    from .extensions import socketio
    from .services.connections import live

    server = socketio.server
    for namespace, connections in ((PUBLIC, live.public), (ADMIN, live.admins)):
        counts = {"polling": 0, "websocket": 0}
        for sid in connections.sids():
            try:
                counts[server.transport(sid, namespace)] += 1
            except (KeyError, ValueError):
                continue  # closed between the listing and the look-up
        for transport, count in counts.items():
            CONNECTIONS.labels(namespace, transport).set(count)


# -- the scrape ----------------------------------------------------------------------

def _allowed_networks(setting: str) -> list:
    networks = []
    for item in setting.split(","):
        if item.strip():
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
    return networks


def _may_scrape() -> bool:
    cfg = current_app.config
    token = cfg.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks(cfg["METRICS_ALLOWED_ADDRESSES"]))


def _redis_up() -> None:
    client = current_app.extensions.get("parley_redis")
    if client is None:
        return
    try:
        client.ping()
        REDIS_UP.set(1)
    except Exception:
        REDIS_UP.set(0)


def _webhook_queue() -> None:
    from .services import webhooks

    try:
        WEBHOOK_QUEUE.set(webhooks.queue_depth())
    except Exception:
        log.warning("could not count the webhook queue for metrics", exc_info=True)


@bp.route("/metrics")
def scrape():
    """Prometheus text format; 404 while off, 403 for a caller not allowed to scrape."""
    if not _enabled:
        abort(404)
    if not _may_scrape():
        return Response("forbidden\n", status=403, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    _redis_up()
    _webhook_queue()
    count_connections()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
