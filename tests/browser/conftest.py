"""Browser tests: Debian's Chromium driven by Playwright against a real gunicorn.

One server (and one SQLite file) per test module, one browser for the whole
session, and a fresh browser context (its own cookies) per simulated person.
Screens worth looking at are saved under ``test-output/screenshots/``.
"""
from __future__ import annotations

import pytest

from .helpers import CHROMIUM, CHROMIUM_ARGS, People, start_chat_server


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])
    yield chat_server
    chat_server.close()


@pytest.fixture
def people(browser, server):
    crowd = People(browser, server)
    yield crowd
    crowd.close()
