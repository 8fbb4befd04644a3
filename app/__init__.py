"""Parley: a realtime group chat server.

``create_app`` reads as the table of contents of the application.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from .config import load_config
from .extensions import csrf, db, login_manager, migrate, socketio

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"),
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    # Settings: the class for PARLEY_ENV, then the tests' overrides.
    load_config(app, test_config)
    configure_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_namespaces(app)
    register_commands(app)
    trust_proxies(app)
    prepare_stopping(app)
    return app


def prepare_stopping(app: Flask) -> None:
    """On SIGTERM, move the clients elsewhere at once (app/sockets/shutdown.py).

    gunicorn.conf.py calls ``parley_stopping`` from the worker's SIGTERM
    handler; the gate answers ``503`` from then on. Outermost, so that it
    comes before the proxy fix and Socket.IO's middleware.
    """
    from .sockets import shutdown

    app.wsgi_app = shutdown.StoppingGate(app.wsgi_app)
    app.extensions["parley_stopping"] = shutdown.begin


def trust_proxies(app: Flask) -> None:
    """Behind N reverse proxies, take scheme, host and client address from
    their X-Forwarded-* headers (so Secure cookies, redirects and the
    same-origin check see the public URL). Wraps Flask-SocketIO's middleware
    too, so it must come after ``init_app``."""
    count = app.config["PROXY_COUNT"]
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def configure_logging(app: Flask) -> None:
    level = app.config["LOG_LEVEL"].upper()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level,
                            format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    logging.getLogger("app").setLevel(level)


def register_extensions(app: Flask) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A database file cannot drop a connection: no "SELECT 1" ping on
        # every checkout (every socket event) as a network database needs.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(ROOT / "app" / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)

    from .services import cluster
    from .services.ratelimit import limits

    limits.init_app(app)
    cluster.configure(app)
    _init_socketio(app)
    from .events import presence_batches

    presence_batches.window = app.config["PRESENCE_BATCH_SECONDS"]
    # Background work (heartbeat, control bus) starts in a serving process
    # only: gunicorn's post_worker_init calls this, and so does the first
    # socket connection under any other server. CLI commands never start it.
    app.extensions["parley_start"] = lambda: _start(app)
    # gunicorn's post_worker_init calls this first: the worker serves only
    # from a schema it matches (app/database.py).
    app.extensions["parley_prepare_schema"] = lambda: _prepare_schema(app)


def _prepare_schema(app: Flask) -> None:
    from .database import prepare_schema

    prepare_schema(app)


def _start(app: Flask) -> None:
    from . import metrics
    from .services import cluster, webhooks

    # Per process: heartbeat and bus, the metrics counter, the webhook dispatcher.
    cluster.start(app, _connection_count)
    metrics.start(app)
    webhooks.start(app)
    if not app.extensions.get("parley_checked_rooms"):
        app.extensions["parley_checked_rooms"] = True
        warn_of_rooms_posing_as_dms(app)


def warn_of_rooms_posing_as_dms(app: Flask) -> None:
    """One WARNING at start naming the rooms that look like DMs but are not.

    Never stops the start: a database not migrated yet is logged and skipped.
    """
    from .services.rooms import rooms_posing_as_dms

    log = logging.getLogger(__name__)
    try:
        with app.app_context():
            found = rooms_posing_as_dms()
            db.session.remove()
    except Exception:
        log.warning("could not check for rooms posing as direct messages", exc_info=True)
        return
    if found:
        log.warning("%d room(s) look like direct messages but are not genuine; dm:open no "
                    "longer uses them. Review each (flask --app wsgi check-rooms; "
                    "docs/hardening.md): %s", len(found),
                    "; ".join(f"{slug}: {why}" for slug, why in found))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes a
    # writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _init_socketio(app: Flask) -> None:
    import engineio.payload

    # A long-polling client sends its queued events as one batch; python-
    # engineio refuses batches of more than 16 packets by default, which drops
    # a client that sends quickly. The batch is still bounded in bytes by
    # max_http_buffer_size, so the packet count may be generous.
    engineio.payload.Payload.max_decode_packets = 4096
    # The other direction: python clients refuse responses of over 16 packets.
    from .sockets.polling import cap_polling_responses

    cap_polling_responses()
    from .sockets.tokenauth import origin_policy

    options = {
        "transports": app.config["SOCKET_TRANSPORTS"],
        # The Origin rule, except for cookieless (token) clients: see tokenauth.
        "cors_allowed_origins": origin_policy(app.config["CORS_ALLOWED_ORIGINS"]),
        "max_http_buffer_size": app.config["MAX_PAYLOAD_BYTES"],
        "ping_interval": 25,
        "ping_timeout": 20,
        "logger": False,
        "engineio_logger": False,
    }
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        from .services.cluster import LISTEN_OPTIONS
        from .services.connections import live
        from .sockets.queue import RecoveringRedisManager

        # Flask-SocketIO's channel name, so that external emitters
        # (app.external, `flask announce`) reach these processes.
        options["client_manager"] = RecoveringRedisManager(
            redis_url, channel="flask-socketio", redis_options=LISTEN_OPTIONS,
            on_recover=live.drop_transports)
    socketio.init_app(app, **options)
    from .sockets.transport import guard

    # Binary packets refused, a bound on each connection's output, sessions
    # without a namespace capped and timed out, malformed packets counted.
    guard(socketio.server, app.config)
    from .sockets.edge import ConnectionSessionInterface

    app.session_interface = ConnectionSessionInterface()


def _connection_count() -> int:
    from .services.connections import live

    return len(live.public)


def register_blueprints(app: Flask) -> None:
    from . import api, metrics
    from .web import account, admin, auth, chat, feed, health

    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(feed.bp)
    app.register_blueprint(health.bp)
    api.init_app(app)
    metrics.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    from .web.errors import register_errorhandlers as register

    register(app)


def register_security_headers(app: Flask) -> None:
    from .web.security import add_security_headers

    app.after_request(add_security_headers)


def register_namespaces(app: Flask) -> None:
    from .sockets.admin import AdminNamespace
    from .sockets.public import PublicNamespace

    socketio.on_namespace(PublicNamespace("/public"))
    socketio.on_namespace(AdminNamespace("/admin"))


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
