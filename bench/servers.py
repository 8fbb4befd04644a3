"""The servers under test: Parley (gunicorn -c gunicorn.conf.py), the relay, Redis.

Each runs on a free loopback port, pinned with ``taskset`` to the server's
cores, with its log under the run's work directory, and is stopped (its
whole process group) when the measurement ends.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# What the benchmark changes from Parley's defaults, and why.
BENCH_ENV = {
    "PARLEY_ENV": "development",
    "SECRET_KEY": "bench-secret-key",
    # Cheap password hashing: signing in thousands of users is setup, not the measurement.
    "PASSWORD_TIME_COST": "1",
    "PASSWORD_MEMORY_COST": "1024",
    # One sender drives the fan-out far past a person's 10 messages a second.
    "MESSAGE_RATE_LIMIT": "1000000 per 1 second",
    "ROOM_CREATE_RATE_LIMIT": "1000000 per 1 second",
    "SIGNIN_USER_RATE_LIMIT": "1000000 per 1 second",
    "SIGNIN_ADDRESS_RATE_LIMIT": "1000000 per 1 second",
    "SIGNUP_ADDRESS_RATE_LIMIT": "1000000 per 1 second",
    "HEAVY_READ_RATE_LIMIT": "1000000 per 1 second",
    "DM_OPEN_RATE_LIMIT": "1000000 per 1 second",
    # Thousands of connections open their Engine.IO session at once, from one address.
    "MAX_ANONYMOUS_SESSIONS_PER_ADDRESS": "0",
    # The scenarios make their own rooms; a default room every account joins
    # would put all of them in one room.
    "DEFAULT_ROOMS": "",
    # Every connection comes from 127.0.0.1 and users hold many connections.
    "MAX_CONNECTIONS_PER_USER": "0",
    "MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LOG_LEVEL": "warning",
}


POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL):
    """A fresh ``parley_bench_<random>`` database; its SQLAlchemy URL; dropped after."""
    import psycopg

    name = f"parley_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Process:
    def __init__(self, args: list[str], env: dict, log: Path, cpus: str | None):
        if cpus:
            args = ["taskset", "-c", cpus, *args]
        self.log = log
        self._log_file = open(log, "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log_file.close()


class Redis(Process):
    def __init__(self, workdir: Path, cpus: str | None):
        self.port = free_port()
        super().__init__(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"],
                         dict(os.environ), workdir / f"redis-{self.port}.log", cpus)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() or True,
                   10, "redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class WebServer(Process):
    """gunicorn, Parley's or the relay's; ``workers`` are the arbiter's children."""

    kind = "parley"

    def __init__(self, workdir: Path, *, kind: str = "parley", workers: int = 1,
                 cpus: str | None = "0", redis_url: str | None = None,
                 database_url: str | None = None, extra_env: dict | None = None):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PARLEY_", "REDIS_URL", "WEB_CONCURRENCY"))}
        env.update(BENCH_ENV)
        # The work directory's database, kept across the runs of one
        # invocation (the users signed up once): SQLite by default, or the
        # PostgreSQL database ``postgres_database`` made for this invocation.
        env["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        initialized = workdir / "database-initialized"
        env["WEB_CONCURRENCY"] = str(workers)
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["WEBSOCKET_ONLY"] = "true"
        env.update(extra_env or {})
        bind = f"127.0.0.1:{self.port}"
        if kind == "parley" and not initialized.exists():
            subprocess.run([str(BIN / "flask"), "--app", "wsgi", "init-db"], cwd=ROOT, env=env,
                           check=True, capture_output=True, timeout=120)
            initialized.touch()
        if kind == "parley":
            args = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", bind, "wsgi:app"]
        else:
            # -c /dev/null: without -c, gunicorn would read Parley's
            # ./gunicorn.conf.py (its hooks import the app) for the relay too.
            args = [str(BIN / "gunicorn"), "-c", os.devnull, "-k",
                    "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
                    "--worker-connections", "20000", "--workers", str(workers),
                    "--log-level", "warning", "--bind", bind, "bench.relay:app"]
        super().__init__(args, env, workdir / f"{kind}-{self.port}.log", cpus)
        wait_until(lambda: requests.get(self.url + "/healthz", timeout=2).status_code == 200,
                   60, f"{kind} server on {bind} (log: {self.log})")
        wait_until(lambda: len(self.workers()) == workers, 30, "gunicorn workers")

    def arbiter_pid(self) -> int:
        # taskset execs gunicorn, so the Popen pid is the arbiter's.
        return self.proc.pid

    def workers(self) -> list[int]:
        return child_pids(self.arbiter_pid())

    def rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.workers())

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers())
