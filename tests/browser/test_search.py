"""Message search in Chromium, against a real gunicorn: find a message, open it in its room."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.support.client import ChatClient

from .helpers import TIMEOUT_MS, screenshot, start_chat_server

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

HISTORY = 150      # three first pages' worth: the found message is not loaded when the room opens
FOUND_AT = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The history is seeded by one sender, faster than the default send limit.
    chat_server = start_chat_server(tmp_path_factory, "test_search",
                                    MESSAGE_RATE_LIMIT="1000 per 1 second")
    yield chat_server
    chat_server.close()


def seeded_room(server, username: str, animal: str) -> tuple[str, str, int]:
    """A room of ``username`` with HISTORY messages; one (FOUND_AT) holds ``animal``
    (a word of this test's own) and some markup, which must show as text."""
    client = ChatClient(server.url, username).connect()
    try:
        name = f"Launch {uuid.uuid4().hex[:6]}"
        room = client.call("room:create", {"name": name})["room"]["slug"]
        assert client.call("room:join", {"room": room})["ok"]
        found_id = 0
        for i in range(HISTORY):
            body = (f"the {animal} <img src=x onerror=alert(1)> ships on Friday (#{i})"
                    if i == FOUND_AT else f"status update number {i}")
            ack = client.call("message:send", {"room": room, "body": body,
                                               "client_id": uuid.uuid4().hex})
            assert ack["ok"], ack
            if i == FOUND_AT:
                found_id = ack["message"]["id"]
        return name, room, found_id
    finally:
        client.close()


def test_a_found_message_opens_in_its_room_highlighted_with_the_page_around_it(people, server):
    alice = people.account("searcher")
    name, room, found_id = seeded_room(server, alice, "quokka")
    page = people.sign_in(alice)

    box = page.get_by_role("searchbox", name="Search messages")
    box.fill("quokkas")
    box.press("Enter")

    dialog = page.locator("#search-dialog")
    result = dialog.locator(".search-result")
    expect(result).to_have_count(1)
    expect(result.locator(".search-result-room")).to_have_text(f"#{name}")
    expect(result.locator("mark")).to_have_text("quokka")
    # The markup is text: shown as written, no element made from it.
    expect(result.locator(".search-snippet")).to_have_text(
        f"the quokka <img src=x onerror=alert(1)> ships on Friday (#{FOUND_AT})")
    assert result.locator("img").count() == 0
    expect(dialog.locator("#search-status")).to_have_text("1 message found")
    screenshot(page, "search-results")

    result.click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#room-title")).to_contain_text(name)
    highlighted = page.locator("#message-list .msg--highlight")
    expect(highlighted).to_have_count(1)
    expect(highlighted).to_have_attribute("data-id", str(found_id))
    expect(highlighted.locator(".msg-text")).to_contain_text("the quokka <img src=x")
    expect(highlighted).to_be_in_viewport()
    # The page around it: its neighbours on both sides, not the room's latest.
    texts = page.locator("#message-list .msg .msg-text")
    expect(texts.filter(has_text=f"status update number {FOUND_AT - 1}")).to_have_count(1)
    expect(texts.filter(has_text=f"status update number {FOUND_AT + 1}")).to_have_count(1)
    expect(texts.filter(has_text=f"status update number {HISTORY - 1}")).to_have_count(0)
    screenshot(page, "search-opened-message")

    # Back to the latest messages from there.
    page.locator("#jump-button").click()
    expect(texts.filter(has_text=f"status update number {HISTORY - 1}")).to_have_count(1)
    expect(page.locator("#message-list .msg--highlight")).to_have_count(0)


def test_a_result_in_a_public_room_not_joined_opens_it_and_a_send_returns_to_the_latest(
        people, server):
    alice, bob = people.account("poster"), people.account("reader")
    name, room, found_id = seeded_room(server, alice, "wombat")
    page = people.sign_in(bob)
    expect(page.locator("#sidebar .nav-item", has_text=name)).to_have_count(0)

    box = page.get_by_role("searchbox", name="Search messages")
    box.fill("wombat Friday")
    box.press("Enter")
    page.locator("#search-dialog .search-result").click()

    expect(page.locator("#room-title")).to_contain_text(name)
    expect(page.locator("#sidebar .nav-item", has_text=name)).to_have_count(1)
    expect(page.locator("#message-list .msg--highlight")).to_have_attribute("data-id", str(found_id))

    page.locator("#composer-input").fill("found it")
    page.locator("#composer-input").press("Enter")
    texts = page.locator("#message-list .msg:not(.msg--pending) .msg-text")
    expect(texts.last).to_have_text("found it")
    expect(texts.filter(has_text=f"status update number {HISTORY - 1}")).to_have_count(1)
    expect(texts.filter(has_text="the wombat")).to_have_count(0)
