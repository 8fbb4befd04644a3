"""The chat page on a WebSocket-only server (``WEBSOCKET_ONLY=true``).

Such a server refuses HTTP long-polling, the socket.io client's default first
step: the page must learn from ``data-transports`` to open a WebSocket
straight away.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.server import TEST_PASSWORD

from .helpers import TIMEOUT_MS, start_chat_server

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, "test_transports", WEBSOCKET_ONLY="true")
    yield chat_server
    chat_server.close()


def test_on_a_websocket_only_server_the_page_connects_over_websocket_alone(people, server):
    name = people.account("direct")
    polling: list[str] = []
    websockets: list[str] = []
    context = people.context()
    context.on("request", lambda request: polling.append(request.url)
               if "transport=polling" in request.url else None)
    page = context.new_page()
    page.on("websocket", lambda socket: websockets.append(socket.url))
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("body")).to_have_attribute("data-transports", "websocket")
    expect(page.locator("#me-status")).to_have_text("Online")
    assert polling == []
    assert any("transport=websocket" in url for url in websockets), websockets
