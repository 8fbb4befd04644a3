"""Moderation notices in Chromium: a ban reads as a ban, and announcements are kept."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Peer
from tests.support.server import sign_in

from .helpers import People, create_user

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    from .helpers import start_chat_server

    chat_server = start_chat_server(tmp_path_factory, "notices")
    create_user(chat_server, "warden", admin=True)
    yield chat_server
    chat_server.close()


@pytest.fixture
def console(server):
    """The admin's console over the socket (the console page has its own tests)."""
    peer = Peer(server.url, "warden", http=sign_in(server.url, "warden"))
    peer.sio.connect(server.url, namespaces=["/admin"], headers=dict(peer.headers),
                     transports=["websocket"], wait_timeout=10)

    def admin(event, payload):
        ack = peer.sio.call(event, payload, namespace="/admin", timeout=10)
        assert ack["ok"], ack
        return ack

    yield admin
    peer.sio.disconnect()


def test_a_banned_users_page_says_banned_until_when_and_why(people: People, console):
    bob = people.account("bob")
    page = people.sign_in(bob)
    console("user:ban", {"user": bob, "reason": "spamming the lobby", "minutes": 90})
    banner = page.locator("#connection-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(re.compile(r"Your account is banned until .+\. "
                                              r"Reason: spamming the lobby"))
    expect(banner).not_to_contain_text("disconnected by an administrator")
    expect(page.get_by_role("button", name="Reconnect now")).to_be_hidden()

    # Reloading leads to the sign-in page, which says the same.
    page.reload()
    page.wait_for_url(re.compile(r"/login"))
    page.get_by_label("Username").fill(bob)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"this account is banned until \d{4}-\d\d-\d\d \d\d:\d\d UTC: spamming the lobby"))


def test_a_kick_still_offers_to_reconnect(people: People, console):
    bob = people.account("bob")
    page = people.sign_in(bob)
    console("user:kick", {"user": bob, "reason": "calm down"})
    expect(page.locator("#connection-banner")).to_contain_text(
        "You were disconnected by an administrator: calm down")
    expect(page.get_by_role("button", name="Reconnect now")).to_be_visible()


def test_an_announcement_reaches_someone_offline_survives_reload_until_dismissed(people,
                                                                                 console):
    body = f"Maintenance tonight {people.account('x')}"
    console("announce", {"body": body})
    # alice was not connected when it was sent.
    alice = people.account("alice")
    page = people.sign_in(alice)
    note = page.locator(".announcement", has_text=body)
    expect(note).to_be_visible()
    page.reload()
    expect(note).to_be_visible()
    note.get_by_role("button", name="Dismiss the announcement").click()
    expect(note).to_have_count(0)
    later = f"Second notice {alice}"
    console("announce", {"body": later})
    page.reload()
    # Once the later one shows, the list has arrived: the dismissed one is not in it.
    expect(page.locator(".announcement", has_text=later)).to_be_visible()
    expect(page.locator(".announcement", has_text=body)).to_have_count(0)


def test_an_expiring_announcement_disappears_when_it_expires(people, console):
    alice = people.account("alice")
    page = people.sign_in(alice)
    body = f"Coffee in the kitchen {alice}"
    console("announce", {"body": body, "minutes": 0.05})  # three seconds
    note = page.locator(".announcement", has_text=body)
    expect(note).to_be_visible()
    expect(note).to_have_count(0, timeout=10_000)
    lasting = f"Lasting notice {alice}"
    console("announce", {"body": lasting})
    page.reload()
    expect(page.locator(".announcement", has_text=lasting)).to_be_visible()
    expect(page.locator(".announcement", has_text=body)).to_have_count(0)
