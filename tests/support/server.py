"""Real processes for end-to-end tests: gunicorn, redis-server, and sign-in over HTTP.

Every process listens on a free loopback port and is stopped by its fixture;
nothing depends on, or disturbs, services already running on the machine.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .requirements import program

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TEST_PASSWORD = "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message or predicate}")
        time.sleep(interval)


def base_env(database_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "REDIS_URL"))}
    env.update({
        "PARLEY_ENV": "development",
        "SECRET_KEY": "e2e-secret-key",
        "DATABASE_URL": database_url,
        # Fast hashing for tests; production uses argon2's defaults.
        "PASSWORD_TIME_COST": "1",
        "PASSWORD_MEMORY_COST": "1024",
        "PRESENCE_GRACE_SECONDS": "1",
        # Tests count the rooms users are in; the default-room test sets one.
        "DEFAULT_ROOMS": "",
        "LOG_LEVEL": "info",
        # Every test client comes from 127.0.0.1 and the suites share a few
        # accounts: the sign-up, heavy-read and search limits have their own
        # tests (tests/e2e/test_throttles.py, tests/hardening/test_heavy_reads.py,
        # tests/e2e/test_search.py).
        "SIGNUP_ADDRESS_RATE_LIMIT": "100000 per hour",
        "HEAVY_READ_RATE_LIMIT": "100000 per minute",
        "SEARCH_RATE_LIMIT": "100000 per minute",
    })
    env.update(extra)
    return env


def flask_cli(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                            input=stdin, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclass
class Server:
    """One ``gunicorn -c gunicorn.conf.py wsgi:app`` process."""

    env: dict
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    extra_args: tuple[str, ...] = ()
    cwd: Path = ROOT  # another copy of the code (tests of an upgrade)
    _log_file: object = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Server":
        return self.launch().wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30.0) -> "Server":
        wait_until(self._healthy, timeout, message=f"gunicorn on {self.url} never became healthy")
        return self

    def launch(self) -> "Server":
        """Start the process without waiting for it (``wait_healthy`` does)."""
        if self.log_path and self._log_file is None:
            self._log_file = open(self.log_path, "ab")
        log = self._log_file or subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{self.port}", *self.extra_args, "wsgi:app"],
            cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def close(self) -> None:
        """Stop the server and release its log file."""
        self.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@dataclass
class RedisServer:
    """A throwaway redis-server on a free port, keeping nothing on disk."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = program("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it as root)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        client = redis.Redis(port=self.port)
        wait_until(lambda: _ping(client), 10, message="redis-server did not start")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _ping(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def sign_in(base_url: str, username: str, password: str = TEST_PASSWORD) -> requests.Session:
    """Sign in through the real /login form (CSRF token included)."""
    http = requests.Session()
    page = http.get(base_url + "/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = http.post(base_url + "/login", timeout=10, allow_redirects=False,
                         data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code in (302, 303), f"sign-in of {username} failed: {response.status_code}"
    return http


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def sign_up(base_url: str, username: str, password: str = TEST_PASSWORD) -> requests.Session:
    """Create an account through the real /register form; returns the signed-in session."""
    http = requests.Session()
    page = http.get(base_url + "/register", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = http.post(base_url + "/register", timeout=10, allow_redirects=False,
                         data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code in (302, 303), f"sign-up of {username} failed: {response.status_code}"
    return http


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (gunicorn's workers, for the arbiter)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children
