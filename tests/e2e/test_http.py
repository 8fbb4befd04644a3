"""The HTTP side of the contract, against a real gunicorn process."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.server import TEST_PASSWORD, sign_in, sign_up

from .conftest import start_server, stop_server, unique

pytestmark = pytest.mark.e2e

CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)"')


def csrf_token(http: requests.Session, url: str) -> str:
    match = CSRF_INPUT.search(http.get(url, timeout=10).text)
    assert match, f"no csrf_token input on {url}"
    return match.group(1)


def post_login(url: str, username: str, password: str, *, with_csrf: bool = True):
    http = requests.Session()
    form = {"username": username, "password": password}
    if with_csrf:
        form["csrf_token"] = csrf_token(http, url + "/login")
    else:
        http.get(url + "/login", timeout=10)  # a session cookie, but no token in the form
    return http, http.post(url + "/login", data=form, allow_redirects=False, timeout=10)


def redirects_to_login(http: requests.Session, url: str) -> bool:
    response = http.get(url + "/", allow_redirects=False, timeout=10)
    return (response.status_code in (302, 303)
            and response.headers["Location"].split("?")[0].endswith("/login"))


def session_set_cookie(response) -> str:
    cookies = [c for c in response.raw.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.raw.headers.getlist("Set-Cookie")
    return cookies[0]


def test_login_form_carries_a_hidden_csrf_token(server):
    page = requests.get(server.url + "/login", timeout=10)
    assert page.status_code == 200
    assert CSRF_INPUT.search(page.text)


def test_signing_in_redirects_to_the_chat_with_an_httponly_lax_session_cookie(server):
    http, response = post_login(server.url, "alice", TEST_PASSWORD)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] in ("/", server.url + "/")
    cookie = session_set_cookie(response).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert http.get(server.url + "/", allow_redirects=False, timeout=10).status_code == 200


def test_a_wrong_password_rerenders_the_form_with_an_error_and_signs_nobody_in(server):
    http, response = post_login(server.url, "alice", "not-the-password")
    assert response.status_code in (200, 401)
    assert "wrong username or password" in response.text.lower()
    assert CSRF_INPUT.search(response.text), "the form is shown again"
    assert redirects_to_login(http, server.url)


def test_a_login_post_without_csrf_token_is_refused(server):
    http, response = post_login(server.url, "alice", TEST_PASSWORD, with_csrf=False)
    assert response.status_code == 400
    assert redirects_to_login(http, server.url)


def test_the_chat_page_without_a_session_redirects_to_login(server):
    assert redirects_to_login(requests.Session(), server.url)


def test_registration_creates_an_account_that_can_sign_in(server):
    username = unique("newcomer")
    http = sign_up(server.url, username)
    assert http.get(server.url + "/", allow_redirects=False, timeout=10).status_code == 200
    assert sign_in(server.url, username).get(server.url + "/", allow_redirects=False,
                                             timeout=10).status_code == 200


@pytest.fixture(scope="module")
def closed_server(sqlite_env):
    """A second server on the same database, with self sign-up turned off."""
    running = start_server({**sqlite_env, "REGISTRATION_OPEN": "false"}, "closed-registration")
    yield running
    stop_server(running)


def test_registration_can_be_turned_off(closed_server):
    http = requests.Session()
    assert http.get(closed_server.url + "/register", timeout=10).status_code == 404
    username = unique("gatecrasher")
    token = csrf_token(http, closed_server.url + "/login")
    response = http.post(closed_server.url + "/register", allow_redirects=False, timeout=10,
                         data={"username": username, "password": TEST_PASSWORD,
                               "csrf_token": token})
    assert response.status_code == 404
    _, login = post_login(closed_server.url, username, TEST_PASSWORD)
    assert login.status_code in (200, 401), "no account was created"


def test_healthz_reports_the_database_and_no_redis(server):
    response = requests.get(server.url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ok", "db": "ok", "redis": "disabled", "schema": "ok"}


@pytest.mark.parametrize("path", ["/login", "/healthz"])
def test_pages_carry_the_security_headers(server, path):
    headers = requests.get(server.url + path, timeout=10).headers
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_new_account_lands_in_the_default_room(tmp_path):
    from tests.e2e.conftest import Peer, e2e_env
    from tests.support.server import flask_cli

    env = e2e_env(f"sqlite:///{tmp_path / 'default-room.sqlite3'}", DEFAULT_ROOMS="General")
    flask_cli(env, "init-db")
    running = start_server(env, "default-room")
    try:
        newcomer = unique("newcomer")
        http = sign_up(running.url, newcomer)
        peer = Peer(running.url, newcomer, http=http).connect()
        try:
            rooms = peer.ok("rooms:list", {})["rooms"]
            assert [(r["slug"], r.get("unread")) for r in rooms] == [("general", 0)]
            assert peer.ok("room:join", {"room": "general"})["room"]["member_count"] == 1
        finally:
            peer.close()
    finally:
        stop_server(running)
