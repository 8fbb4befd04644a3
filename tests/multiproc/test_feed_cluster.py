"""The SSE feed across processes: a change committed through one gunicorn reaches
a feed held by another, through the hubs' Redis relay."""
from __future__ import annotations

import json

import pytest

from tests.e2e.test_chat import logout
from tests.support.client import ChatClient
from tests.support.server import sign_up
from tests.support.sse import Feed

from .conftest import unique

pytestmark = pytest.mark.multiproc


def test_a_feed_on_one_process_streams_changes_made_through_the_other(two_servers):
    a, b = two_servers
    name = unique("alice")
    alice = ChatClient(a.url, name, http=sign_up(a.url, name)).connect()
    room = unique("room")
    assert alice.call("room:create", {"name": room})["ok"]
    reader = unique("reader")
    reader_http = sign_up(b.url, reader)
    feed = Feed(f"{b.url}/api/v1/rooms/{room}/events", reader_http).open()
    try:
        sent = alice.send(room, "through process a")["message"]
        assert alice.call("message:edit", {"id": sent["id"], "body": "edited on a"})["ok"]
        events = feed.wait_for_count(2)
        assert [e.event for e in events] == ["message", "message:updated"]
        assert json.loads(events[0].data)["body"] == "through process a"

        # Signing out through process a ends the feed held by process b.
        assert logout(reader_http, a.url).status_code in (302, 303)
        assert feed.ended.wait(20), "the feed on the other process outlived its session"
    finally:
        feed.close()
        alice.close()


def test_the_feed_streams_through_the_shipped_nginx_config_unbuffered(tmp_path, two_servers):
    from tests.support.requirements import require_program

    from .test_deploy import run_nginx

    nginx = require_program("nginx", "nginx", "/usr/sbin/nginx")
    process, url, _ = run_nginx(tmp_path, nginx, two_servers, "ip_hash")
    try:
        name = unique("alice")
        http = sign_up(url, name)
        alice = ChatClient(url, name, http=http).connect()
        room = unique("room")
        assert alice.call("room:create", {"name": room})["ok"]
        feed = Feed(f"{url}/api/v1/rooms/{room}/events", http).open()
        try:
            assert feed.status == 200
            sent = alice.send(room, "through nginx")["message"]
            # Well before the first heartbeat (15 s): nothing holds the event back.
            [event] = feed.wait_for_count(1, timeout=10)
            assert json.loads(event.data)["id"] == sent["id"]
        finally:
            feed.close()
            alice.close()
    finally:
        process.terminate(), process.wait(10)
