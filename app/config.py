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
    REDIS_URL = os.environ.get("REDIS_URL") or None
    CORS_ALLOWED_ORIGINS = _origins(os.environ.get("CORS_ALLOWED_ORIGINS"))
    REGISTRATION_OPEN = _bool("REGISTRATION_OPEN", True)
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
    # 10 messages a second with a burst of 20: a moving window of 20 sends
    # per 2 seconds allows a burst of 20 after a quiet spell and 10/s sustained.
    MESSAGE_RATE_LIMIT = os.environ.get("MESSAGE_RATE_LIMIT", "20 per 2 seconds")
    # Abuse limits (app/services/ratelimit.py), limits-library notation.
    # Failed sign-ins only: 10 per account in 5 minutes is far more than
    # mistyping produces and stops a guessing attack at 120 tries an hour;
    # per address it is higher, since one office or NAT holds many users.
    SIGNIN_USER_RATE_LIMIT = os.environ.get("SIGNIN_USER_RATE_LIMIT", "10 per 5 minutes")
    SIGNIN_ADDRESS_RATE_LIMIT = os.environ.get("SIGNIN_ADDRESS_RATE_LIMIT", "50 per 5 minutes")
    # Rooms are cheap to make and costly to moderate: a person creates a few
    # a day, a spam script thousands.
    ROOM_CREATE_RATE_LIMIT = os.environ.get("ROOM_CREATE_RATE_LIMIT", "10 per hour")
    # Live /public connections, counted per server process (0: no cap). A
    # person has a few tabs and devices; one address may be a whole NAT, or a
    # load test, which should raise it.
    MAX_CONNECTIONS_PER_USER = _int("MAX_CONNECTIONS_PER_USER", 50)
    MAX_CONNECTIONS_PER_ADDRESS = _int("MAX_CONNECTIONS_PER_ADDRESS", 2000)
    HISTORY_DEFAULT_LIMIT = 100
    HISTORY_MAX_LIMIT = 500
    # Engine.IO's maximum packet: a larger one closes that connection.
    MAX_PAYLOAD_BYTES = _int("MAX_PAYLOAD_BYTES", 65536)
    # A member is shown offline this long after their last connection closes,
    # so a page reload or a brief network drop does not flash "offline" to the
    # room. The contract promises offline within 10 s.
    PRESENCE_GRACE_SECONDS = float(os.environ.get("PRESENCE_GRACE_SECONDS", "5"))

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
