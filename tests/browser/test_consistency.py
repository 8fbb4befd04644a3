"""One rule each in Chromium: deleted messages, the message length limit, and
where focus goes after "Load older messages"."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import People, start_chat_server, unique, wait_live
from .test_chat import a_long_room, confirmed, create_room, join_from_browser

pytestmark = pytest.mark.browser

# Not the default 4000: the page must enforce what the server renders.
LIMIT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, "consistency",
                                    MESSAGE_MAX_LENGTH=str(LIMIT),
                                    MESSAGE_RATE_LIMIT="100000 per 1 second")
    yield chat_server
    chat_server.close()


def test_a_paste_over_the_limit_is_kept_whole_and_held_until_it_fits(people: People):
    page = people.sign_in(people.account("writer"))
    create_room(page, unique("limits"))
    composer = page.locator("#composer-input")
    text = "x" * (LIMIT + 30)
    composer.fill(text)
    assert composer.input_value() == text, "the text was cut"
    note = page.locator("#composer-limit")
    expect(note).to_have_text(f"30 characters over the {LIMIT}-character limit: shorten it to send.")
    expect(composer).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("button", name="Send message")).to_be_disabled()
    composer.press("Enter")
    expect(page.locator("#message-list .msg")).to_have_count(0)
    assert composer.input_value() == text

    # Emoji count as one character each, as the server counts them.
    composer.fill("😀" * LIMIT)
    expect(note).to_be_hidden()
    composer.press("Enter")
    expect(confirmed(page)).to_have_text(["😀" * LIMIT])
    expect(note).to_be_hidden()
    expect(composer).not_to_have_attribute("aria-invalid", "true")


def test_a_deleted_message_leaves_the_list_live_and_after_a_reload(people: People):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique("deletions")
    create_room(alice, room)
    join_from_browser(bob, room)
    for text in ("keep me", "regret me", "keep me too"):
        alice.locator("#composer-input").fill(text)
        alice.locator("#composer-input").press("Enter")
    expect(confirmed(bob)).to_have_text(["keep me", "regret me", "keep me too"])
    regret = alice.locator("#message-list .msg", has_text="regret me")
    regret.hover()
    regret.get_by_role("button", name="Delete message").click()
    alice.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    for page in (alice, bob):
        expect(confirmed(page)).to_have_text(["keep me", "keep me too"])
        expect(page.get_by_text("This message was deleted")).to_have_count(0)
    bob.reload()
    wait_live(bob)
    expect(confirmed(bob)).to_have_text(["keep me", "keep me too"])


def test_load_older_messages_keeps_focus_in_the_message_list(people: People, clients):
    page, _ = a_long_room(people, clients, "long")
    page.reload()
    wait_live(page)
    expect(page.locator("#message-list .msg").last).to_contain_text("history 130")

    older = page.get_by_role("button", name="Load older messages")
    def settled_with_focus_in_the_list():
        # Never the page body: focus stays in the list while a page loads and after.
        page.wait_for_function("""() => {
            const list = document.getElementById('message-list');
            return list.contains(document.activeElement)
              && !document.querySelector('#message-list .timeline-top [role=status]');
        }""")

    # Tab onto the button (focusing it scrolls to the top, which may start a load by itself).
    older.focus()
    settled_with_focus_in_the_list()
    pressed = 0
    while older.count() and pressed < 5:
        shown = page.locator("#message-list .msg").count()
        expect(older).to_be_focused()
        page.keyboard.press("Enter")
        pressed += 1
        page.wait_for_function(
            "n => document.querySelectorAll('#message-list .msg').length > n", arg=shown)
        settled_with_focus_in_the_list()
    expect(page.locator(".timeline-intro")).to_be_visible()
    # No older page left: focus is on the oldest message, where the button was.
    first = page.locator("#message-list .msg").first
    expect(first).to_contain_text("history 1")
    expect(first).to_be_focused()
