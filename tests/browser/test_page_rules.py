"""Rules of the UI's source that no browser run would reliably catch.

Fast checks (no browser): the templates carry no inline script or style
(the Content-Security-Policy refuses them), the scripts never parse text as
HTML, and the vendored socket.io client is complete and pinned.
"""
from __future__ import annotations

import re

import pytest

from tests.support.server import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
SCRIPTS = sorted(p for p in (ROOT / "static" / "js").rglob("*.js"))
VENDOR = ROOT / "static" / "vendor" / "socket.io"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_have_no_inline_script_or_style(template):
    text = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script> block"
    assert not re.search(r"\sstyle\s*=", text), "style= attribute"
    assert "<style" not in text, "inline <style> block"
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_insert_text_never_html(script):
    text = script.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in text, f"{sink} in {script.name}"


def test_the_vendored_socketio_client_is_pinned_with_its_licence():
    version = (VENDOR / "VERSION").read_text()
    pinned = re.search(r"socket\.io-client (\d+\.\d+\.\d+)", version).group(1)
    bundle = (VENDOR / "socket.io.esm.min.js").read_text()
    assert f"Socket.IO v{pinned}" in bundle[:200], "the bundle is the pinned version"
    assert "MIT License" in (VENDOR / "LICENSE").read_text()
    # No page loads anything from a CDN: it must work offline.
    for page in TEMPLATES:
        assert not re.search(r"(src|href)=\"https?://", page.read_text()), page.name
