"""Pages: security headers on every page, and hostile text shown as text.

The chat page's own XSS test is tests/browser/test_chat.py (messages, room
names, topics); this module adds the admin console, which shows the same
user-made text (room names and topics, message bodies, audit details) to the
people with the most power.
"""
from __future__ import annotations

import pytest

from tests.browser.helpers import create_user, start_chat_server
from tests.e2e.conftest import Peer
from tests.support.server import TEST_PASSWORD, sign_in

PAGES = ["/login", "/register", "/", "/admin", "/healthz", "/no-such-page"]
MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>b</b>'


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_security_headers(app, auth, path):
    auth.create("root", admin=True)
    response = auth.login("root").get(path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer",
                                                   "strict-origin-when-cross-origin")


def test_a_username_cannot_carry_markup(app):
    response = app.test_client().post("/register", data={"username": "<b>x</b>",
                                                         "password": "long-enough-pw"})
    assert response.status_code == 400
    assert "<b>x</b>" not in response.get_data(as_text=True)


# -- the admin console, in Chromium ----------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chat_server = start_chat_server(tmp_path_factory, "hardening_pages")
    create_user(chat_server, "root", admin=True)
    create_user(chat_server, "mallory")
    yield chat_server
    chat_server.close()


@pytest.mark.browser
def test_hostile_text_is_shown_as_text_in_the_admin_console(server, browser):
    from playwright.sync_api import expect

    mallory = Peer(server.url, "mallory", http=sign_in(server.url, "mallory")).connect()
    slug = mallory.create_room(name='<img src=x onerror="window.__pwned=3">', topic=MARKUP)
    mallory.ok("room:join", {"room": slug})
    mallory.send(slug, MARKUP)
    mallory.close()

    context = browser.new_context()
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/login?next=/admin")
        page.get_by_label("Username").fill("root")
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.locator('body[data-connection="live"]').wait_for()
        page.get_by_role("button", name="Refresh rooms").click()
        row = page.locator(f'#room-table tr[data-room="{slug}"]')
        expect(row).to_contain_text('<img src=x onerror="window.__pwned=3">')
        row.get_by_role("button", name="Messages").click()
        expect(page.locator("#message-list")).to_contain_text(MARKUP)
        # An announcement with markup lands in the audit feed as text.
        page.get_by_role("textbox", name="Message", exact=True).fill(MARKUP)
        page.get_by_role("button", name="Send announcement").click()
        page.locator("#confirm-dialog").get_by_role("button").filter(
            has_not_text="Cancel").first.click()
        expect(page.locator("#audit-feed")).to_contain_text("<script>")
        for selector in ("#room-table img", "#room-table b", "#message-list img",
                         "#message-list script", "#message-list b", "#audit-feed img",
                         "#audit-feed b"):
            expect(page.locator(selector)).to_have_count(0)
        assert page.evaluate("window.__pwned") is None
        assert errors == []
    finally:
        context.close()
