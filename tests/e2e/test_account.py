"""The account page through a real gunicorn: CSRF, and the other sessions' sockets."""
from __future__ import annotations

import re

import pytest

from tests.support.server import TEST_PASSWORD, sign_in, sign_up, wait_until

from .conftest import Peer, unique

pytestmark = pytest.mark.e2e

NEW = "a-brand-new-secret"


def test_a_password_change_without_the_csrf_token_is_refused(server):
    name = unique("csrf")
    http = sign_up(server.url, name)
    response = http.post(server.url + "/account", timeout=10,
                         data={"current_password": TEST_PASSWORD, "new_password": NEW})
    assert response.status_code == 400
    sign_in(server.url, name)  # the password is unchanged


def test_a_password_change_closes_the_other_sessions_sockets_and_keeps_this_one(server):
    name = unique("changer")
    this = sign_up(server.url, name)
    other = Peer(server.url, name, http=sign_in(server.url, name)).connect()
    mine = Peer(server.url, name, http=this).connect()
    try:
        page = this.get(server.url + "/account", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = this.post(server.url + "/account", timeout=10, data={
            "csrf_token": token, "current_password": TEST_PASSWORD, "new_password": NEW})
        assert response.status_code == 200 and "Your password was changed" in response.text
        assert other.disconnected.wait(10), "the other session's socket stayed open"
        wait_until(lambda: mine.connected, 5)
        assert mine.ok("rooms:list")["rooms"] is not None
        sign_in(server.url, name, NEW)
    finally:
        mine.close()
