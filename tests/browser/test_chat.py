"""The group chat page in Chromium, against a real gunicorn: what people see and do."""
from __future__ import annotations

import re

import pytest
import socketio
from playwright.sync_api import expect

from tests.support.client import ChatClient
from tests.support.server import TEST_PASSWORD, cookie_header, sign_in, wait_until

from .helpers import (TIMEOUT_MS, create_user, publish_screenshot, screenshot,
                       start_chat_server, unique)

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Seeding a long history takes many sends from one user; the default
    # limit (10 a second) would make that slow. Rate limits have their own
    # test in test_resilience.py, at the default.
    chat_server = start_chat_server(tmp_path_factory, "test_chat",
                                    MESSAGE_RATE_LIMIT="1000 per 1 second")
    yield chat_server
    chat_server.close()


# -- helpers: what a person sees --

def messages(page):
    """The open room's messages, as the texts shown."""
    return page.locator("#message-list .msg .msg-text")


def confirmed(page):
    return page.locator("#message-list .msg:not(.msg--pending) .msg-text")


def room_link(page, name: str):
    return page.locator("#sidebar .nav-item").filter(
        has=page.locator(".nav-name", has_text=re.compile(rf"^{re.escape(name)}$")))


def send(page, text: str) -> None:
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").press("Enter")


def create_room(page, name: str, *, private: bool = False, topic: str = "") -> None:
    page.get_by_role("button", name="Create a room").first.click()
    dialog = page.locator("#create-room-dialog")
    dialog.get_by_label("Name").fill(name)
    if topic:
        dialog.get_by_label("Topic").fill(topic)
    if private:
        dialog.get_by_text("Private", exact=True).click()
    dialog.get_by_role("button", name="Create room").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#room-title")).to_contain_text(name)


def open_room(page, name: str) -> None:
    room_link(page, name).click()
    expect(page.locator("#room-title")).to_contain_text(name)


def join_from_browser(page, name: str) -> None:
    page.get_by_role("button", name="Browse public rooms").click()
    dialog = page.locator("#browse-dialog")
    dialog.get_by_role("button", name=f"Join {name}").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#room-title")).to_contain_text(name)


def alice_and_bob_in_a_new_room(people, prefix: str, *, topic: str = ""):
    """Alice creates a public room and Bob joins it from the room browser;
    answers (alice's page, bob's page, alice's username, bob's username)."""
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique(prefix)
    create_room(alice, room, topic=topic)
    join_from_browser(bob, room)
    return alice, bob, alice_name, bob_name


# -- signing up, in and out --

def test_sign_up_lands_in_the_chat_and_sign_out_returns_to_sign_in(people, server):
    page = people.context().new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    screenshot(page, "sign-in")
    page.get_by_role("link", name="Create an account").click()
    username = unique("newcomer")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    screenshot(page, "sign-up")
    page.get_by_role("button", name="Create account").click()

    expect(page.locator("#me-status")).to_have_text("Online")
    expect(page.locator("#me-name")).to_have_text(username)
    expect(page.get_by_role("heading", name=f"Welcome to Parley, {username}")).to_be_visible()
    screenshot(page, "chat-empty")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_wrong_password_shows_an_error_and_stays_on_sign_in(people, server):
    username = people.account("wrong")
    page = people.context().new_page()
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))


# -- chatting --

def test_two_people_chat_in_a_room_and_each_sees_the_others_message(people, server):
    alice, bob, alice_name, bob_name = alice_and_bob_in_a_new_room(people, "lounge", topic="Where the team hangs out")

    send(alice, "Hi Bob, welcome to the lounge!")
    expect(confirmed(bob)).to_have_text(["Hi Bob, welcome to the lounge!"])
    send(bob, "Thanks Alice.\nGlad to be here.")
    expect(confirmed(alice)).to_have_text(["Hi Bob, welcome to the lounge!",
                                           "Thanks Alice.\nGlad to be here."])
    expect(confirmed(bob)).to_have_text(["Hi Bob, welcome to the lounge!",
                                         "Thanks Alice.\nGlad to be here."])
    # Each person's messages are grouped under one header with author and time.
    header = alice.locator("#message-list .msg:not(.msg--continued)").last
    expect(header.locator(".msg-author")).to_have_text(bob_name)
    expect(header.locator("time")).to_have_attribute("datetime", re.compile(r"Z$"))
    expect(alice.locator(".day-divider")).to_have_text(["Today"])
    # Both are online in the room.
    expect(alice.locator("#members .member--online .member-name")).to_have_text(
        sorted([alice_name, bob_name], key=str.lower))


def test_a_sent_message_shows_at_once_as_pending_and_is_confirmed_by_the_ack(people, server):
    page = people.sign_in(people.account("quick"))
    create_room(page, unique("quick"))
    # Record every state the row goes through, from before the send.
    page.evaluate("""() => {
        window.__states = [];
        new MutationObserver(() => {
            const row = document.querySelector('#message-list .msg');
            if (row) window.__states.push(row.classList.contains('msg--pending') ? 'pending' : 'confirmed');
        }).observe(document.getElementById('message-list'), {childList: true, subtree: true});
    }""")
    send(page, "first words")
    expect(confirmed(page)).to_have_text(["first words"])
    expect(page.locator("#message-list .msg--pending")).to_have_count(0)
    states = page.evaluate("window.__states")
    assert states[0] == "pending" and states[-1] == "confirmed", states
    expect(page.locator("#composer-input")).to_have_value("")


def test_composer_enter_sends_and_shift_enter_makes_a_new_line(people, server):
    page = people.sign_in(people.account("typist"))
    create_room(page, unique("lines"))
    composer = page.locator("#composer-input")
    composer.press_sequentially("line one")
    composer.press("Shift+Enter")
    composer.press_sequentially("line two")
    expect(composer).to_have_value("line one\nline two")
    expect(messages(page)).to_have_count(0)
    composer.press("Enter")
    expect(confirmed(page)).to_have_text(["line one\nline two"])
    expect(composer).to_have_value("")


def test_a_message_containing_html_is_shown_as_text(people, server, clients):
    name = people.account("writer")
    page = people.sign_in(name)
    room = unique("markup")
    create_room(page, room)
    other = people.account("mallory")
    mallory = clients(other)
    assert mallory.join(_slug(page))["ok"]
    markup = '<img src=x onerror="window.__pwned=1"><b>bold</b><script>window.__pwned=2</script>'
    mallory.send(_slug(page), markup)
    send(page, "<i>mine</i> & <a href='javascript:alert(1)'>link</a>")

    expect(confirmed(page)).to_have_text([markup, "<i>mine</i> & <a href='javascript:alert(1)'>link</a>"])
    message_list = page.locator("#message-list")
    for tag in ("img", "b", "script", "i"):
        expect(message_list.locator(f".msg-text {tag}")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    # Room names and topics are text too.
    create_room(page, "<u>room</u>", topic="<em>topic</em>")
    expect(page.locator("#room-title")).to_contain_text("<u>room</u>")
    expect(page.locator("#room-topic")).to_have_text("<em>topic</em>")
    expect(page.locator("#room-title u, #room-topic em")).to_have_count(0)


def test_a_private_room_and_a_direct_message_are_invisible_to_a_third_person(people, server):
    alice_name, bob_name, carol_name = (people.account("alice"), people.account("bob"),
                                        people.account("carol"))
    alice, bob, carol = (people.sign_in(alice_name), people.sign_in(bob_name),
                         people.sign_in(carol_name))
    secret = unique("secret")
    create_room(alice, secret, private=True)
    alice.get_by_role("button", name="Invite").click()
    invite = alice.locator("#invite-dialog")
    invite.get_by_label("Username").fill(bob_name)
    invite.get_by_role("button", name="Invite").click()
    expect(invite).to_be_hidden()
    send(alice, "for bob's eyes only")

    # Bob is told at once (room:added) and can read it.
    expect(room_link(bob, secret)).to_be_visible()
    open_room(bob, secret)
    expect(confirmed(bob)).to_have_text(["for bob's eyes only"])

    # A direct message, opened from the member list.
    alice.locator("#members .member", has_text=bob_name).click()
    expect(alice.locator("#room-title")).to_contain_text(bob_name)
    send(alice, "just between us")
    expect(room_link(bob, alice_name)).to_be_visible()
    expect(room_link(bob, alice_name).locator(".badge")).to_have_text(re.compile(r"^1"))
    open_room(bob, alice_name)
    expect(confirmed(bob)).to_have_text(["just between us"])
    screenshot(bob, "direct-message")

    # Carol sees neither: not in her list, not in the room browser, not by address.
    carol.get_by_role("button", name="Browse public rooms").click()
    browse = carol.locator("#browse-dialog")
    expect(browse.locator(".browse-item").first).to_be_visible()
    expect(browse).not_to_contain_text(secret)
    expect(browse).not_to_contain_text(alice_name)
    browse.get_by_role("button", name="Close").click()
    expect(carol.locator("#sidebar")).not_to_contain_text(secret)
    expect(carol.locator("#sidebar")).not_to_contain_text(bob_name)
    dm_slug = _slug(bob)
    carol.goto(f"{server.url}/#room={dm_slug}")
    expect(carol.locator("#me-status")).to_have_text("Online")
    expect(carol.get_by_text("just between us")).to_have_count(0)
    expect(carol.get_by_text("for bob's eyes only")).to_have_count(0)


def test_edits_and_deletions_show_live_to_everyone_in_the_room(people, server, clients):
    alice, bob, _, _ = alice_and_bob_in_a_new_room(people, "edits")
    send(alice, "teh first draft")
    send(alice, "a message to regret")
    expect(confirmed(bob)).to_have_count(2)

    first_id = alice.locator("#message-list .msg", has_text="teh first draft").get_attribute("data-id")
    first = alice.locator(f'#message-list .msg[data-id="{first_id}"]')
    first.hover()
    first.get_by_role("button", name="Edit message").click()
    editor = first.get_by_role("textbox", name="Edit message")
    editor.fill("the first draft")
    editor.press("Enter")
    expect(bob.locator("#message-list .msg", has_text="the first draft").locator(".msg-edited")).to_have_text("(edited)")

    regret = alice.locator("#message-list .msg", has_text="a message to regret")
    regret.hover()
    regret.get_by_role("button", name="Delete message").click()
    alice.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    # Gone live, as it is from history after a reload: one rule (docs/ui.md).
    expect(bob.get_by_text("a message to regret")).to_have_count(0)
    expect(alice.locator("#message-list").get_by_text("a message to regret")).to_have_count(0)
    expect(confirmed(bob)).to_have_count(1)
    bob.reload()
    expect(confirmed(bob)).to_have_text(["the first draft"])
    # Bob cannot edit or delete Alice's message (he may reply and react).
    expect(bob.locator("#message-list").get_by_role(
        "button", name=re.compile(r"^(Edit|Delete) message$"))).to_have_count(0)

    # Up in an empty composer edits one's last message, as in Slack.
    alice.locator("#composer-input").press("ArrowUp")
    editor = alice.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    editor.press("Escape")
    expect(alice.locator("#composer-input")).to_be_focused()


def test_the_rooms_owner_can_delete_anyones_message_in_it(people, server):
    alice, bob, _, bob_name = alice_and_bob_in_a_new_room(people, "owned")
    send(bob, "spam spam spam")
    send(alice, "house rules apply")
    expect(confirmed(alice)).to_have_count(2)

    spam = alice.locator("#message-list .msg", has_text="spam spam spam")
    spam.hover()
    # The owner moderates others' messages but does not edit them.
    expect(spam.get_by_role("button", name="Edit message")).to_have_count(0)
    spam.get_by_role("button", name="Delete message").click()
    dialog = alice.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-title")).to_have_text(f"Delete {bob_name}’s message?")
    dialog.get_by_role("button", name="Delete").click()
    expect(bob.get_by_text("spam spam spam")).to_have_count(0)
    # Bob, a member but not the owner, gets no delete button on Alice's message.
    rules = bob.locator("#message-list .msg", has_text="house rules apply")
    rules.hover()
    expect(rules.get_by_role("button", name=re.compile(r"^(Edit|Delete) message$"))).to_have_count(0)


def a_long_room(people, clients, prefix: str, count: int = 130):
    """A reader's page in a new room where someone else has posted ``history 1..count``
    (more than the first page the UI loads); the page is not reloaded yet."""
    page = people.sign_in(people.account("reader"))
    create_room(page, unique(prefix))
    slug = _slug(page)
    poster = clients(people.account("poster"))
    assert poster.join(slug)["ok"]
    for n in range(1, count + 1):
        assert poster.send(slug, f"history {n}")["ok"]
    return page, slug


def test_older_messages_load_as_the_reader_scrolls_up(people, server, clients):
    page, _ = a_long_room(people, clients, "archive")

    page.reload()
    expect(page.locator("#me-status")).to_have_text("Online")
    expect(messages(page).last).to_have_text("history 130")
    shown = messages(page).count()
    assert shown < 130, "the first page is a page, not everything"
    # Scroll to the top until the beginning of the room shows.
    timeline = page.locator("#timeline")
    for _ in range(10):
        timeline.evaluate("el => { el.scrollTop = 0; }")
        if page.locator(".timeline-intro").count():
            break
        page.wait_for_function("n => document.querySelectorAll('#message-list .msg').length > n", arg=shown)
        shown = messages(page).count()
    expect(page.locator(".timeline-intro")).to_be_visible()
    texts = messages(page).all_inner_texts()
    assert texts == [f"history {n}" for n in range(1, 131)]
    # The reader's place is kept: the newest message is no longer in view.
    expect(messages(page).last).not_to_be_in_viewport()


def test_who_is_online_and_who_is_typing_show_in_the_room(people, server, clients):
    alice_name = people.account("alice")
    alice = people.sign_in(alice_name)
    room = unique("presence")
    create_room(alice, room)
    slug = _slug(alice)
    dave_name = people.account("dave")
    dave = clients(dave_name)
    assert dave.join(slug)["ok"]
    online = alice.locator("#members .member--online .member-name")
    expect(online).to_have_text(sorted([alice_name, dave_name], key=str.lower))

    dave.sio.emit("typing", {"room": slug, "typing": True}, namespace="/public")
    expect(alice.locator("#typing")).to_have_text(f"{dave_name} is typing…")
    dave.send(slug, "done typing")
    expect(alice.locator("#typing")).to_have_text("")

    dave.close()
    expect(alice.locator("#members .member--offline .member-name")).to_have_text([dave_name])


def test_unread_counts_show_in_the_sidebar_and_clear_when_read(people, server, clients):
    name = people.account("busy")
    page = people.sign_in(name)
    quiet, noisy = unique("quiet"), unique("noisy")
    create_room(page, noisy)
    noisy_slug = _slug(page)
    create_room(page, quiet)
    friend = clients(people.account("friend"))
    assert friend.join(noisy_slug)["ok"]
    for n in range(3):
        friend.send(noisy_slug, f"ping {n}")
    badge = room_link(page, noisy).locator(".badge")
    expect(badge).to_have_text("3 unread")
    expect(page).to_have_title(re.compile(r"^\(3\) "))
    open_room(page, noisy)
    expect(page.locator(".unread-divider")).to_be_visible()
    expect(badge).to_have_count(0)
    # The read marker reached the server: another device sees nothing unread.
    elsewhere = clients(name)
    wait_until(lambda: _unread(elsewhere, noisy_slug) == 0, timeout=10,
               message="the read marker never reached the server")
    page.reload()
    expect(page.locator("#me-status")).to_have_text("Online")
    expect(room_link(page, noisy).locator(".badge")).to_have_count(0)


@pytest.fixture(scope="module")
def console(server):
    """An admin's /admin connection (python-socketio), as the admin console makes."""
    admin = unique("admin")
    create_user(server, admin, admin=True)
    http = sign_in(server.url, admin)
    client = socketio.Client()
    client.connect(server.url, namespaces=["/admin"], headers={"Cookie": cookie_header(http)},
                   transports=["websocket"], wait_timeout=10)
    yield lambda event, payload: client.call(event, payload, namespace="/admin", timeout=10)
    client.disconnect()


def test_admin_announcements_show_to_everyone(people, server, console):
    page = people.sign_in(people.account("listener"))
    ack = console("announce", {"body": "Maintenance at 18:00 <b>UTC</b>"})
    assert ack["ok"], ack
    banner = page.locator(".announcement")
    expect(banner).to_contain_text("Maintenance at 18:00 <b>UTC</b>")
    screenshot(page, "announcement")
    banner.get_by_role("button", name="Dismiss the announcement").click()
    expect(banner).to_have_count(0)


def test_a_kicked_person_sees_why_and_can_reconnect(people, server, console):
    name = people.account("rowdy")
    page = people.sign_in(name)
    ack = console("user:kick", {"user": name, "reason": "cool down"})
    assert ack["ok"] and ack["disconnected"] == 1, ack
    banner = page.locator("#connection-banner")
    expect(banner).to_contain_text("You were disconnected by an administrator: cool down")
    expect(page.locator("#me-status")).to_have_text("Disconnected")
    page.get_by_role("button", name="Reconnect now").click()
    expect(page.locator("#me-status")).to_have_text("Online")
    expect(banner).to_be_hidden()


def test_a_room_archived_by_an_admin_turns_read_only_at_once_and_reopens(people, server,
                                                                         console):
    page = people.sign_in(people.account("archivist"))
    name = unique("Archive me")
    create_room(page, name)
    slug = _slug(page)
    send(page, "before the archive")
    composer = page.locator("#composer-input")
    expect(composer).to_be_enabled()
    assert console("room:archive", {"room": slug})["ok"]
    expect(composer).to_be_disabled()
    expect(composer).to_have_attribute("placeholder", "This room is archived: it is read-only")
    expect(page.locator("#room-title")).to_contain_text("archived")
    expect(messages(page)).to_contain_text(["before the archive"])
    low = page.evaluate(CONTRAST_CHECK)  # the open archived room's name included
    assert low == [], f"text below 4.5:1 contrast: {low}"
    screenshot(page, "archived-room")
    assert console("room:archive", {"room": slug, "archived": False})["ok"]
    expect(composer).to_be_enabled()
    send(page, "after reopening")
    expect(confirmed(page).last).to_contain_text("after reopening")


def test_signing_out_in_another_tab_sends_this_one_to_sign_in(people, server):
    first = people.sign_in(people.account("tabs"))
    second = first.context.new_page()
    second.goto(server.url + "/")
    expect(second.locator("#me-status")).to_have_text("Online")
    first.get_by_role("button", name="Sign out").click()
    expect(first).to_have_url(re.compile(r"/login"))
    expect(second).to_have_url(re.compile(r"/login"))


def test_leaving_a_room_takes_it_off_the_list(people, server):
    page = people.sign_in(people.account("leaver"))
    stay, go = unique("stay"), unique("go")
    create_room(page, stay)
    create_room(page, go)
    page.get_by_role("button", name="Leave", exact=True).click()
    page.locator("#confirm-dialog").get_by_role("button", name="Leave room").click()
    expect(room_link(page, go)).to_have_count(0)
    expect(page.locator("#room-title")).to_contain_text(stay)
    # A public room can be found and joined again.
    join_from_browser(page, go)
    expect(room_link(page, go)).to_be_visible()


# -- phone, keyboard, contrast --

def test_the_chat_works_on_a_phone_sized_screen(people, server):
    name = people.account("mobile")
    page = people.sign_in(name, viewport=PHONE, is_mobile=True, has_touch=True)
    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()
    page.get_by_role("button", name="Show rooms").click()
    expect(sidebar).to_be_in_viewport()
    screenshot(page, "phone-rooms")
    page.locator("#sidebar").get_by_role("button", name="Create a room").click()
    dialog = page.locator("#create-room-dialog")
    dialog.get_by_label("Name").fill(unique("pocket"))
    dialog.get_by_role("button", name="Create room").click()
    expect(sidebar).not_to_be_in_viewport()
    send(page, "sent from a phone")
    expect(confirmed(page)).to_have_text(["sent from a phone"])
    # The header's buttons show only icons on a phone, and keep their names.
    for name in ("Invite", "Leave"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    # Nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name=re.compile("members")).click()
    expect(page.locator("#members")).to_be_in_viewport()
    screenshot(page, "phone-members")
    page.keyboard.press("Escape")
    expect(page.locator("#members")).not_to_be_in_viewport()
    screenshot(page, "phone-chat")


def test_the_chat_can_be_used_with_the_keyboard_alone(people, server):
    page = people.sign_in(people.account("keys"))
    # Create a room without the mouse: Tab to the button, Enter, type, Enter.
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()
    create_button = page.locator("#sidebar").get_by_role("button", name="Create a room")
    for _ in range(10):
        page.keyboard.press("Tab")
        if create_button.evaluate("el => el === document.activeElement"):
            break
    expect(create_button).to_be_focused()
    assert _has_focus_ring(page), "the focused button shows where focus is"
    page.keyboard.press("Enter")
    expect(page.locator("#create-room-dialog").get_by_label("Name")).to_be_focused()
    page.keyboard.type(unique("keyboard"))
    page.keyboard.press("Enter")
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("no mouse needed")
    page.keyboard.press("Enter")
    expect(confirmed(page)).to_have_text(["no mouse needed"])
    # Own message actions are reachable by Tab (they show on focus).
    page.keyboard.press("Shift+Tab")
    for _ in range(6):
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete message":
            break
        page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Delete message")).to_be_focused()
    expect(page.get_by_role("button", name="Delete message")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-dialog")).to_be_hidden()


def test_text_has_readable_contrast(people, server, clients):
    name = people.account("contrast")
    page = people.sign_in(name)
    create_room(page, unique("contrast"), topic="A topic in muted text")
    send(page, "some text")
    expect(confirmed(page)).to_have_count(1)
    low = page.evaluate(CONTRAST_CHECK)
    assert low == [], f"text below 4.5:1 contrast: {low}"


def test_screenshot_of_the_chat_for_the_readme(people, server, clients):
    """A lived-in chat (several people, a topic, an unread room, a DM), saved as docs/screenshots/chat.png."""
    # Plain names read better in the README; they are unique in this module.
    maya = "maya"
    people.sign_up(maya)
    page = people.sign_in(maya)
    create_room(page, "announcements", topic="News from the team leads")
    create_room(page, "random")
    random_slug = _slug(page)
    create_room(page, "design-review", topic="Weekly design review: mockups, feedback, decisions")
    slug = _slug(page)
    jonas, priya, leo = (clients(name) for name in (people.sign_up("jonas"), people.sign_up("priya"),
                                                    people.sign_up("leo")))
    for other in (jonas, priya, leo):
        assert other.join(slug)["ok"]
    jonas.send(slug, "Morning! The new onboarding mockups are up on the shared drive.")
    jonas.send(slug, "Main change: sign-up is one screen instead of three.")
    priya.send(slug, "Nice. I left comments on the empty states: they need a clear next step.")
    send(page, "Agreed with Priya. Can we also check the contrast of the muted text?")
    leo.send(slug, "I ran the checker: everything passes AA except the old footer.\n"
                   "Fix is in https://example.org/pr/412")
    priya.send(slug, "Great, I'll review it after lunch.")
    assert jonas.join(random_slug)["ok"]
    jonas.send(random_slug, "Anyone up for lunch at the new ramen place?")
    jonas.send(random_slug, "12:30 at the lobby?")
    assert priya.call("dm:open", {"user": maya})["ok"]
    leo.sio.emit("typing", {"room": slug, "typing": True}, namespace="/public")
    expect(confirmed(page)).to_have_count(6)
    expect(room_link(page, "random").locator(".badge")).to_have_text("2 unread")
    expect(room_link(page, "priya")).to_be_visible()
    expect(page.locator("#typing")).not_to_be_empty()
    page.mouse.move(0, 0)  # no row highlighted by the last click's hover
    path = screenshot(page, "chat")
    publish_screenshot(path, "chat.png")


def _unread(client: ChatClient, slug: str) -> int:
    rooms = client.call("rooms:list")["rooms"]
    return next(room["unread"] for room in rooms if room["slug"] == slug)


def _slug(page) -> str:
    match = re.search(r"#room=(.+)$", page.url)
    assert match, page.url
    return match.group(1)


def _has_focus_ring(page) -> bool:
    return page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
            || style.boxShadow !== 'none';
    }""")


# WCAG 2 contrast of every visible text node's colour against the first
# opaque background behind it.
CONTRAST_CHECK = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
    if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement; if (!node.textContent.trim() || !el) continue;
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    if (el.closest('.visually-hidden, dialog:not([open]), [disabled]')) continue;
    const rect = el.getBoundingClientRect(); if (!rect.width || !rect.height) continue;
    const fg = parse(getComputedStyle(el).color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) low.push(`${node.textContent.trim().slice(0, 30)} (${ratio.toFixed(2)})`);
  }
  return low;
}"""


def test_usernames_are_completed_in_the_message_someone_dialog(people):
    friend = people.account("zephyrine")
    page = people.sign_in(people.account("user"))
    page.get_by_role("button", name="Message someone").first.click()
    field = page.locator("#dm-user")
    field.press_sequentially(friend[:6], delay=30)
    option = page.locator(f'#user-suggestions option[value="{friend}"]')
    option.wait_for(state="attached")
    field.fill(friend)
    page.get_by_role("button", name="Open conversation").click()
    page.locator("#room-title", has_text=friend).wait_for()
