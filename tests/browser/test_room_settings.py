"""Room settings and display names in Chromium: what an owner does, what the others see live."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import TIMEOUT_MS, publish_screenshot, screenshot, unique
from .test_chat import PHONE, alice_and_bob_in_a_new_room, create_room, room_link, send

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


def open_settings(page):
    page.locator("#settings-button").click()
    dialog = page.locator("#room-settings-dialog")
    expect(dialog).to_be_visible()
    return dialog


def invite(page, username: str) -> None:
    page.locator("#invite-button").click()
    dialog = page.locator("#invite-dialog")
    dialog.get_by_label("Username").fill(username)
    dialog.get_by_role("button", name="Invite").click()
    expect(dialog).to_be_hidden()


def test_an_owner_renames_a_room_and_edits_its_topic_and_the_other_page_shows_both_live(people):
    alice, bob, alice_name, bob_name = alice_and_bob_in_a_new_room(people, "plans", topic="Old topic")
    expect(bob.locator("#settings-button")).to_be_hidden()  # bob neither owns it nor is an admin
    dialog = open_settings(alice)
    new_name = unique("Roadmap ")
    dialog.get_by_label("Name").fill(new_name)
    dialog.get_by_label("Topic").fill("What ships in Q1")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    for page in (alice, bob):
        expect(page.locator("#room-title")).to_contain_text(new_name)
        expect(page.locator("#room-topic")).to_have_text("What ships in Q1")
        expect(room_link(page, new_name)).to_be_visible()


def test_an_owner_removes_a_member_and_the_members_page_shows_the_room_gone(people):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique("secret")
    create_room(alice, room, private=True)
    invite(alice, bob_name)
    expect(room_link(bob, room)).to_be_visible()
    room_link(bob, room).click()
    expect(bob.locator("#room-title")).to_contain_text(room)

    dialog = open_settings(alice)
    member = dialog.locator(".settings-member").filter(has_text=bob_name)
    expect(dialog.locator(".settings-member")).to_have_count(2)
    member.get_by_role("button", name=f"Remove {bob_name} from the room").click()
    confirm = alice.locator("#confirm-dialog")
    expect(confirm).to_contain_text(f"Remove {bob_name}?")
    confirm.get_by_role("button", name="Remove").click()
    expect(confirm).to_be_hidden()
    expect(dialog.locator(".settings-member")).to_have_count(1)

    expect(room_link(bob, room)).to_have_count(0)
    expect(bob.locator("#room-title")).not_to_contain_text(room)
    expect(bob.get_by_role("status").filter(has_text=f"{alice_name} removed you from {room}.")).to_be_visible()


def test_an_owner_deletes_a_room_after_confirming_and_it_leaves_every_page(people):
    alice, bob, alice_name, bob_name = alice_and_bob_in_a_new_room(people, "scratch")
    room = alice.locator("#room-title").inner_text().strip()
    open_settings(alice).get_by_role("button", name="Delete room…").click()
    confirm = alice.locator("#confirm-dialog")
    expect(confirm).to_contain_text(f"Delete {room}?")
    confirm.get_by_role("button", name="Delete room").click()
    expect(confirm).to_be_hidden()
    for page in (alice, bob):
        expect(room_link(page, room)).to_have_count(0)


def test_a_display_name_shows_in_the_timeline_with_the_username_beside_it(people, server):
    alice, bob, alice_name, bob_name = alice_and_bob_in_a_new_room(people, "names")
    send(alice, "said before the name")
    expect(bob.locator("#message-list .msg-text").last).to_have_text("said before the name")
    set_display_name(alice, server, "Alice Smith")

    # The message already shown is redrawn with the new name, live.
    author = bob.locator("#message-list .msg .msg-author").last
    expect(author.locator(".person-main")).to_have_text("Alice Smith")
    expect(author.locator(".person-username")).to_have_text(f"@{alice_name}")
    expect(author).to_have_attribute("title", f"Alice Smith (@{alice_name})")
    expect(alice.locator("#me-name")).to_contain_text("Alice Smith")
    # Bob's member list shows the new name live too, the username beside it.
    bob_member = bob.locator("#member-groups .member").filter(has_text="Alice Smith")
    expect(bob_member).to_contain_text(f"@{alice_name}")


def set_display_name(page, server, name: str) -> None:
    account = page.context.new_page()
    account.goto(server.url + "/account")
    account.get_by_label("Display name").fill(name)
    account.get_by_role("button", name="Save display name").click()
    expect(account.locator("#display-name-status")).to_contain_text(name)
    screenshot(account, "account-display-name")
    account.close()


def test_the_room_settings_dialog_is_tidy_on_desktop_and_phone(people, server):
    alice, bob, alice_name, bob_name = alice_and_bob_in_a_new_room(people, "design", topic="Reviews")
    set_display_name(bob, server, "Bob Builder")
    dialog = open_settings(alice)
    expect(dialog.locator(".settings-member").filter(has_text="Bob Builder")).to_contain_text(f"@{bob_name}")
    publish_screenshot(screenshot(alice, "room-settings"), "room-settings.png")
    phone = people.sign_in(alice_name, viewport=PHONE, is_mobile=True, has_touch=True)
    phone.locator("#members-button").wait_for()
    room_link_name = alice.locator("#room-title").inner_text().strip()
    phone.locator("[data-action=toggle-sidebar]").click()
    room_link(phone, room_link_name).click()
    dialog = open_settings(phone)
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(phone, "room-settings-phone")
