"""Message formatting in Chromium (issue 16): the Markdown subset the page
renders (static/js/lib/markdown.js) as elements built from text, never HTML;
bodies stay the text their author typed."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from .helpers import TIMEOUT_MS, screenshot, start_chat_server, unique, wait_live
from .test_chat import create_room, join_from_browser, send
from .test_mentions import hide, notifications, notifying_page

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

# The renderer's nesting bound (MAX_NESTING in markdown.js).
MAX_NESTING = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Hostile bodies and a long history are sent in bursts by one user.
    chat_server = start_chat_server(tmp_path_factory, "test_formatting",
                                    MESSAGE_RATE_LIMIT="1000 per 1 second")
    yield chat_server
    chat_server.close()


def slug_of(page) -> str:
    return page.evaluate("decodeURIComponent(location.hash.slice('#room='.length))")


def texts(page):
    return page.locator("#message-list .msg:not(.msg--pending) .msg-text")


def render(page, body: str) -> str:
    """What the renderer makes of ``body``, serialised (read back, never written, as HTML)."""
    return page.evaluate("""async (body) => {
        const { rendered } = await import("/static/js/lib/markdown.js");
        const box = document.createElement("div");
        box.append(rendered(body));
        return box.innerHTML;
    }""", body)


def plain(page, body: str) -> str:
    return page.evaluate("""async (body) => {
        const { plainText } = await import("/static/js/lib/markdown.js");
        return plainText(body);
    }""", body)


LINK = 'target="_blank" rel="noopener noreferrer nofollow"'

EVERY_CONSTRUCT = "\n".join([
    "**Deploy** is _done_, *mostly* ~~broken~~ fixed: run `make check`",
    "> the plan said so",
    "> twice",
    "```",
    "if (a < b) { go(); }",
    "```",
    "See [the notes](https://example.org/notes) or https://example.org/a_b_c",
])


def test_each_construct_renders_as_its_element_for_writer_and_reader(people):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice, bob = people.sign_in(alice_name), people.sign_in(bob_name)
    room = unique("format")
    create_room(alice, room)
    join_from_browser(bob, room)
    send(alice, EVERY_CONSTRUCT)

    for page in (alice, bob):
        text = texts(page).last
        expect(text.locator("strong")).to_have_text(["Deploy"])
        expect(text.locator("em")).to_have_text(["done", "mostly"])
        expect(text.locator("del")).to_have_text(["broken"])
        expect(text.locator(":scope > code")).to_have_text(["make check"])
        expect(text.locator("blockquote")).to_have_text(["the plan said so\ntwice"])
        expect(text.locator("pre > code")).to_have_text(["if (a < b) { go(); }"])
        links = text.locator("a")
        expect(links).to_have_text(["the notes", "https://example.org/a_b_c"])
        expect(links.nth(0)).to_have_attribute("href", "https://example.org/notes")
        expect(links.nth(0)).to_have_attribute("title", "https://example.org/notes")
        expect(links.nth(1)).to_have_attribute("href", "https://example.org/a_b_c")
        # Nothing else became an element; markers are gone from the text.
        assert text.evaluate("el => [...el.querySelectorAll('*')].map(e => e.localName).sort().join()") == \
            "a,a,blockquote,code,code,del,em,em,pre,strong"
        expect(text).to_contain_text("Deploy is done, mostly broken fixed: run make check")
    # The body is stored and sent as typed: the edit box holds the markers.
    mine = alice.locator("#message-list .msg--mine").last
    mine.hover()
    mine.get_by_role("button", name="Edit message").click()
    expect(alice.get_by_label("Edit message")).to_have_value(EVERY_CONSTRUCT)
    alice.keyboard.press("Escape")
    alice.mouse.move(5, 5)
    screenshot(alice, "formatting")


HOSTILE = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(2)</script>",
    "javascript:alert(3)",
    "[click](javascript:alert(4))",
    "[click](https://ok.example/x\" onmouseover=\"alert(5))",
    "**<b onclick=alert(6)>x</b>** `<i>code</i>` > <u>q</u>",
    "```\n</code></pre><img src=y onerror=alert(7)>\n```",
    "[https://bank.example](https://evil.example)",
    "*a **b ~~c _d `e` d_ c~~ b** a*",
]


def test_hostile_bodies_render_as_text_with_nothing_injected(people, clients):
    reader_name = people.account("reader")
    page = people.sign_in(reader_name)
    create_room(page, unique("hostile"))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    mallory = clients(people.account("mallory"))
    slug = slug_of(page)
    assert mallory.join(slug)["ok"]
    markers = ("*_" * 2000)
    nested = "".join(("**" if i % 2 else "*") + "x " for i in range(40)) + "y" + \
        "".join(" x" + ("**" if i % 2 else "*") for i in reversed(range(40)))
    bodies = HOSTILE + [markers, nested]
    for body in bodies:
        assert mallory.send(slug, body)["ok"]
    expect(texts(page)).to_have_count(len(bodies))

    allowed = {"strong", "em", "del", "code", "pre", "blockquote", "a"}
    found = texts(page).evaluate_all("els => els.flatMap(el => [...el.querySelectorAll('*')].map(e => e.localName))")
    assert set(found) <= allowed, found
    hrefs = page.locator("#message-list .msg-text a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert all(re.match(r"^https?://", href) for href in hrefs), hrefs
    # Every element but a link's address is text: no attribute came from a body.
    attributes = texts(page).evaluate_all("""els => els.flatMap(el => [...el.querySelectorAll('*')]
        .flatMap(e => e.getAttributeNames().filter(n => !(e.localName === 'a' && ['href', 'title', 'target', 'rel'].includes(n)))))""")
    assert attributes == []
    shown = texts(page)
    expect(shown.nth(0)).to_have_text(HOSTILE[0])
    expect(shown.nth(1)).to_have_text(HOSTILE[1])
    expect(shown.nth(2)).to_have_text(HOSTILE[2])
    expect(shown.nth(3)).to_have_text(HOSTILE[3])
    expect(shown.nth(3).locator("a")).to_have_count(0)
    expect(shown.nth(5).locator("strong")).to_have_text(["<b onclick=alert(6)>x</b>"])
    expect(shown.nth(5).locator("code")).to_have_text(["<i>code</i>"])
    expect(shown.nth(6).locator("pre")).to_have_text(["</code></pre><img src=y onerror=alert(7)>"])
    # A link whose text is another address stays text: it cannot pass for the other.
    expect(shown.nth(7)).to_have_text(HOSTILE[7])
    expect(shown.nth(7).locator("a[href^='https://evil']")).to_have_count(0)
    expect(shown.nth(8).locator("em > strong > del > em > code")).to_have_text(["e"])
    # 4,000 markers, and markers nested 40 deep: what pairs up is formatting
    # (of the allowed elements, checked above), no deeper than the bound.
    expect(shown.nth(len(HOSTILE))).to_have_text(re.compile(r"^[*_]{1000,4000}$"))
    for index in (len(HOSTILE), len(HOSTILE) + 1):
        depth = shown.nth(index).evaluate("""el => {
            const deepest = (node) => Math.max(0, ...[...node.children].map((c) => 1 + deepest(c)));
            return deepest(el);
        }""")
        assert 1 <= depth <= MAX_NESTING
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []


def test_the_renderers_rules(people):
    page = people.sign_in(people.account("rules"))
    cases = {
        # Unbalanced markers stay literal.
        "**half": "**half",
        "a *b": "a *b",
        "`tick": "`tick",
        "~single~": "~single~",
        "2 * 3 * 4": "2 * 3 * 4",
        "```\nnever closed": "```\nnever closed",
        "** not bold **": "** not bold **",
        # Inside code nothing else is parsed.
        "`**x** _y_ https://a.example`": "<code>**x** _y_ https://a.example</code>",
        "``a ` b``": "<code>a ` b</code>",
        "```py\n> not a quote\n*x*\n```": '<pre><code data-language="py">&gt; not a quote\n*x*</code></pre>',
        "```one line```": "<pre><code>one line</code></pre>",
        # Underscores inside words and addresses are not markers.
        "snake_case_name": "snake_case_name",
        "https://x.example/a_b_c": f'<a href="https://x.example/a_b_c" {LINK}>https://x.example/a_b_c</a>',
        "https://x.example/*star*/": f'<a href="https://x.example/*star*/" {LINK}>https://x.example/*star*/</a>',
        "_see https://x.example/a_b_": f'<em>see <a href="https://x.example/a_b" {LINK}>https://x.example/a_b</a></em>',
        "**https://x.example**": f'<strong><a href="https://x.example/" {LINK}>https://x.example</a></strong>',
        # Nesting and the usual forms.
        "***both***": "<strong><em>both</em></strong>",
        "**bold _and italic_**": "<strong>bold <em>and italic</em></strong>",
        "a*b*c": "a<em>b</em>c",
        "~~gone~~": "<del>gone</del>",
        "> quoted\nnot": "<blockquote>quoted</blockquote>not",
        ">no space": "&gt;no space",
        "x\n\n> q\n\ny": "x<blockquote>q</blockquote>y",
        "[t](https://a.example/p)": f'<a href="https://a.example/p" title="https://a.example/p" {LINK}>t</a>',
        "[t](javascript:alert(1))": "[t](javascript:alert(1))",
        "[t](data:text/html,x)": "[t](data:text/html,x)",
        "<b>x</b>": "&lt;b&gt;x&lt;/b&gt;",
    }
    got = {body: render(page, body) for body in cases}
    assert got == cases
    # Plain text for notifications and quotes: the same body without markers.
    assert plain(page, "**b** _i_ ~~s~~ `c` [t](https://a.example)\n> q\n```\nk\n```") == "b i s c t\nq\nk"
    assert plain(page, "**half and a_b") == "**half and a_b"


def test_mentions_are_marked_inside_formatting_but_not_inside_code(people):
    page = people.sign_in(people.account("mentions"))
    html = page.evaluate("""async () => {
        const { mentionedBody } = await import("/static/js/chat/mentions.js");
        const members = new Map([[7, { id: 7, username: "bob_smith" }]]);
        const message = { body: "**hi @bob_smith** _and @bob_smith_ `@bob_smith`", mentions: [7], user: { id: 1 } };
        const box = document.createElement("div");
        box.append(mentionedBody(message, members, 7));
        return box.innerHTML;
    }""")
    me = '<span class="mention mention--me">@bob_smith</span>'
    assert html == f"<strong>hi {me}</strong> <em>and {me}</em> <code>@bob_smith</code>"


def test_a_4000_character_body_of_markers_renders_without_hanging(people):
    page = people.sign_in(people.account("markers"))
    # Bodies built to make a backtracking parser hang; each must come back
    # (Playwright's deadline is the bound) with every character kept.
    sizes = page.evaluate("""async () => {
        const { rendered, plainText } = await import("/static/js/lib/markdown.js");
        const bodies = ["*_".repeat(2000), "*a ".repeat(1333), "_a ".repeat(1333), "**a ".repeat(1000),
                        "` ``".repeat(1000), "[".repeat(4000), "[a](".repeat(1000), "https://".repeat(500),
                        "> ".repeat(2000), "```\\n".repeat(1000), "~~a ".repeat(1000)];
        return bodies.map((body) => {
            const box = document.createElement("div");
            box.append(rendered(body));
            return [body.replace(/\\s+/g, "").length, box.textContent.replace(/\\s+/g, "").length,
                    plainText(body).length > 0];
        });
    }""")
    for body_length, shown_length, has_text in sizes:
        assert has_text and shown_length <= body_length


def test_quotes_and_notifications_show_the_text_without_markers(people, server, clients):
    alice_name, bob_name = people.account("alice"), people.account("bob")
    alice = notifying_page(people, server, alice_name)
    create_room(alice, unique("plain"))
    slug = slug_of(alice)
    bob = clients(bob_name)
    assert bob.join(slug)["ok"]

    # A notification's body is text: the markers are left out.
    hide(alice)
    bob.send(slug, f"**@{alice_name}** please _check_ `the build`")
    alice.wait_for_function("window.__notifications.length === 1")
    assert notifications(alice)[0]["body"] == f"@{alice_name} please check the build"
    alice.evaluate("window.__hidden = false")

    # Replying: the composer's bar and the reply's quote show the original as text.
    original = alice.locator("#message-list .msg").last
    original.hover()
    original.get_by_role("button", name="Reply to this message").click()
    expect(alice.locator("#composer-reply-text")).to_have_text(
        f"Replying to {bob_name}@{alice_name} please check the build")
    alice.keyboard.type("on it")
    alice.keyboard.press("Enter")
    quote = alice.locator("#message-list .msg:not(.msg--pending) .msg-quote-text").last
    expect(quote).to_have_text(f"@{alice_name} please check the build")

    # A quote of a message the page does not hold is the server's excerpt: shown without markers too.
    first = bob.send(slug, "~~old~~ **news**")["message"]
    for n in range(55):
        assert bob.send(slug, f"filler {n}")["ok"]
    reply = bob.call("message:send", {"room": slug, "body": "about that", "client_id": str(uuid.uuid4()),
                                      "reply_to": first["id"]})
    assert reply["ok"] and reply["message"]["reply_to"]["excerpt"] == "~~old~~ **news**"
    alice.reload()
    wait_live(alice)
    expect(texts(alice).last).to_have_text("about that")
    expect(alice.locator("#message-list .msg-quote-text").last).to_have_text("old news")


def test_the_composer_shows_the_syntax_on_a_desktop_not_on_a_phone(people):
    name = people.account("hint")
    page = people.sign_in(name)
    create_room(page, unique("hint"))
    hint = page.locator("#composer-format")
    expect(hint).to_be_visible()
    expect(hint).to_have_text("Formatting: **bold** _italic_ ~~strike~~ `code` ```block``` > quote")
    expect(page.locator("#composer-input")).to_have_accessible_description(re.compile(r"Formatting: \*\*bold\*\*"))
    phone = people.sign_in(name, viewport={"width": 390, "height": 844})
    expect(phone.locator("#composer-format")).to_be_hidden()


def test_a_long_code_line_scrolls_inside_its_block_on_a_phone(people):
    page = people.sign_in(people.account("phone"), viewport={"width": 390, "height": 844})
    page.get_by_role("button", name="Show rooms").click()
    create_room(page, unique("code"))
    long_line = "SELECT " + ", ".join(f"column_{n}" for n in range(40)) + " FROM t;"
    send(page, f"try this:\n```sql\n{long_line}\n```\nand `a_very_long_inline_code_span_{'x' * 60}`")
    block = texts(page).last.locator("pre")
    expect(block).to_have_text(long_line)
    assert block.evaluate("el => el.scrollWidth > el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "formatting-phone")
