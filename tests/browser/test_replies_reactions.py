"""Replies and reactions in Chromium, two people in two browsers (issue 16)."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.client import ChatClient

from .helpers import TIMEOUT_MS, screenshot, start_chat_server, unique
from .test_chat import create_room, send

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A long history is seeded by one user in a burst.
    chat_server = start_chat_server(tmp_path_factory, "test_replies_reactions",
                                    MESSAGE_RATE_LIMIT="1000 per 1 second")
    yield chat_server
    chat_server.close()


def row(page, text: str):
    """The confirmed message row whose own text is ``text``."""
    return page.locator("#message-list .msg:not(.msg--pending)").filter(
        has=page.locator(".msg-text", has_text=re.compile(rf"^{re.escape(text)}$")))


def join_from_browser(page, name: str) -> None:
    page.get_by_role("button", name="Browse public rooms").click()
    dialog = page.locator("#browse-dialog")
    dialog.get_by_role("button", name=f"Join {name}").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#room-title")).to_contain_text(name)


def chip(page, message_text: str, emoji: str):
    return row(page, message_text).locator(".reaction-chip", has_text=emoji)


def test_bob_replies_and_reacts_and_alice_sees_both_live_and_toggles_her_own(people):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique("lunch")
    create_room(alice, room)
    join_from_browser(bob, room)
    send(alice, "Lunch at noon? The usual place, by the river.")
    original = row(bob, "Lunch at noon? The usual place, by the river.")
    expect(original).to_be_visible()

    # Bob answers it: the composer says what he is replying to.
    original.hover()
    original.get_by_role("button", name="Reply to this message").click()
    expect(bob.locator("#composer-reply")).to_be_visible()
    expect(bob.locator("#composer-reply-text")).to_contain_text(f"Replying to {alice_name}")
    expect(bob.locator("#composer-input")).to_be_focused()
    bob.keyboard.type("Count me in!")
    screenshot(bob, "replying-to")
    bob.keyboard.press("Enter")
    expect(bob.locator("#composer-reply")).to_be_hidden()

    reply = row(alice, "Count me in!")
    quote = reply.locator(".msg-quote")
    expect(quote).to_contain_text(alice_name)
    expect(quote).to_contain_text("Lunch at noon? The usual place, by the river.")

    # Bob reacts to Alice's message from the picker.
    original.hover()
    original.get_by_role("button", name="Add a reaction").first.click()
    picker = bob.locator("#reaction-picker")
    expect(picker).to_be_visible()
    screenshot(bob, "reaction-picker")
    picker.get_by_role("button", name="React with 👍").click()
    expect(picker).to_be_hidden()
    expect(chip(bob, "Lunch at noon? The usual place, by the river.", "👍")).to_have_attribute(
        "aria-pressed", "true")

    theirs = chip(alice, "Lunch at noon? The usual place, by the river.", "👍")
    expect(theirs).to_contain_text("1")
    expect(theirs).to_have_attribute("aria-pressed", "false")
    # Alice adds hers with a click on the chip, and both see two.
    theirs.click()
    expect(theirs).to_contain_text("2")
    expect(theirs).to_have_attribute("aria-pressed", "true")
    bobs = chip(bob, "Lunch at noon? The usual place, by the river.", "👍")
    expect(bobs).to_contain_text("2")
    expect(bobs).to_have_attribute("aria-pressed", "true")
    alice.locator("#composer-input").focus()
    alice.mouse.move(5, 5)
    screenshot(alice, "replies-reactions")
    # And takes it back: Bob's stays.
    theirs.click()
    expect(theirs).to_contain_text("1")
    expect(theirs).to_have_attribute("aria-pressed", "false")
    expect(bobs).to_contain_text("1")


def test_the_quote_jumps_to_the_original_loading_older_history_and_highlights_it(people, server):
    name = people.account("reader")
    writer = ChatClient(server.url, name).connect()
    try:
        room = unique("history")
        slug = writer.call("room:create", {"name": room})["room"]["slug"]
        writer.join(slug)
        original = writer.send(slug, "The plan, written down long ago")["message"]
        for n in range(120):
            writer.send(slug, f"chatter {n}")
        ack = writer.call("message:send", {"room": slug, "body": "What was the plan again?",
                                           "reply_to": original["id"],
                                           "client_id": uuid.uuid4().hex})
        assert ack["ok"], ack
    finally:
        writer.close()
    page = people.sign_in(name)
    page.locator("#sidebar .nav-item", has_text=room).click()
    reply = row(page, "What was the plan again?")
    expect(reply).to_be_visible()
    # The first page (50) does not reach back that far.
    expect(row(page, "The plan, written down long ago")).to_have_count(0)
    reply.locator(".msg-quote").click()
    target = row(page, "The plan, written down long ago")
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bmsg--highlight\b"))
    expect(target).to_be_focused()
    screenshot(page, "reply-jumped-to-original")


def test_a_reply_whose_original_is_deleted_shows_it_deleted_live(people):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique("oops")
    create_room(alice, room)
    join_from_browser(bob, room)
    send(alice, "Wrong room, sorry")
    original = row(bob, "Wrong room, sorry")
    original.hover()
    original.get_by_role("button", name="Reply to this message").click()
    bob.keyboard.type("No worries")
    bob.keyboard.press("Enter")
    expect(row(alice, "No worries").locator(".msg-quote")).to_contain_text("Wrong room, sorry")

    mine = row(alice, "Wrong room, sorry")
    mine.hover()
    mine.get_by_role("button", name="Delete message").click()
    alice.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    for page in (alice, bob):
        quote = row(page, "No worries").locator(".msg-quote")
        expect(quote).to_have_text("Original message deleted")
    screenshot(bob, "reply-to-deleted")
    # After a reload, history says the same.
    bob.reload()
    bob.locator("#sidebar .nav-item", has_text=room).click()
    expect(row(bob, "No worries").locator(".msg-quote")).to_have_text("Original message deleted")


def test_a_reply_is_cancelled_with_escape_and_reactions_work_from_the_keyboard(people):
    alice_name = people.account("alice")
    alice = people.sign_in(alice_name)
    create_room(alice, unique("keys"))
    send(alice, "Keyboard only")
    message = row(alice, "Keyboard only")
    expect(message).to_be_visible()
    message.get_by_role("button", name="Reply to this message").focus()
    alice.keyboard.press("Enter")
    expect(alice.locator("#composer-reply")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(alice.locator("#composer-reply")).to_be_hidden()

    message.get_by_role("button", name="Add a reaction").first.focus()
    alice.keyboard.press("Enter")
    picker = alice.locator("#reaction-picker")
    expect(picker.get_by_role("button", name="React with 👍")).to_be_focused()
    alice.keyboard.press("ArrowRight")
    alice.keyboard.press("Enter")
    heart = chip(alice, "Keyboard only", "❤️")
    expect(heart).to_have_attribute("aria-pressed", "true")
    heart.focus()
    alice.keyboard.press("Enter")
    expect(heart).to_have_count(0)
