"""Mentions in Chromium: completing "@name", the mention badge and tab title,
the highlight, the per-room notification menu and browser notifications."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .helpers import TIMEOUT_MS, screenshot, wait_live
from .test_chat import create_room, join_from_browser, open_room, room_link, send

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

# Stands in for the browser's notifications: records each `new Notification`,
# keeps permission "default" until the page asks (the context grants it, so
# the real request answers "granted"), and lets the test hide the page.
FAKE_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notifications = [];
  window.__permission = "default";
  window.__hidden = false;
  class Recorded {
    constructor(title, options = {}) { window.__notifications.push({ title, body: options.body }); }
    static get permission() { return window.__permission; }
    static async requestPermission() {
      window.__permission = await Real.requestPermission();
      return window.__permission;
    }
    close() {}
  }
  window.Notification = Recorded;
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (window.__hidden ? "hidden" : "visible") });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
})();
"""


def notifications(page) -> list[dict]:
    return page.evaluate("window.__notifications")


def hide(page) -> None:
    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")


def test_bob_completes_a_name_and_alice_elsewhere_sees_the_badge_title_and_highlight(
        people, server):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    room, elsewhere = "Lunch plans", "Quiet corner"
    bob = people.sign_in(bob_name)
    create_room(bob, room)
    alice = people.sign_in(alice_name)
    join_from_browser(alice, room)
    create_room(alice, elsewhere)  # alice now reads another room

    composer = bob.locator("#composer-input")
    expect(bob.locator("#members")).to_contain_text(alice_name)
    composer.fill("")
    composer.press_sequentially("@" + alice_name[:3])
    options = bob.get_by_role("listbox", name="People to mention").get_by_role("option")
    expect(options).to_have_text([f"@{alice_name}"])
    expect(composer).to_have_attribute("aria-expanded", "true")
    screenshot(bob, "mention-completion")
    composer.press("Enter")  # picks: the message is not sent yet
    expect(options).to_have_count(0)
    expect(composer).to_have_value(f"@{alice_name} ")
    composer.press_sequentially("pizza at noon?")
    composer.press("Enter")
    expect(composer).to_have_value("")

    badge = room_link(alice, room).locator(".mention-badge")
    expect(badge).to_have_text("@1 mention")
    expect(alice).to_have_title(re.compile(r"^\(1\) #Quiet corner · Parley$"))
    screenshot(alice, "mention-badge")
    open_room(alice, room)
    mention = alice.locator("#message-list .msg--mentions-me .mention--me")
    expect(mention).to_have_text(f"@{alice_name}")
    expect(alice.locator("#message-list .msg--mentions-me .msg-text")).to_have_text(
        f"@{alice_name} pizza at noon?")
    expect(badge).to_have_count(0)
    expect(alice).to_have_title("#Lunch plans · Parley")
    screenshot(alice, "mention-highlight")
    # Bob's own view marks the mention too, but not as his.
    expect(bob.locator("#message-list .mention")).to_have_text(f"@{alice_name}")
    expect(bob.locator("#message-list .mention--me")).to_have_count(0)


def test_the_completion_list_follows_arrows_and_closes_on_escape(people, server, clients):
    owner = people.account("owner")
    members = [people.account("sam"), people.account("sue")]
    page = people.sign_in(owner)
    create_room(page, "Team")
    for name in members:
        assert clients(name).join("team")["ok"]
    composer = page.locator("#composer-input")
    expect(page.locator("#members")).to_contain_text(members[1])
    composer.press_sequentially("hi @s")
    options = page.get_by_role("option")
    expect(options).to_have_text([f"@{members[0]}", f"@{members[1]}"])
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    composer.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    composer.press("Escape")
    expect(options).to_have_count(0)
    expect(composer).to_have_value("hi @s")
    composer.press_sequentially("u")
    expect(options).to_have_text([f"@{members[1]}"])
    composer.press("Tab")
    expect(composer).to_have_value(f"hi @{members[1]} ")
    # The owner may call the whole room; the list offers it.
    composer.fill("")
    composer.press_sequentially("@ro")
    expect(options).to_have_text([re.compile(r"^@room")])


def test_a_hidden_page_raises_a_notification_for_a_mention_once_opted_in(people, server,
                                                                         clients):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice = people.sign_in(alice_name)
    alice.context.grant_permissions(["notifications"], origin=server.url)
    alice.context.add_init_script(FAKE_NOTIFICATIONS)
    alice.reload()
    wait_live(alice)
    create_room(alice, "Support")
    slug = alice.evaluate("decodeURIComponent(location.hash.slice('#room='.length))")
    bob = clients(bob_name)
    assert bob.join(slug)["ok"]

    # Opting in: the bell's menu asks the browser, from the click.
    alice.locator("#notify-button").click()
    expect(alice.get_by_role("menuitemradio", name="Mentions of me")).to_have_attribute(
        "aria-checked", "true")
    alice.get_by_role("menuitem", name="Show browser notifications").click()
    expect(alice.locator("#notify-browser-state")).to_have_text(re.compile("are on"))
    alice.keyboard.press("Escape")
    expect(alice.locator("#notify-options")).to_be_hidden()

    bob.send(slug, "no mention while she looks")
    expect(alice.locator("#message-list .msg-text").last).to_have_text("no mention while she looks")
    hide(alice)
    bob.send(slug, "plain, not for her")
    bob.send(slug, f"@{alice_name} can you look?")
    expect(alice.locator("#message-list .msg-text").last).to_have_text(
        f"@{alice_name} can you look?")
    alice.wait_for_function("window.__notifications.length > 0")
    assert notifications(alice) == [{"title": f"{bob_name} in #Support",
                                     "body": f"@{alice_name} can you look?"}]
    expect(alice).to_have_title(re.compile(r"^\(1\) "))


def notifying_page(people, server, account: str):
    """``account``'s chat page with browser notifications granted (and recorded)."""
    page = people.sign_in(account)
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.context.add_init_script(FAKE_NOTIFICATIONS.replace(
        'window.__permission = "default"', 'window.__permission = "granted"'))
    page.reload()
    wait_live(page)
    return page


def test_the_room_menu_sets_all_messages_or_nothing(people, server, clients):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice = notifying_page(people, server, alice_name)
    create_room(alice, "Alerts")
    slug = alice.evaluate("decodeURIComponent(location.hash.slice('#room='.length))")
    bob = clients(bob_name)
    assert bob.join(slug)["ok"]

    alice.locator("#notify-button").click()
    screenshot(alice, "notify-menu")
    alice.get_by_role("menuitemradio", name="All messages").click()
    expect(alice.locator("#notify-button")).to_have_accessible_name(
        "Notifications for this room: All messages")
    # The level is the server's: another device of hers reads it.
    wait_for_level = clients(alice_name)
    assert next(r for r in wait_for_level.call("rooms:list")["rooms"]
                if r["slug"] == slug)["notify"] == "all"
    hide(alice)
    bob.send(slug, "deploy finished")
    alice.wait_for_function("window.__notifications.length === 1")
    assert notifications(alice)[0]["body"] == "deploy finished"

    alice.evaluate("window.__hidden = false")
    alice.locator("#notify-button").click()
    alice.get_by_role("menuitemradio", name="Nothing").click()
    expect(alice.locator("#notify-button")).to_have_accessible_name(
        "Notifications for this room: Muted")
    hide(alice)
    bob.send(slug, f"@{alice_name} muted mention")
    bob.send(slug, "and a plain one")
    expect(alice.locator("#message-list .msg-text").last).to_have_text("and a plain one")
    assert len(notifications(alice)) == 1
