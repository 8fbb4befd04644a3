"""Account self-service in Chromium: the account page and the console's password reset."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.server import TEST_PASSWORD

from .helpers import People, create_user, wait_live

pytestmark = pytest.mark.browser

NEW = "a-brand-new-secret"


def sign_in_as(people: People, username: str, password: str, next_path: str = ""):
    page = people.context().new_page()
    page.goto(people.server.url + "/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_changing_the_password_signs_out_the_other_pages_and_keeps_this_one(people):
    alice = people.account("alice")
    elsewhere = people.sign_in(alice)
    here = people.sign_in(alice)

    here.get_by_role("link", name="Your account (display name, password)").click()
    here.get_by_label("Current password").fill(TEST_PASSWORD)
    here.get_by_label("New password").fill(NEW)
    here.get_by_role("button", name="Change password").click()
    expect(here.get_by_role("status")).to_contain_text("Your password was changed")
    # The other page, and the sign-up's session.
    expect(here.get_by_role("status")).to_contain_text("Your 2 other sessions were signed out")

    # The other page's socket was closed; its retry finds the session over.
    elsewhere.wait_for_url(re.compile(r"/login"))
    here.get_by_role("link", name="Back to the chat").click()
    wait_live(here)

    fresh = sign_in_as(people, alice, NEW)
    wait_live(fresh)


def test_a_wrong_current_password_is_refused_on_the_page(people):
    alice = people.account("alice")
    page = people.sign_in(alice)
    page.goto(people.server.url + "/account")
    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password").fill(NEW)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("the current password is wrong")
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")


def test_an_admin_resets_a_forgotten_password_in_the_console(people, server):
    create_user(server, "keeper", admin=True)
    bob = people.account("bob")
    bobs_page = people.sign_in(bob)

    console = sign_in_as(people, "keeper", TEST_PASSWORD, "/admin")
    console.wait_for_url(re.compile(r"/admin$"))
    console.locator('body[data-connection="live"]').wait_for()
    console.locator("#user-search").fill(bob)
    row = console.locator(f'tr[data-username="{bob}"]')
    row.get_by_role("button", name="Reset password").click()
    console.get_by_role("button", name="Reset password", exact=True).last.click()
    temporary = console.locator("#temporary-password")
    expect(temporary).to_be_visible()
    password = temporary.inner_text()

    bobs_page.wait_for_url(re.compile(r"/login"))
    wait_live(sign_in_as(people, bob, password))
