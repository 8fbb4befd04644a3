"""Helpers for the browser tests: a chat server, people with their own browser contexts, screenshots."""
from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

from tests.support.server import ROOT, TEST_PASSWORD, Server, base_env, flask_cli, sign_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
LOGS = ROOT / "test-output" / "browser"
# A Playwright wait is a deadline, not a sleep: generous enough for a loaded
# two-core machine, short enough that a broken page fails in seconds.
TIMEOUT_MS = 10_000

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def start_chat_server(tmp_path_factory, name: str, **extra_env: str) -> Server:
    LOGS.mkdir(parents=True, exist_ok=True)
    database = tmp_path_factory.mktemp("browser-db") / "parley.sqlite3"
    env = base_env(f"sqlite:///{database}", GRACEFUL_TIMEOUT="2", **extra_env)
    flask_cli(env, "init-db")
    log_path = LOGS / f"{name}.log"
    log_path.write_bytes(b"")
    return Server(env, log_path=log_path).start()


class People:
    """Accounts made through the real sign-up form, signed in from their own browser context."""

    def __init__(self, browser, server: Server):
        self.browser = browser
        self.server = server
        self.contexts = []
        # What no page may ever do: throw an uncaught error, or break the
        # Content-Security-Policy (an inline script or style slipped in).
        self.page_errors: list[str] = []

    def account(self, prefix: str = "user") -> str:
        """A new account named ``<prefix><n>``, unique in the session."""
        return self.sign_up(unique(prefix))

    def sign_up(self, username: str) -> str:
        sign_up(self.server.url, username)
        return username

    def context(self, **options):
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = self.browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def _watch(self, page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self.page_errors.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)

    def sign_in(self, username: str, **options):
        """A page of the chat, signed in as ``username`` through /login, once it is live."""
        page = self.context(**options).new_page()
        page.goto(self.server.url + "/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_live(page)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        assert not self.page_errors, "the page broke:\n" + "\n".join(self.page_errors)


def wait_live(page) -> None:
    """The chat page has connected and caught up (the sidebar says "Online")."""
    from playwright.sync_api import expect

    expect(page.locator("#me-status")).to_have_text("Online", timeout=TIMEOUT_MS)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Finish transitions (a drawer sliding in) before the picture is taken.
    page.screenshot(path=str(path), animations="disabled")
    return path


def publish_screenshot(path: Path, name: str) -> None:
    """Copy a screenshot into docs/screenshots/ (committed; the README shows it).

    Only with ``PUBLISH_SCREENSHOTS=1`` (``make screenshots``): a test run
    must not change the checkout.
    """
    if os.environ.get("PUBLISH_SCREENSHOTS") != "1":
        return
    target = ROOT / "docs" / "screenshots" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)


def create_user(server: Server, username: str, *, admin: bool = False) -> None:
    flask_cli(server.env, "create-user", username, "--password-stdin",
              *(["--admin"] if admin else []), stdin=TEST_PASSWORD + "\n")
