"""Settings, read from the environment: one class per environment.

``PARLEY_ENV`` picks the class (development, production, testing). Every
variable is listed, with its default, in ``.env.example``.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise RuntimeError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _registration(value: str | None):
    """``REGISTRATION_OPEN``: true (anyone may sign up), false (no /register) or ``invite``.

    ``invite``: sign-up needs a single-use invite code made by an admin
    (``flask --app wsgi create-invite`` or the admin console).
    """
    if value is not None and value.strip().lower() == "invite":
        return "invite"
    if value is None or value == "":
        return True
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _origins(value: str | None) -> list[str] | None:
    """``CORS_ALLOWED_ORIGINS``: comma-separated origins; unset means same origin.

    ``*`` is refused on purpose: with cookie authentication it would let any
    web page open a socket as the signed-in user (cross-site WebSocket
    hijacking).
    """
    if not value:
        return None
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    if "*" in origins:
        raise RuntimeError("CORS_ALLOWED_ORIGINS may not be '*': list the origins")
    return origins


class Config:
    ENV_NAME = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    # hide_parameters: a failed statement's error (logged with its traceback)
    # must not carry its parameters: message bodies, password hashes, tokens.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "hide_parameters": True}
    # What a starting server does with the schema (app/database.py): "empty"
    # creates it on an empty database only, "true" also applies newer
    # migrations, "false" never touches it (the server refuses to start until
    # `flask db upgrade` has run).
    AUTO_MIGRATE = _choice("AUTO_MIGRATE", ("empty", "true", "false"), "empty")
    REDIS_URL = os.environ.get("REDIS_URL") or None
    CORS_ALLOWED_ORIGINS = _origins(os.environ.get("CORS_ALLOWED_ORIGINS"))
    REGISTRATION_OPEN = _registration(os.environ.get("REGISTRATION_OPEN"))
    # Rooms every new account joins (comma-separated names; empty: none), so
    # that a new user does not land in an empty sidebar. Created on first use.
    DEFAULT_ROOMS = os.environ.get("DEFAULT_ROOMS", "General")
    # How long an invite code can be used. Long enough to pass a code on over
    # a weekend; short enough that a leaked, forgotten code stops working.
    INVITE_TTL_HOURS = float(os.environ.get("INVITE_TTL_HOURS", "72"))
    # How many reverse proxies (nginx) stand in front and set X-Forwarded-*.
    PROXY_COUNT = _int("PROXY_COUNT", 0)
    # WebSocket only: needed to run several gunicorn workers on one port
    # (long-polling needs every request of a session to reach one process).
    WEBSOCKET_ONLY = _bool("WEBSOCKET_ONLY", False)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    # Chat limits (PROTOCOL.md gives these defaults).
    MESSAGE_MAX_LENGTH = _int("MESSAGE_MAX_LENGTH", 4000)
    ROOM_NAME_MAX_LENGTH = _int("ROOM_NAME_MAX_LENGTH", 64)
    ROOM_TOPIC_MAX_LENGTH = _int("ROOM_TOPIC_MAX_LENGTH", 256)
    # At most 64: the width of users.display_name.
    DISPLAY_NAME_MAX_LENGTH = min(_int("DISPLAY_NAME_MAX_LENGTH", 64), 64)
    # 10 messages a second with a burst of 20: a moving window of 20 sends
    # per 2 seconds allows a burst of 20 after a quiet spell and 10/s sustained.
    MESSAGE_RATE_LIMIT = os.environ.get("MESSAGE_RATE_LIMIT", "20 per 2 seconds")
    # Abuse limits (app/services/ratelimit.py), limits-library notation.
    # Failed sign-ins only: 10 per account in 5 minutes is far more than
    # mistyping produces and stops a guessing attack at 120 tries an hour;
    # per address it is higher, since one office or NAT holds many users.
    SIGNIN_USER_RATE_LIMIT = os.environ.get("SIGNIN_USER_RATE_LIMIT", "10 per 5 minutes")
    SIGNIN_ADDRESS_RATE_LIMIT = os.environ.get("SIGNIN_ADDRESS_RATE_LIMIT", "50 per 5 minutes")
    # Sign-up attempts per address. Each account multiplies every per-user
    # limit (rooms an hour, sends), so a script must not mint them: a person
    # makes one account, a household or an office behind one NAT a few an
    # hour; 10 an hour lets those through and holds a script to 240 a day.
    SIGNUP_ADDRESS_RATE_LIMIT = os.environ.get("SIGNUP_ADDRESS_RATE_LIMIT", "10 per hour")
    # "@room" (owners and admins only) pushes a mention to every member:
    # a team lead calls everyone a few times a day; 10 an hour is more than
    # that, and holds a compromised owner account to a nuisance, not a flood.
    MENTION_ROOM_RATE_LIMIT = os.environ.get("MENTION_ROOM_RATE_LIMIT", "10 per hour")
    # Only a message's first this-many distinct "@" words are read as
    # mentions: a person names a few colleagues; a message naming fifty is
    # a crowd call, which is what @room (and its limit) is for.
    MENTION_MAX_NAMES = _int("MENTION_MAX_NAMES", 20)
    # Rooms are cheap to make and costly to moderate: a person creates a few
    # a day, a spam script thousands.
    ROOM_CREATE_RATE_LIMIT = os.environ.get("ROOM_CREATE_RATE_LIMIT", "10 per hour")
    # Username autocompletion asks once per keystroke pause (150 ms): 30 in
    # 10 seconds is more than fast typing produces, and stops a script from
    # walking the user list at speed.
    USER_SEARCH_RATE_LIMIT = os.environ.get("USER_SEARCH_RATE_LIMIT", "30 per 10 seconds")
    # New direct messages (opening an existing one is free): a person starts
    # a few conversations a day; each new DM pushes room:added to a stranger.
    DM_OPEN_RATE_LIMIT = os.environ.get("DM_OPEN_RATE_LIMIT", "30 per hour")
    # Display-name changes: each one is pushed to every room the user is in
    # (user:updated). A person renames themself a few times ever; a script
    # cycling names to flood the rooms gets ten an hour.
    DISPLAY_NAME_RATE_LIMIT = os.environ.get("DISPLAY_NAME_RATE_LIMIT", "10 per hour")
    # Live /public connections, counted per server process (0: no cap). A
    # person has a few tabs and devices; one address may be a whole NAT, or a
    # load test, which should raise it.
    MAX_CONNECTIONS_PER_USER = _int("MAX_CONNECTIONS_PER_USER", 50)
    MAX_CONNECTIONS_PER_ADDRESS = _int("MAX_CONNECTIONS_PER_ADDRESS", 2000)
    # room:join and message:history per user: each reads up to a page of 500
    # messages. A client that reconnects rejoins every room it shows at once
    # (50 rooms is a heavy user), so 200 a minute lets one rejoin all 50 four
    # times a minute with history to spare, while a script asking for
    # 500-message pages is held to about three a second.
    HEAVY_READ_RATE_LIMIT = os.environ.get("HEAVY_READ_RATE_LIMIT", "200 per minute")
    # message:search and GET /api/v1/search per user. A search reads the
    # index for every match before it pages, so it costs more than a history
    # page; a person searches a few times a minute (the web page asks once
    # per Enter), and 30 a minute holds a script to one every two seconds.
    SEARCH_RATE_LIMIT = os.environ.get("SEARCH_RATE_LIMIT", "30 per minute")
    # reaction:add and reaction:remove per user (each reaches every joined
    # connection of the room). A person clicks a few chips a minute and
    # toggles one back and forth at most a few times a second; 30 in 10
    # seconds lets that through and holds a script to 3 broadcasts a second.
    REACTION_RATE_LIMIT = os.environ.get("REACTION_RATE_LIMIT", "30 per 10 seconds")
    # Distinct emoji on one message: a reaction bar past 20 chips is no
    # longer read, and it bounds what every Message carries.
    REACTIONS_PER_MESSAGE_MAX = _int("REACTIONS_PER_MESSAGE_MAX", 20)
    # At most one "typing: true" per user and room is passed on in this many
    # seconds (and "false" only after a "true"). The web client refreshes
    # every 3 s and its notices last 6 s, so a person's every refresh gets
    # through; a script sending thousands a second reaches the room twice.
    TYPING_INTERVAL_SECONDS = float(os.environ.get("TYPING_INTERVAL_SECONDS", "2"))
    HISTORY_DEFAULT_LIMIT = 100
    HISTORY_MAX_LIMIT = 500
    # A search's words: a few words are a search, a pasted paragraph is not,
    # and each word is one more term the index must intersect.
    SEARCH_QUERY_MAX_LENGTH = 200
    SEARCH_MAX_WORDS = 16
    SEARCH_DEFAULT_LIMIT = 20
    SEARCH_MAX_LIMIT = 50
    # Engine.IO's maximum packet: a larger one closes that connection.
    MAX_PAYLOAD_BYTES = _int("MAX_PAYLOAD_BYTES", 65536)
    # The transport's deadlines and bounds (app/sockets/transport.py).
    # Request line and headers: a browser sends them in one packet, so 10 s
    # covers any real network and bounds a slowloris connection to 10 s.
    HTTP_HEADER_TIMEOUT_SECONDS = float(os.environ.get("HTTP_HEADER_TIMEOUT_SECONDS", "10"))
    # A whole request body: the largest allowed (MAX_PAYLOAD_BYTES, 64 KiB)
    # takes ~16 s at 32 kbit/s, a poor mobile link; a body trickled more
    # slowly, or announced and never sent, is answered 408 and closed.
    HTTP_BODY_TIMEOUT_SECONDS = float(os.environ.get("HTTP_BODY_TIMEOUT_SECONDS", "20"))
    # Writing one HTTP response: a long-polling answer is at most 16 packets;
    # a client that has not taken it in 30 s is not reading.
    HTTP_SEND_TIMEOUT_SECONDS = float(os.environ.get("HTTP_SEND_TIMEOUT_SECONDS", "30"))
    # Output waiting for one connection. A full history page (500 messages
    # of 4000 characters) is ~2.2 MB, so 8 MiB holds a few; 1000 packets is
    # several seconds of a very busy room. Past either the connection is a
    # slow consumer: it is closed and the client catches up on reconnect.
    MAX_OUTBOX_PACKETS = _int("MAX_OUTBOX_PACKETS", 1000)
    MAX_OUTBOX_BYTES = _int("MAX_OUTBOX_BYTES", 8 * 1024 * 1024)
    # Engine.IO sessions that have not connected a namespace yet. A client
    # connects its namespace within milliseconds of the handshake, so even a
    # NAT full of users has few at once; 100 leaves room for a load test's
    # burst. One that has not connected after 10 s is dropped.
    MAX_ANONYMOUS_SESSIONS_PER_ADDRESS = _int("MAX_ANONYMOUS_SESSIONS_PER_ADDRESS", 100)
    ANONYMOUS_SESSION_TIMEOUT_SECONDS = float(
        os.environ.get("ANONYMOUS_SESSION_TIMEOUT_SECONDS", "10"))
    # A member is shown offline this long after their last connection closes,
    # so a page reload or a brief network drop does not flash "offline" to the
    # room. The contract promises offline within 10 s.
    PRESENCE_GRACE_SECONDS = float(os.environ.get("PRESENCE_GRACE_SECONDS", "5"))
    # Connections that opt into ``presence:batch`` (auth {"presence": "batched"})
    # get a room's presence changes coalesced over this many seconds: a room
    # filling with 1,000 members costs each one an event per window, not 1,000.
    # ``/public`` connects remember each session cookie's user this long
    # (app/sockets/sessioncache.py); sign-out, bans and password changes
    # forget it at once on every process. 0 reads the database every time.
    SESSION_CACHE_SECONDS = float(os.environ.get("SESSION_CACHE_SECONDS", "60"))
    PRESENCE_BATCH_SECONDS = float(os.environ.get("PRESENCE_BATCH_SECONDS", "0.25"))

    # API tokens (app/services/tokens.py). An access token is a JWT that
    # cannot be recalled once issued, except by the family check on every
    # use; 15 minutes (the most allowed) bounds what a leaked one is worth.
    ACCESS_TOKEN_TTL_SECONDS = _int("ACCESS_TOKEN_TTL_SECONDS", 900)
    # A refresh token is single use; an idle client must sign in again after this.
    REFRESH_TOKEN_TTL_SECONDS = _int("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)
    # The Ed25519 signing key as PEM text, or a file holding it; neither set:
    # instance/jwt_ed25519.pem, generated on first use (mode 0600).
    JWT_PRIVATE_KEY = os.environ.get("JWT_PRIVATE_KEY") or None
    JWT_PRIVATE_KEY_FILE = os.environ.get("JWT_PRIVATE_KEY_FILE") or None
    # Failed bot-key and refresh-token requests per address (password grants
    # spend the sign-in limits above: the same buckets as /login). Both
    # secrets are 256-bit random, so this only stops a flood, not a guess.
    TOKEN_ADDRESS_RATE_LIMIT = os.environ.get("TOKEN_ADDRESS_RATE_LIMIT", "50 per 5 minutes")

    # Prometheus metrics at /metrics (app/metrics.py): off unless enabled,
    # then only for the bearer METRICS_TOKEN or the listed addresses/networks.
    METRICS_ENABLED = _bool("METRICS_ENABLED", False)
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    METRICS_ALLOWED_ADDRESSES = os.environ.get("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,::1")

    # The rooms' change log (catch-up and the SSE feed). An entry is kept
    # while it is among its room's newest ENTRIES or younger than DAYS,
    # whichever keeps more: a month covers a client away over a holiday, and
    # 100,000 entries a busy room's last days; older cursors are told to
    # reset. Pruning runs in each server process every PRUNE_SECONDS.
    CHANGE_LOG_RETENTION_DAYS = float(os.environ.get("CHANGE_LOG_RETENTION_DAYS", "30"))
    CHANGE_LOG_RETENTION_ENTRIES = _int("CHANGE_LOG_RETENTION_ENTRIES", 100_000)
    CHANGE_LOG_PRUNE_SECONDS = float(os.environ.get("CHANGE_LOG_PRUNE_SECONDS", "3600"))
    # SSE feed: a comment line this often keeps proxies and load balancers
    # from closing an idle stream (most cut at 60 s) and lets the stream
    # notice a reader whose rights ended; clients retry after RETRY_MS.
    SSE_HEARTBEAT_SECONDS = float(os.environ.get("SSE_HEARTBEAT_SECONDS", "15"))
    SSE_RETRY_MS = _int("SSE_RETRY_MS", 3000)

    # Outgoing webhooks (app/services/webhooks.py). Requests to loopback,
    # private, link-local and other non-public addresses are refused unless
    # ALLOW_PRIVATE_NETWORKS (a receiver on the same host or LAN; the tests).
    WEBHOOK_ALLOW_PRIVATE_NETWORKS = _bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
    # A receiver should answer at once and do its work later: 5 s to connect
    # covers a slow TLS handshake across the world, 10 s to answer (each read)
    # a busy receiver; the request as a whole never takes longer than the two
    # (and resolving the host at most CONNECT).
    WEBHOOK_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_CONNECT_TIMEOUT_SECONDS", "5"))
    WEBHOOK_READ_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_READ_TIMEOUT_SECONDS", "10"))
    # A failed attempt is retried after BACKOFF * 2^(attempt-1) seconds
    # (jittered by +-50 %, at most MAX_BACKOFF) until RETRY_HOURS after the
    # change: 10 s doubles past an hour within ten attempts, so a receiver
    # that was down for a day gets its backlog within the hour it is back.
    WEBHOOK_RETRY_HOURS = float(os.environ.get("WEBHOOK_RETRY_HOURS", "24"))
    WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("WEBHOOK_BACKOFF_SECONDS", "10"))
    WEBHOOK_MAX_BACKOFF_SECONDS = float(os.environ.get("WEBHOOK_MAX_BACKOFF_SECONDS", "3600"))
    # This many deliveries failing for good in a row disable the webhook
    # (audited): a receiver gone for good stops costing requests.
    WEBHOOK_DISABLE_AFTER = _int("WEBHOOK_DISABLE_AFTER", 5)
    # A dispatcher's claim on a delivery: past it, another process takes the
    # delivery over (its holder was killed). Longer than an attempt can last.
    WEBHOOK_LEASE_SECONDS = float(os.environ.get("WEBHOOK_LEASE_SECONDS", "60"))
    # Each process's dispatcher looks for due deliveries this often (and at
    # once after a commit that queued some), sending up to CONCURRENCY at a time.
    WEBHOOK_POLL_SECONDS = float(os.environ.get("WEBHOOK_POLL_SECONDS", "2"))
    WEBHOOK_CONCURRENCY = _int("WEBHOOK_CONCURRENCY", 10)
    # Delivered and failed deliveries are kept this long for the console.
    WEBHOOK_DELIVERY_RETENTION_DAYS = float(
        os.environ.get("WEBHOOK_DELIVERY_RETENTION_DAYS", "7"))

    # argon2id parameters (argon2-cffi's defaults: RFC 9106 low-memory profile).
    PASSWORD_TIME_COST = _int("PASSWORD_TIME_COST", 3)
    PASSWORD_MEMORY_COST = _int("PASSWORD_MEMORY_COST", 65536)

    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    REDIS_URL = None
    WTF_CSRF_ENABLED = False
    PRESENCE_GRACE_SECONDS = 0.2
    # Cheap hashing keeps the suite fast; production keeps the defaults.
    PASSWORD_TIME_COST = 1
    PASSWORD_MEMORY_COST = 1024
    # Suites sign in and create rooms freely; tests/hardening sets tight
    # limits where it tests them.
    SIGNIN_USER_RATE_LIMIT = "10000 per minute"
    SIGNIN_ADDRESS_RATE_LIMIT = "10000 per minute"
    ROOM_CREATE_RATE_LIMIT = "10000 per minute"
    # Suites count the rooms a user is in; tests/sockets/test_people.py
    # turns the default room on where it tests it.
    DEFAULT_ROOMS = ""
    DM_OPEN_RATE_LIMIT = "10000 per minute"
    DISPLAY_NAME_RATE_LIMIT = "10000 per minute"
    SIGNUP_ADDRESS_RATE_LIMIT = "10000 per minute"
    HEAVY_READ_RATE_LIMIT = "10000 per minute"
    SEARCH_RATE_LIMIT = "10000 per minute"
    TOKEN_ADDRESS_RATE_LIMIT = "10000 per minute"


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def load_config(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` from the class for ``PARLEY_ENV``, then ``test_config``."""
    env = os.environ.get("PARLEY_ENV", "development")
    if env not in CONFIGS:
        raise RuntimeError(f"PARLEY_ENV must be one of {sorted(CONFIGS)}, not {env!r}")
    app.config.from_object(CONFIGS[env])
    if test_config:
        app.config.update(test_config)

    app.config["SOCKET_TRANSPORTS"] = (["websocket"] if app.config["WEBSOCKET_ONLY"]
                                       else ["polling", "websocket"])
    if not 1 <= app.config["ACCESS_TOKEN_TTL_SECONDS"] <= 900:
        raise RuntimeError("ACCESS_TOKEN_TTL_SECONDS must be 1 to 900 (15 minutes at most)")
    # An attempt lasts at most the resolver's connect timeout, then connect + read.
    if app.config["WEBHOOK_LEASE_SECONDS"] <= (2 * app.config["WEBHOOK_CONNECT_TIMEOUT_SECONDS"]
                                               + app.config["WEBHOOK_READ_TIMEOUT_SECONDS"]):
        raise RuntimeError("WEBHOOK_LEASE_SECONDS must be longer than 2 x "
                           "WEBHOOK_CONNECT_TIMEOUT_SECONDS + WEBHOOK_READ_TIMEOUT_SECONDS "
                           "(an attempt must end within its lease)")
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'parley.sqlite3'}"
    if not app.config.get("SECRET_KEY"):
        if env == "production":
            raise RuntimeError("SECRET_KEY must be set in production (PARLEY_ENV=production)")
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")


def _instance_secret(path: Path) -> str:
    """A development secret kept under instance/, so sign-ins survive restarts."""
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret
