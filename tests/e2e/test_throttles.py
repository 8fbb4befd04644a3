"""Sign-in and sign-up throttles that hold against a real gunicorn worker.

The attacks here are the ones a script makes: a burst of concurrent guesses
(the password hash is slow, so a check before it and a count after it let
them all pass), fresh accounts minted from one address, a sign-up form
probed for invite codes. Every client here sends its own ``X-Forwarded-For``
(the server trusts one proxy), so each test has addresses of its own.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests

from tests.support.server import TEST_PASSWORD, flask_cli, wait_until

from .conftest import e2e_env, start_server, stop_server, unique

# Tight enough to reach in a few requests; the burst is three times the limit.
ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 5
SIGNUP_LIMIT = 3
BURST = 30


@pytest.fixture(scope="module")
def throttled_env(tmp_path_factory) -> dict:
    # A database of its own: no other server's writes hold SQLite's lock
    # while a burst is counted. argon2's production cost: a check takes tens
    # of milliseconds, as it does for an attacker, so the burst's attempts
    # really are in flight together.
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('throttled-db') / 'parley.sqlite3'}",
                  PASSWORD_TIME_COST="3", PASSWORD_MEMORY_COST="65536")
    flask_cli(env, "init-db")
    return env


@pytest.fixture(scope="module")
def throttled(throttled_env):
    """A server with tight sign-in and sign-up limits, invite-only."""
    running = start_server({**throttled_env, "PROXY_COUNT": "1",
                            "SIGNIN_USER_RATE_LIMIT": f"{ACCOUNT_LIMIT} per 5 minutes",
                            "SIGNIN_ADDRESS_RATE_LIMIT": f"{ADDRESS_LIMIT} per 5 minutes",
                            "SIGNUP_ADDRESS_RATE_LIMIT": f"{SIGNUP_LIMIT} per hour",
                            "REGISTRATION_OPEN": "invite"}, "throttled")
    yield running
    stop_server(running)


_addresses = iter(range(1, 250))


def fresh_address() -> str:
    return f"198.51.100.{next(_addresses)}"


class Form:
    """One browser at ``address``: its own session cookie and CSRF token for a form page."""

    def __init__(self, url: str, page: str, address: str):
        self.url, self.page = url, page
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address
        html = self.http.get(url + page, timeout=30).text
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def post(self, **fields) -> requests.Response:
        return self.http.post(self.url + self.page, timeout=60, allow_redirects=False,
                              data={**fields, "csrf_token": self.token})


def burst(forms: list[Form], fields_of) -> list[int]:
    """Every form posted at once (released together by a barrier); their status codes."""
    gate = threading.Barrier(len(forms))

    def post(numbered):
        n, form = numbered
        gate.wait(timeout=60)
        return form.post(**fields_of(n)).status_code

    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        return list(pool.map(post, enumerate(forms)))


def new_user(env: dict) -> str:
    username = unique("target")
    flask_cli(env, "create-user", username, "--password-stdin", stdin=TEST_PASSWORD + "\n")
    return username


def failure_reports(env: dict, username: str) -> list[str]:
    """The server's own count of checked wrong passwords for ``username``.

    It audits the 5th, 10th, 20th... failed check within its window; the
    status codes cannot tell, since a check made before counting refuses the
    excess with 429 too, after verifying it. Under a concurrent burst an
    entry may be skipped (the count is read after other attempts' hits), so
    tests assert which entries can NOT appear: one past the limit.
    """
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as database:
        rows = database.execute("SELECT detail FROM audit_entries WHERE action = "
                                "'sign-in:failed' AND target = ? ORDER BY id", (username,))
        return [detail.split(" ")[0] for (detail,) in rows]


# -- sign-in -----------------------------------------------------------------

def test_concurrent_guesses_at_one_account_spend_one_unit_each(throttled, throttled_env):
    username = new_user(throttled_env)
    # From as many addresses as guesses: only the account's limit applies.
    forms = [Form(throttled.url, "/login", fresh_address()) for _ in range(BURST)]
    codes = burst(forms, lambda n: {"username": username, "password": f"wrong-guess-{n}"})
    assert codes.count(401) == ACCOUNT_LIMIT, codes
    assert codes.count(429) == BURST - ACCOUNT_LIMIT, codes
    # Only as many guesses as the limit were ever checked; the rest were refused unchecked.
    assert "20" not in failure_reports(throttled_env, username)  # 30 checked would reach it
    # The account is throttled now: the right password is refused too, from anywhere.
    right = Form(throttled.url, "/login", fresh_address()).post(username=username,
                                                                 password=TEST_PASSWORD)
    assert right.status_code == 429
    assert "Location" not in right.headers


def test_concurrent_guesses_from_one_address_spend_one_unit_each(throttled, throttled_env):
    username = unique("nobody")  # unknown: checked against a dummy hash all the same
    address = fresh_address()
    forms = [Form(throttled.url, "/login", address) for _ in range(BURST)]
    codes = burst(forms, lambda n: {"username": username, "password": f"wrong-guess-{n}"})
    assert codes.count(401) == ADDRESS_LIMIT, codes
    assert codes.count(429) == BURST - ADDRESS_LIMIT, codes
    assert "10" not in failure_reports(throttled_env, username)


def test_right_passwords_give_their_units_back(throttled, throttled_env):
    username = new_user(throttled_env)
    address = fresh_address()
    # One after another, as a person signs in (concurrent attempts each hold
    # a unit while their password is checked, whatever it turns out to be).
    signed_in = [Form(throttled.url, "/login", address).post(username=username,
                                                             password=TEST_PASSWORD).status_code
                 for _ in range(ADDRESS_LIMIT + 2)]
    assert signed_in == [303] * (ADDRESS_LIMIT + 2)
    # ...and the failures still have the whole limit to themselves.
    guesses = [Form(throttled.url, "/login", address).post(username=username,
                                                           password="wrong-guess").status_code
               for _ in range(ADDRESS_LIMIT + 1)]
    assert guesses == [401] * ADDRESS_LIMIT + [429]


def test_a_wrong_password_writes_no_traceback(throttled, throttled_env):
    username = new_user(throttled_env)
    before = len(throttled.log())
    form = Form(throttled.url, "/login", fresh_address())
    assert form.post(username=username, password="wrong-guess").status_code == 401
    assert form.post(username=unique("nobody"), password="wrong-guess").status_code == 401
    # The server answered only after the hash ran in the thread pool: the
    # hub would have printed the exception by now.
    written = throttled.log()[before:]
    assert "Traceback" not in written and "VerifyMismatchError" not in written, written


# -- sign-up -----------------------------------------------------------------

def make_invites(env: dict, count: int = 1, hours: float | None = None) -> list[tuple[str, str]]:
    """``flask --app wsgi create-invite``: (code, expires_at) pairs."""
    args = ["create-invite", "--count", str(count)] + (["--hours", str(hours)] if hours else [])
    lines = flask_cli(env, *args).splitlines()
    return [(code, expires.removeprefix("expires ")) for code, expires in
            (line.split("\t") for line in lines)]


def sign_up_form(server, address: str | None = None) -> Form:
    return Form(server.url, "/register", address or fresh_address())


def can_sign_in(server, username: str) -> bool:
    form = Form(server.url, "/login", fresh_address())
    return form.post(username=username, password=TEST_PASSWORD).status_code == 303


def test_invite_only_sign_up_needs_a_code_and_each_code_makes_one_account(throttled,
                                                                         throttled_env):
    page = requests.get(throttled.url + "/register", timeout=30)
    assert page.status_code == 200 and 'name="invite"' in page.text
    nameless = unique("uninvited")
    refused = sign_up_form(throttled).post(username=nameless, password=TEST_PASSWORD)
    assert refused.status_code == 403 and "invit" in refused.text
    assert not can_sign_in(throttled, nameless)

    [(code, _)] = make_invites(throttled_env)
    first = unique("invited")
    made = sign_up_form(throttled).post(username=first, password=TEST_PASSWORD, invite=code)
    assert made.status_code == 303
    second = unique("invited")
    again = sign_up_form(throttled).post(username=second, password=TEST_PASSWORD, invite=code)
    assert again.status_code == 403
    assert can_sign_in(throttled, first) and not can_sign_in(throttled, second)


def test_an_expired_invite_makes_no_account(throttled, throttled_env):
    [(code, expires_at)] = make_invites(throttled_env, hours=0.0005)  # under 2 seconds
    deadline = datetime.strptime(expires_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    wait_until(lambda: datetime.now(timezone.utc) > deadline, 30, message="the invite expiring")
    username = unique("late")
    late = sign_up_form(throttled).post(username=username, password=TEST_PASSWORD, invite=code)
    assert late.status_code == 403
    assert not can_sign_in(throttled, username)


def test_concurrent_sign_ups_from_one_address_make_at_most_the_limit(throttled, throttled_env):
    codes = [code for code, _ in make_invites(throttled_env, count=BURST // 3)]
    address = fresh_address()
    forms = [sign_up_form(throttled, address) for _ in codes]
    names = [unique("minted") for _ in codes]
    statuses = burst(forms, lambda n: {"username": names[n], "password": TEST_PASSWORD,
                                       "invite": codes[n]})
    assert statuses.count(303) == SIGNUP_LIMIT, statuses
    assert statuses.count(429) == len(codes) - SIGNUP_LIMIT, statuses
    assert sum(can_sign_in(throttled, name) for name in names) == SIGNUP_LIMIT
    # Refused attempts count too: a wrong code from a spent address is refused unchecked.
    refused = sign_up_form(throttled, address).post(username=unique("minted"),
                                                    password=TEST_PASSWORD, invite="guess")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    path = throttled_env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as database:
        audited = database.execute("SELECT target FROM audit_entries WHERE action = "
                                   "'rate-limit:signup_address'").fetchall()
    assert (address,) in audited
