"""``invite:create`` on ``/admin``: a single-use sign-up code for ``REGISTRATION_OPEN=invite``."""
from __future__ import annotations

import re

import pytest

from app.config import _registration

from .conftest import acall, audit_rows, pushed

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def sign_up(app, username: str, invite: str | None = None):
    data = {"username": username, "password": "correct-horse"}
    if invite is not None:
        data["invite"] = invite
    return app.test_client().post("/register", data=data)


def test_an_admin_makes_a_code_that_signs_up_one_account(app, console):
    app.config["REGISTRATION_OPEN"] = "invite"
    ack = acall(console, "invite:create", {})
    assert ack["ok"] is True, ack
    code = ack["invite"]["code"]
    assert len(code) >= 16 and ISO.match(ack["invite"]["expires_at"])
    assert sign_up(app, "newcomer").status_code == 403
    assert sign_up(app, "newcomer", "not-" + code).status_code == 403
    assert sign_up(app, "newcomer", code).status_code == 303
    assert sign_up(app, "second", code).status_code == 403


def test_making_a_code_is_audited_without_the_code(app, console):
    code = acall(console, "invite:create")["invite"]["code"]
    entries = [row for row in audit_rows(app) if row[1] == "invite:create"]
    assert [(actor, action) for actor, action, _, _ in entries] == [("root", "invite:create")]
    assert all(code not in "".join(row) for row in audit_rows(app))
    assert [entry["action"] for entry in pushed(console, "audit")] == ["invite:create"]


def test_open_registration_ignores_invite_codes(app):
    assert app.config["REGISTRATION_OPEN"] is True
    assert sign_up(app, "walk-in").status_code == 303


@pytest.mark.parametrize("value, mode", [
    (None, True), ("", True), ("true", True), ("1", True), ("false", False), ("no", False),
    ("invite", "invite"), (" Invite ", "invite"),
])
def test_registration_open_reads_true_false_or_invite(value, mode):
    assert _registration(value) == mode
