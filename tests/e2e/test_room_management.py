"""Room management and display names over a real gunicorn, with python-socketio clients:
what each client receives when an owner removes a member or deletes a room, and when
someone changes their display name."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.server import sign_up

from .conftest import Peer, unique


def newcomer(server, prefix: str) -> tuple[str, requests.Session]:
    name = unique(prefix)[:32]
    return name, sign_up(server.url, name)


def connect(server, name: str, http) -> Peer:
    return Peer(server.url, name, http=http).connect()


@pytest.fixture
def trio(server):
    """An owner, a member and a bystander (all new accounts), each connected once; the
    owner's private room, which the member and the bystander joined."""
    made = []
    for prefix in ("owner", "member", "other"):
        name, http = newcomer(server, prefix)
        made.append(connect(server, name, http))
    owner, member, other = made
    slug = owner.create_room(private=True)
    owner.ok("room:join", {"room": slug})
    for peer in (member, other):
        owner.ok("room:invite", {"room": slug, "user": peer.username})
        peer.wait_for("room:added", lambda p: p["room"]["slug"] == slug)
        peer.ok("room:join", {"room": slug})
    owner.send(slug, "before the removal")
    for peer in made:
        peer.wait_for("message", lambda m: m["body"] == "before the removal")
    yield owner, member, other, slug
    for peer in made:
        peer.close()


def user_of(peer: Peer, ack_members: list[dict]) -> dict:
    return next(u for u in ack_members if u["username"] == peer.username)


def test_removing_a_member_tells_them_and_the_room_and_they_can_no_longer_read_it(server, trio):
    owner, member, other, slug = trio
    members = owner.ok("room:join", {"room": slug})["members"]
    owner_user, member_user = user_of(owner, members), user_of(member, members)
    assert owner.call("room:remove", {"room": slug, "user": member.username}) == {"ok": True}

    removed = member.wait_for("room:removed")
    assert removed == {"room": slug, "by": owner_user}
    seen = other.wait_for("member:removed", lambda p: p["user"]["id"] == member_user["id"])
    assert {k: v for k, v in seen.items() if k != "cursor"} == {
        "room": slug, "user": member_user, "by": owner_user}
    # The removed member's connection left the room's channel before the change went out.
    assert member.got("member:removed") == []

    owner.send(slug, "after the removal")
    other.wait_for("message", lambda m: m["body"] == "after the removal")
    assert [m["body"] for m in member.got("message")] == ["before the removal"]
    for event, payload in (("room:join", {"room": slug}),
                           ("message:history", {"room": slug}),
                           ("message:send", {"room": slug, "body": "x", "client_id": "x1"})):
        assert member.call(event, payload)["error"]["code"] == "not_found", event
    assert slug not in {r["slug"] for r in member.ok("rooms:list")["rooms"]}
    # The same answer as for a room that never existed.
    assert member.call("room:join", {"room": slug}) == member.call(
        "room:join", {"room": unique("nothing")})


def test_a_removed_members_new_connection_cannot_rejoin_the_private_room(server, trio):
    owner, member, other, slug = trio
    owner.ok("room:remove", {"room": slug, "user": member.username})
    member.wait_for("room:removed")
    again = Peer(server.url, member.username, http=member.http).connect()
    try:
        assert again.call("room:join", {"room": slug})["error"]["code"] == "not_found"
    finally:
        again.close()


def test_only_the_owner_may_remove_and_a_stranger_cannot_tell_the_room_exists(server, trio):
    owner, member, other, slug = trio
    assert other.call("room:remove", {"room": slug, "user": member.username})["error"][
        "code"] == "forbidden"
    name, http = newcomer(server, "stranger")
    stranger = connect(server, name, http)
    try:
        hidden = stranger.call("room:remove", {"room": slug, "user": member.username})
        missing = stranger.call("room:remove", {"room": unique("nothing"), "user": member.username})
        assert hidden == missing and hidden["error"]["code"] == "not_found"
    finally:
        stranger.close()
    assert owner.call("room:remove", {"room": slug, "user": owner.username})["error"][
        "code"] == "invalid"


def test_deleting_a_room_tells_every_member_and_nothing_of_it_remains(server, trio):
    owner, member, other, slug = trio
    owner_user = user_of(owner, owner.ok("room:join", {"room": slug})["members"])
    assert owner.call("room:delete", {"room": slug}) == {"ok": True}
    for peer in (owner, member, other):
        assert peer.wait_for("room:deleted") == {"room": slug, "by": owner_user}
        assert peer.call("room:join", {"room": slug})["error"]["code"] == "not_found"
        assert slug not in {r["slug"] for r in peer.ok("rooms:list")["rooms"]}


def test_a_deleted_rooms_sse_feed_says_so_and_ends(server, trio):
    owner, member, other, slug = trio
    with member.http.get(f"{server.url}/api/v1/rooms/{slug}/events", stream=True,
                         timeout=10) as feed:
        assert feed.status_code == 200
        lines = feed.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:")
        owner.ok("room:delete", {"room": slug})
        rest = list(lines)  # the stream ends by itself
    assert "event: room:deleted" in rest
    assert f'data: {{"room": "{slug}"}}' in rest


def set_display_name(server, http: requests.Session, name: str) -> requests.Response:
    page = http.get(server.url + "/account", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return http.post(server.url + "/account/display-name", timeout=10,
                     data={"display_name": name, "csrf_token": token})


def test_a_display_name_change_reaches_everyone_in_a_shared_room_and_its_next_messages(
        server, trio):
    owner, member, other, slug = trio
    assert set_display_name(server, owner.http, "Olive Owner").status_code == 200
    for peer in (owner, member, other):
        pushed = peer.wait_for("user:updated")
        assert pushed["user"]["username"] == owner.username
        assert pushed["user"]["display_name"] == "Olive Owner"
    message = owner.send(slug, "named now")
    assert message["user"]["display_name"] == "Olive Owner"
    live = member.wait_for("message", lambda m: m["body"] == "named now")
    assert live["user"] == message["user"]
    # One push per connection, though the owner shares the room with each.
    assert len(member.got("user:updated")) == 1


def test_a_display_name_of_invisible_characters_is_refused(server, trio):
    owner, member, other, slug = trio
    response = set_display_name(server, owner.http, "\u200b\u200b")
    assert response.status_code == 400
    assert "at least one visible character" in response.text
    # A valid change afterwards is the first (and only) push the member gets.
    assert set_display_name(server, owner.http, "Olive").status_code == 200
    member.wait_for("user:updated")
    assert [p["user"]["display_name"] for p in member.got("user:updated")] == ["Olive"]


def test_a_removed_members_sse_feed_of_the_private_room_ends_with_their_removal(server, trio):
    owner, member, other, slug = trio
    with member.http.get(f"{server.url}/api/v1/rooms/{slug}/events", stream=True,
                         timeout=10) as feed:
        assert feed.status_code == 200
        lines = feed.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:")
        owner.ok("room:remove", {"room": slug, "user": member.username})
        rest = list(lines)  # the stream ends by itself
    events = [line for line in rest if line.startswith("event:")]
    assert events == ["event: member:removed"]
    [data] = [line for line in rest if line.startswith("data:")]
    assert f'"by":{{"id":' in data and f'"username":"{member.username}"' in data
