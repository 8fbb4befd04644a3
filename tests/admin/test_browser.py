"""The admin console in Chromium, beside members chatting in their own browsers.

Built on the browser suite's helpers (tests/browser/helpers.py): a fresh
browser context per person, and a real gunicorn for this module.
"""
from __future__ import annotations

import re

import pytest
import requests

from tests.browser.helpers import (People, create_user, screenshot,
                                   start_chat_server)
from tests.e2e.conftest import Peer
from tests.support.server import TEST_PASSWORD, sign_in

pytestmark = pytest.mark.browser


def console_server(tmp_path_factory, name: str, **extra_env: str):
    """A module's chat server with ``root``, the admin whose console the tests open."""
    chat_server = start_chat_server(tmp_path_factory, name, **extra_env)
    create_user(chat_server, "root", admin=True)
    yield chat_server
    chat_server.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from console_server(tmp_path_factory, "admin_console")


def open_console(people: People):
    """root's admin console, signed in through /login, once its socket is live."""
    page = people.context().new_page()
    page.goto(people.server.url + "/login?next=/admin")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin$"))
    page.locator('body[data-connection="live"]').wait_for()
    return page


def room_with_member(server, username: str, name: str) -> str:
    """A room ``username`` belongs to, made over the socket (the chat lists it)."""
    peer = Peer(server.url, username, http=sign_in(server.url, username)).connect()
    try:
        return peer.create_room(name=name)
    finally:
        peer.close()


def open_room(page, slug: str) -> None:
    page.locator(f'.nav-item[data-slug="{slug}"]').click()
    page.locator("#composer-input:enabled").wait_for()


def say(page, body: str) -> int:
    """Send a message from the chat's composer; its id once the server acked it."""
    page.locator("#composer-input").fill(body)
    page.keyboard.press("Enter")
    sent = page.locator("#message-list li[data-id]", has_text=body)
    sent.wait_for()
    return int(sent.get_attribute("data-id"))


def confirm(console, *, reason: str | None = None, duration: str | None = None) -> None:
    dialog = console.locator("#confirm-dialog")
    dialog.wait_for()
    if reason is not None:
        dialog.get_by_label("Reason").fill(reason)
    if duration is not None:
        dialog.get_by_label("Duration").select_option(label=duration)
    dialog.locator("#confirm-ok").click()
    dialog.wait_for(state="hidden")


def test_banning_a_chatting_user_disconnects_them_and_keeps_them_out(people, server):
    bob = people.account("bob")
    slug = room_with_member(server, bob, f"Lobby {bob}")
    chat = people.sign_in(bob)
    open_room(chat, slug)
    say(chat, "buy cheap watches")

    console = open_console(people)
    console.get_by_label("Find users").fill(bob)
    row = console.locator(f'#user-table tr[data-username="{bob}"]')
    row.get_by_role("button", name="Ban").click()
    confirm(console, reason="spamming the lobby", duration="1 hour")

    # Bob's chat is cut off and says why; the console shows the ban.
    chat.locator("#connection-banner", has_text="spamming the lobby").wait_for()
    console.locator(f'#user-table tr[data-username="{bob}"][data-banned="true"]').wait_for()
    entry = console.locator('#audit-feed li[data-action="user:ban"]', has_text=bob)
    entry.wait_for()
    assert "for 60 minutes: spamming the lobby" in entry.inner_text()
    screenshot(console, "admin-console-after-ban")

    # Bob's session is over: the chat sends him to sign in, which refuses him.
    chat.reload()
    chat.wait_for_url(re.compile(r"/login"))
    chat.get_by_label("Username").fill(bob)
    chat.get_by_label("Password").fill(TEST_PASSWORD)
    chat.get_by_role("button", name="Sign in").click()
    chat.locator("#auth-error", has_text="banned").wait_for()

    # Unbanned from the console, he may sign in again.
    console.locator(f'#user-table tr[data-username="{bob}"]').get_by_role(
        "button", name="Unban").click()
    confirm(console)
    console.locator(f'#user-table tr[data-username="{bob}"][data-banned="false"]').wait_for()
    chat.get_by_label("Password").fill(TEST_PASSWORD)
    chat.get_by_role("button", name="Sign in").click()
    chat.locator("#me-status", has_text="Online").wait_for()


def test_the_dashboard_moderation_and_announcements_work_live(people, server):
    console = open_console(people)
    connections = console.locator('[data-stat="connections"]')
    # Nobody is chatting (the console's own socket is not a chat connection).
    connections.filter(has_text=re.compile(r"^0$")).wait_for()

    alice = people.account("alice")
    slug = room_with_member(server, alice, f"Garden {alice}")
    chat = people.sign_in(alice)
    # The dashboard counts her connection without a reload (pushed stats),
    # per worker too, and the user list shows her online.
    connections.filter(has_text=re.compile(r"^1$")).wait_for()
    console.locator("#workers tbody tr td[data-worker-connections='1']").wait_for()
    console.locator(f'#user-table tr[data-username="{alice}"][data-online="true"]').wait_for()
    open_room(chat, slug)
    message_id = say(chat, "a message to moderate")
    console.locator('[data-stat="messages_last_minute"]',
                    has_text=re.compile(r"^[1-9]")).wait_for()
    console.locator("#rate-chart[data-samples]").wait_for()

    # An announcement to every room reaches her chat.
    console.get_by_role("textbox", name="Message", exact=True).fill("Maintenance at 22:00 UTC")
    console.get_by_role("button", name="Send announcement").click()
    confirm(console)
    chat.locator("#announcements", has_text="Maintenance at 22:00 UTC").wait_for()

    # Deleting her message from the console removes it from her screen.
    console.get_by_role("button", name="Refresh rooms").click()
    console.locator(f'#room-table tr[data-room="{slug}"]').get_by_role(
        "button", name="Messages").click()
    item = console.locator(f'#message-list li[data-message-id="{message_id}"]')
    item.get_by_role("button", name="Delete").click()
    confirm(console)
    chat.locator(f'#message-list li[data-id="{message_id}"]',
                 has_text="a message to moderate").wait_for(state="detached")
    item.wait_for(state="detached")
    screenshot(console, "admin-console")

    # Archiving the room makes it read-only for her.
    console.locator(f'#room-table tr[data-room="{slug}"]').get_by_role(
        "button", name="Archive").click()
    confirm(console)
    console.locator(f'#room-table tr[data-room="{slug}"][data-archived="true"]').wait_for()
    chat.reload()
    chat.locator("#me-status", has_text="Online").wait_for()
    open_room_read_only = chat.locator(f'.nav-item[data-slug="{slug}"]')
    open_room_read_only.click()
    chat.locator("#composer-input:disabled").wait_for()


def test_reading_a_direct_message_in_the_console_asks_for_a_reason_and_audits_it(people, server):
    alice, bob = people.account("alice"), people.account("bob")
    peer = Peer(server.url, alice, http=sign_in(server.url, alice)).connect()
    try:
        dm = peer.ok("dm:open", {"user": bob})["room"]["slug"]
        peer.send(dm, "our private plans")
    finally:
        peer.close()

    console = open_console(people)
    console.get_by_role("button", name="Refresh rooms").click()
    row = console.locator(f'#room-table tr[data-room="{dm}"]')
    row.get_by_role("button", name="Messages").click()
    dialog = console.locator("#confirm-dialog")
    dialog.wait_for()
    assert "recorded in the audit log" in dialog.inner_text()
    # Cancelling reads nothing.
    dialog.locator("#confirm-cancel").click()
    dialog.wait_for(state="hidden")
    assert console.locator("#room-messages").is_hidden()

    row.get_by_role("button", name="Messages").click()
    confirm(console, reason="report from bob: abuse")
    console.locator("#message-list li", has_text="our private plans").wait_for()
    entry = console.locator('#audit-feed li[data-action="dm:read"]', has_text=dm)
    entry.wait_for()
    assert "report from bob: abuse" in entry.inner_text()


def test_an_admin_finds_the_console_from_the_chat_and_others_do_not(people, server):
    member = people.sign_in(people.account("member"))
    assert member.locator("#console-link").count() == 0
    context = people.context()
    chat = context.new_page()
    chat.goto(server.url + "/login")
    chat.get_by_label("Username").fill("root")
    chat.get_by_label("Password").fill(TEST_PASSWORD)
    chat.get_by_role("button", name="Sign in").click()
    chat.get_by_role("link", name="Open the admin console").click()
    chat.wait_for_url(re.compile(r"/admin$"))


def test_the_console_creates_a_bot_shows_its_key_once_and_the_chat_badges_it(people, server):
    console = open_console(people)
    console.get_by_label("New bot's name").fill("badgebot")
    console.get_by_role("button", name="Create bot").click()
    key = console.locator("#bot-key-value")
    key.wait_for()
    assert key.inner_text().startswith("pbk_")
    row = console.locator('#bot-table tr[data-bot="badgebot"]')
    row.wait_for()
    assert "revoked" not in row.inner_text()

    # The bot posts through the API; a member sees the badge by its name.
    create_user(server, "badgefan")
    room = room_with_member(server, "badgefan", "Badges")
    pair = requests.post(server.url + "/api/v1/auth/token", json={"bot_key": key.inner_text()},
                         timeout=10).json()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    requests.post(f"{server.url}/api/v1/rooms/{room}/join", headers=auth, timeout=10)
    requests.post(f"{server.url}/api/v1/rooms/{room}/messages", headers=auth, timeout=10,
                  json={"body": "beep from a bot"})
    fan = people.sign_in("badgefan")
    open_room(fan, room)
    message = fan.locator("#message-list li[data-id]", has_text="beep from a bot")
    message.wait_for()
    assert message.locator(".bot-badge").inner_text() == "bot"
    assert fan.locator('.member-name:text-is("badgebot") + .bot-badge').count() == 1

    row.get_by_role("button", name="Revoke").click()
    confirm(console)
    console.locator('#bot-table tr[data-bot="badgebot"]', has_text="revoked").wait_for()
    assert console.locator("#bot-key").is_hidden()
