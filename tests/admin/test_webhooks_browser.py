"""The console's webhooks section in Chromium, against a real receiver on loopback."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.services.webhooks import verify
from tests.admin.test_browser import open_console
from tests.browser.helpers import People, create_user, screenshot, start_chat_server
from tests.e2e.conftest import Peer
from tests.support.receiver import Receiver
from tests.support.server import sign_in, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, "admin_webhooks",
                                    WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
                                    WEBHOOK_POLL_SECONDS="0.2")
    create_user(chat_server, "root", admin=True)
    create_user(chat_server, "alice")
    yield chat_server
    chat_server.close()


@pytest.fixture
def people(browser, server):
    crowd = People(browser, server)
    yield crowd
    crowd.close()


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


def test_an_admin_adds_a_webhook_sees_its_secret_once_and_redelivers(server, people, receiver):
    alice = Peer(server.url, "alice", http=sign_in(server.url, "alice")).connect()
    room = alice.create_room()
    page = open_console(people)
    section = page.locator("#webhooks")

    section.get_by_label("Receiver URL").fill(receiver.url)
    section.get_by_label("Rooms").fill(room)
    section.locator("input[name='events'][value='message']").check()
    section.get_by_role("button", name="Add webhook").click()

    secret = page.locator("#webhook-secret-value")
    expect(secret).to_have_text(re.compile(r"^whsec_\S{40,}$"))
    row = page.locator("#webhook-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(room)
    expect(row.locator("td").nth(2)).to_have_text("message")

    alice.send(room, "to the receiver")
    [got] = wait_until(receiver.got, message="no delivery")
    assert verify(secret.text_content(), got.headers["X-Parley-Timestamp"], got.body,
                  got.headers["X-Parley-Signature"])

    row.get_by_role("button", name="Deliveries").click()
    delivery = page.locator(f'#delivery-table tr[data-delivery="{got.delivery}"]')
    expect(delivery).to_have_attribute("data-status", "delivered")
    expect(delivery.locator("td").nth(3)).to_have_text("200")
    delivery.get_by_role("button", name="Redeliver").click()
    wait_until(lambda: len(receiver.got()) == 2, message="not redelivered")
    assert receiver.got()[1].delivery == got.delivery
    page.locator("#webhook-deliveries-refresh").click()
    expect(delivery.locator("td").nth(5)).to_have_text("2")
    screenshot(page, "admin-webhooks")

    page.reload()
    page.locator('body[data-connection="live"]').wait_for()
    expect(page.locator("#webhook-secret")).to_be_hidden()  # shown once, never again
    alice.close()
