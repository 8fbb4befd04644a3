"""Browser tests: Debian's Chromium driven by Playwright against a real gunicorn.

One server (and one SQLite file) per test module, one browser for the whole
session (the ``browser`` fixture in tests/conftest.py), and a fresh browser context (its own cookies) per simulated person.
Screens worth looking at are saved under ``test-output/screenshots/``.
"""
from __future__ import annotations

import pytest

from tests.support.client import ChatClient

from .helpers import start_chat_server


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])
    yield chat_server
    chat_server.close()


@pytest.fixture
def clients(server):
    """python-socketio clients standing in for other people's apps."""
    opened: list[ChatClient] = []

    def open_client(username: str) -> ChatClient:
        client = ChatClient(server.url, username).connect()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
