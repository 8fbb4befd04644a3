"""Invite-only sign-up in Chromium: an admin makes a code in the console, a newcomer uses it."""
from __future__ import annotations

import re

import pytest

from tests.support.server import TEST_PASSWORD

from .test_browser import console_server, open_console

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from console_server(tmp_path_factory, "invite_only", REGISTRATION_OPEN="invite")


def test_a_code_made_in_the_console_signs_up_one_newcomer(people):
    console = open_console(people)
    console.get_by_role("button", name="New invite code").click()
    code = console.locator("#invite-code")
    code.wait_for()
    invite = code.text_content()
    assert len(invite) >= 16
    console.locator('#audit-feed .audit-entry[data-action="invite:create"]').wait_for()

    newcomer = people.context().new_page()
    newcomer.goto(people.server.url + "/register")
    newcomer.get_by_label("Username").fill("newcomer")
    newcomer.get_by_label("Password").fill(TEST_PASSWORD)
    newcomer.get_by_label("Invite code").fill(invite)
    newcomer.get_by_role("button", name="Create account").click()
    newcomer.wait_for_url(re.compile(r"/$"))

    second = people.context().new_page()
    second.goto(people.server.url + f"/register?invite={invite}")
    assert second.get_by_label("Invite code").input_value() == invite
    second.get_by_label("Username").fill("latecomer")
    second.get_by_label("Password").fill(TEST_PASSWORD)
    second.get_by_role("button", name="Create account").click()
    assert "unknown, used or expired" in second.locator("#auth-error").text_content()
