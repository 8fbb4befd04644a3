"""Stopping with SIGTERM (systemd, ``kill``, a rolling restart) moves the clients at once.

gunicorn waits up to ``graceful_timeout`` (30 s by default) for open
connections to end; the server cuts every client's transport as soon as it
gets SIGTERM, so the official clients reconnect to the replacement and catch
up instead of staying on the dying process.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.client import ChatClient
from tests.support.server import Server, base_env, flask_cli, wait_until

from .conftest import OUTPUT, RUNNING, create_users, stop_server, unique

pytestmark = pytest.mark.e2e

DEFAULT_GRACEFUL_TIMEOUT = 30
# Well inside the graceful timeout: the worker notices SIGTERM within a
# second, and the clients retry within a second after that.
MOVED_WITHIN = 8


@pytest.fixture
def stopping_env(tmp_path):
    # The default graceful timeout, unlike the other e2e servers' 2 s.
    env = base_env(f"sqlite:///{tmp_path / 'parley.sqlite3'}", ACCESS_LOG="-",
                   MESSAGE_RATE_LIMIT="100000 per 1 second")
    env.pop("GRACEFUL_TIMEOUT", None)
    flask_cli(env, "init-db")
    create_users(env)
    return env


def _start(env, name: str, port: int | None = None) -> Server:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / f"{name}.log"
    log_path.write_bytes(b"")
    server = Server(env, log_path=log_path) if port is None else Server(env, port=port,
                                                                         log_path=log_path)
    RUNNING.append(server)
    return server.start()


def test_sigterm_moves_both_clients_to_the_replacement_at_once(stopping_env):
    old = _start(stopping_env, "stopping-old")
    replacement = None
    alice = bob = None
    try:
        alice = ChatClient(old.url, "alice", transports=("websocket",)).connect()
        bob = ChatClient(old.url, "bob", transports=("polling",)).connect()
        room = alice.call("room:create", {"name": unique("stop")})["room"]["slug"]
        alice.join(room)
        bob.join(room)
        assert alice.send(room, "before the restart")["ok"]
        bob.wait_for_bodies(room, ["before the restart"])

        stopped_at = time.monotonic()
        os.kill(old.process.pid, signal.SIGTERM)  # the arbiter, as `kill` or systemd would
        wait_until(lambda: alice.disconnects >= 1 and bob.disconnects >= 1, MOVED_WITHIN,
                   message="the clients stayed on the stopping server")
        moved_after = time.monotonic() - stopped_at
        # Nothing is left to wait for: the old process exits long before the timeout.
        wait_until(lambda: old.process.poll() is not None, DEFAULT_GRACEFUL_TIMEOUT / 2,
                   message="the stopped server waited out its graceful timeout")
        exited_after = time.monotonic() - stopped_at
        assert "client connections cut so that they reconnect elsewhere" in old.log()

        # As `systemctl restart`: the replacement binds the same port.
        replacement = _start(stopping_env, "stopping-new", port=old.port)
        wait_until(lambda: alice.connects >= 2 and bob.connects >= 2, 20,
                   message="the clients never reconnected to the replacement")
        wait_until(lambda: alice.sio.connected and bob.sio.connected, 10)
        assert alice.send(room, "alice after the restart")["ok"]
        assert bob.send(room, "bob after the restart")["ok"]
        alice.wait_for_bodies(room, ["bob after the restart"])
        bob.wait_for_bodies(room, ["alice after the restart"])
        print(f"clients moved after {moved_after:.1f}s; the old process exited after "
              f"{exited_after:.1f}s")
    finally:
        for client in (alice, bob):
            if client is not None:
                client.close()
        for server in (replacement, old):
            if server is not None:
                stop_server(server)
