"""The session cache (app/sockets/sessioncache.py) across two processes on one Redis:
a session that ended, or a user banned, cannot connect on either process,
although both remembered the cookie a moment before."""
from __future__ import annotations

import re

import pytest
import requests
import socketio

from tests.admin.test_e2e import Console
from tests.support.client import ChatClient
from tests.support.server import TEST_PASSWORD, flask_cli, sign_up, wait_until

from .conftest import unique

pytestmark = pytest.mark.multiproc


def copy_of(http: requests.Session) -> requests.Session:
    """Another holder of the same cookies (they stay valid after ``http`` signs out)."""
    stale = requests.Session()
    stale.cookies.update(http.cookies)
    return stale


def warm(servers, username: str, http: requests.Session) -> None:
    """Connect with the cookie on every process and close: each now remembers it."""
    for server in servers:
        client = ChatClient(server.url, username, http=http)
        client.sio.reconnection = False
        client.connect()
        assert client.call("rooms:list")["ok"]
        client.sio.disconnect()


def refused_everywhere(servers, username: str, http: requests.Session) -> None:
    for server in servers:
        again = ChatClient(server.url, username, http=http)
        again.sio.reconnection = False
        with pytest.raises(socketio.exceptions.ConnectionError):
            again.connect()


def test_a_signed_out_session_cannot_connect_on_either_process_with_a_warm_cache(two_servers):
    a, b = two_servers
    username = unique("user")
    http = sign_up(a.url, username)
    warm(two_servers, username, http)
    stale = copy_of(http)
    page = http.get(a.url + "/", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert http.post(a.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False,
                     timeout=10).status_code in (302, 303)
    refused_everywhere(two_servers, username, stale)


def test_a_banned_user_cannot_connect_on_either_process_with_a_warm_cache(two_servers):
    a, b = two_servers
    admin = unique("root")
    flask_cli(two_servers[0].env, "create-user", admin, "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    username = unique("user")
    http = sign_up(b.url, username)
    warm(two_servers, username, http)
    console = Console(a.url, admin)
    console.ok("user:ban", {"user": username, "reason": "spam"})
    refused_everywhere(two_servers, username, http)
    console.sio.disconnect()


def test_a_password_reset_from_the_cli_ends_the_cached_session_on_every_process(two_servers):
    username = unique("user")
    http = sign_up(two_servers[0].url, username)
    warm(two_servers, username, http)
    flask_cli(two_servers[0].env, "reset-password", username, "--password-stdin",
              stdin="another-password-2\n")
    # The CLI's bus message reaches each process through Redis a moment later.
    for server in two_servers:
        def refused(server=server):
            again = ChatClient(server.url, username, http=http)
            again.sio.reconnection = False
            try:
                again.connect()
            except socketio.exceptions.ConnectionError:
                return True
            again.sio.disconnect()
            return False
        wait_until(refused, 10, message=f"the reset session still connects on {server.url}")
