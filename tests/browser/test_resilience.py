"""The chat page when things go wrong: a server restart, a lost connection, a refused send.

This module restarts its server, so it has one of its own, with a send rate
limit (10 per 5 seconds) that a test can reach quickly on a slow machine.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.server import wait_until

from .helpers import TIMEOUT_MS, screenshot, start_chat_server, unique, wait_live

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

# socket.io's reconnection back-off grows to 5 s (with jitter): a reconnect
# may take that long after the server is back.
RECONNECT_MS = 20_000
BURST_LIMIT = 10


def confirmed(page):
    return page.locator("#message-list .msg:not(.msg--pending) .msg-text")


def send(page, text: str) -> None:
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").press("Enter")


def create_room(page, name: str) -> str:
    page.get_by_role("button", name="Create a room").first.click()
    dialog = page.locator("#create-room-dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_role("button", name="Create room").click()
    expect(page.locator("#room-title")).to_contain_text(name)
    expect(page).to_have_url(re.compile(r"#room="))
    return page.url.rsplit("#room=", 1)[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, "test_resilience",
                                    MESSAGE_RATE_LIMIT=f"{BURST_LIMIT} per 5 seconds")
    yield chat_server
    chat_server.close()


def test_after_a_server_restart_the_page_reconnects_and_shows_missed_messages_once(
        people, server, clients):
    alice = people.sign_in(people.account("alice"))
    slug = create_room(alice, unique("restart"))
    bob_name = people.account("bob")
    bob = clients(bob_name)
    assert bob.join(slug)["ok"]
    first = bob.send(slug, "before the restart")["message"]
    doomed = bob.send(slug, "soon deleted")["message"]
    expect(confirmed(alice)).to_have_text(["before the restart", "soon deleted"])

    server.stop()
    banner = alice.locator("#connection-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reconnecting")
    expect(alice.locator("#me-status")).to_have_text("Reconnecting…")
    screenshot(alice, "reconnecting")

    # Keep the page away while Bob talks, so that what he says can only
    # reach it through catch-up (room:join with since), not live.
    alice.context.set_offline(True)
    server.start()
    bob_again = clients(bob_name)
    assert bob_again.join(slug)["ok"]
    missed = [f"while you were away {n}" for n in range(1, 4)]
    for body in missed:
        assert bob_again.send(slug, body)["ok"]
    # Changes to messages the page already shows are caught up too.
    assert bob_again.call("message:edit", {"id": first["id"], "body": "before the restart, edited"})["ok"]
    assert bob_again.call("message:delete", {"id": doomed["id"]})["ok"]
    expect(alice.locator("#me-status")).to_have_text("Reconnecting…")  # still away
    alice.context.set_offline(False)

    expect(banner).to_be_hidden(timeout=RECONNECT_MS)
    # A deletion caught up leaves the list, as a live one does (docs/ui.md).
    expect(confirmed(alice)).to_have_text(["before the restart, edited", *missed])
    bob_again.send(slug, "and live again")
    expect(confirmed(alice)).to_have_text(["before the restart, edited", *missed, "and live again"])


def test_a_message_written_while_disconnected_is_sent_once_when_the_connection_returns(
        people, server, clients):
    alice = people.sign_in(people.account("alice"))
    slug = create_room(alice, unique("offline"))
    bob = clients(people.account("bob"))
    assert bob.join(slug)["ok"]

    server.stop()
    expect(alice.locator("#connection-banner")).to_contain_text("Reconnecting")
    send(alice, "written in the dark")
    pending = alice.locator("#message-list .msg--pending")
    expect(pending).to_contain_text("Waiting for the connection")
    server.start()

    expect(confirmed(alice)).to_have_text(["written in the dark"], timeout=RECONNECT_MS)
    expect(pending).to_have_count(0)
    # Exactly one stored: Bob's client (which reconnects and catches up by
    # itself) and the server's history agree.
    bob.wait_for_bodies(slug, ["written in the dark"])
    page = bob.call("message:history", {"room": slug})
    assert [m["body"] for m in page["messages"]] == ["written in the dark"]


def test_a_refused_send_shows_an_error_and_retry_reuses_its_client_id(people, server, clients):
    alice = people.sign_in(people.account("alice"))
    slug = create_room(alice, unique("burst"))
    bob = clients(people.account("bob"))
    assert bob.join(slug)["ok"]
    # Spend the whole allowance, then write more within the same window:
    # the server answers rate_limited for those.
    burst(alice, range(1, BURST_LIMIT + 1))
    expect(confirmed(alice)).to_have_count(BURST_LIMIT)
    burst(alice, range(BURST_LIMIT + 1, BURST_LIMIT + 4))
    failed = alice.locator("#message-list .msg--failed")
    expect(failed).to_have_count(3)
    expect(failed.first).to_contain_text("Not sent: too many messages")
    expect(failed.first.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(alice, "send-failed")
    refused = failed.evaluate_all("rows => rows.map(r => r.dataset.clientId)")

    def retry_all() -> bool:
        # Rows re-render as they change state: click what is failed right now.
        alice.evaluate("""() => document.querySelectorAll('#message-list .msg--failed button')
            .forEach((b) => { if (b.textContent.includes('Retry')) b.click(); })""")
        return failed.count() == 0 and alice.locator("#message-list .msg--pending").count() == 0

    wait_until(retry_all, timeout=20, interval=0.5, message="retries never all went through")
    expected = sorted(f"burst {n}" for n in range(1, BURST_LIMIT + 4))
    expect(confirmed(alice)).to_have_count(BURST_LIMIT + 3)
    assert sorted(confirmed(alice).all_inner_texts()) == expected
    stored = bob.call("message:history", {"room": slug})["messages"]
    assert sorted(m["body"] for m in stored) == expected, "each message stored once"
    assert set(refused) <= {m["client_id"] for m in stored}, "a retry stores under the refused client_id"


def burst(page, numbers) -> None:
    """Type and send several messages at once, faster than any person could."""
    page.evaluate("""numbers => {
        const field = document.getElementById('composer-input');
        for (const n of numbers) {
            field.value = `burst ${n}`;
            field.dispatchEvent(new Event('input'));
            field.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
        }
    }""", list(numbers))


def cut_socket(page) -> None:
    """Take the page offline and close its socket now, as a network drop would."""
    page.context.set_offline(True)
    # The page closes its socket on pagehide (and connects again on a
    # back-forward-cache pageshow): the same path as a lost connection's
    # catch-up, without waiting for a ping timeout.
    page.evaluate("() => window.dispatchEvent(new Event('pagehide'))")


def restore_socket(page) -> None:
    page.context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")


def test_an_offline_page_catches_up_on_edits_deletions_and_the_topic_without_a_reload(
        people, server, clients):
    alice_name = people.account("alice")
    alice = people.sign_in(alice_name)
    slug = create_room(alice, unique("away"))
    bob = clients(people.account("bob"))
    assert bob.join(slug)["ok"]
    old = bob.send(slug, "an old message")["message"]
    doomed = bob.send(slug, "a regretted message")["message"]
    for n in range(3):
        assert bob.send(slug, f"filler {n}")["ok"]
    expect(confirmed(alice)).to_have_count(5)
    # A marker that survives only if the page is not reloaded.
    alice.evaluate("() => { window.__notReloaded = true; }")

    cut_socket(alice)
    expect(alice.locator("#me-status")).not_to_have_text("Online")
    assert bob.call("message:edit", {"id": old["id"], "body": "an old message, corrected"})["ok"]
    assert bob.call("message:delete", {"id": doomed["id"]})["ok"]
    assert bob.call("room:update", {"room": slug, "topic": "x"})["error"]["code"] == "forbidden"
    alice_elsewhere = clients(alice_name)  # the room's owner, on another device
    assert alice_elsewhere.call("room:update", {"room": slug, "topic": "catching up works"})["ok"]

    restore_socket(alice)
    wait_live(alice)
    # The deletion caught up leaves the list, as a live one does (docs/ui.md).
    expect(confirmed(alice)).to_have_text(
        ["an old message, corrected", "filler 0", "filler 1", "filler 2"])
    expect(alice.locator("#room-topic")).to_have_text("catching up works")
    assert alice.evaluate("() => window.__notReloaded === true")
    bob.send(slug, "and live again")
    expect(confirmed(alice).last).to_have_text("and live again")
