"""``GET /admin``: the console page, for admins only, built for a strict CSP."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fadmin"


def test_a_signed_in_non_admin_gets_403(auth):
    auth.create("bob")
    response = auth.login("bob").get("/admin")
    assert response.status_code == 403
    assert "admins only" in response.get_data(as_text=True)


def test_a_non_admin_asking_for_json_gets_the_error_code(auth):
    auth.create("bob")
    response = auth.login("bob").get("/admin", headers={"Accept": "application/json"})
    assert response.status_code == 403 and response.json["ok"] is False


@pytest.fixture
def page(auth):
    auth.create("root", admin=True)
    response = auth.login("root").get("/admin")
    assert response.status_code == 200
    return response


def test_an_admin_gets_the_console(page):
    html = page.get_data(as_text=True)
    assert 'src="/static/js/admin.js"' in html and 'type="module"' in html
    assert 'href="/static/css/admin.css"' in html and 'href="/static/css/parley.css"' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_console_has_no_inline_script_or_style(page):
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers


def test_the_console_script_and_stylesheet_are_served(client):
    for path in ("/static/js/admin.js", "/static/css/admin.css",
                 "/static/vendor/socket.io/socket.io.esm.min.js"):
        assert client.get(path).status_code == 200, path


def test_the_console_script_inserts_user_text_as_text_only():
    source = (ROOT / "static/js/admin.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", ".style."):
        assert sink not in source, sink
