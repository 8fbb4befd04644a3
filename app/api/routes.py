"""The REST API v1 routes: each parses, calls a service, and answers.

Answers are the socket acks' shapes without ``ok`` (docs/api.md). Rules
(membership, body length, the send rate) are the services', so both doors
apply them alike; a send spends the same ``message`` rate-limit bucket as
``message:send``.
"""
from __future__ import annotations

import uuid

from flask import request

from .. import metrics, schemas
from ..services import mentions, messages, reactions, rooms, search, tokens
from ..services.connections import live
from . import route

IDEMPOTENCY_KEY = "Idempotency-Key"


# -- tokens ------------------------------------------------------------------------

@route("POST", "/api/v1/auth/token", tag="auth", auth=False, body=schemas.TokenRequest,
       reply=schemas.TokenPair,
       summary="Sign in with a username and password, or a bot key: a new access and "
               "refresh token (a new token family).")
def token(body: schemas.TokenRequest):
    address = request.remote_addr or ""
    if body.bot_key is not None:
        return tokens.grant_bot_key(body.bot_key, address)
    return tokens.grant_password(body.username, body.password, address)


@route("POST", "/api/v1/auth/refresh", tag="auth", auth=False, body=schemas.RefreshRequest,
       reply=schemas.TokenPair,
       summary="Trade a refresh token (single use) for a new pair. A refresh token used "
               "twice revokes every token of its sign-in.")
def refresh(body: schemas.RefreshRequest):
    return tokens.refresh(body.refresh_token, request.remote_addr or "")


@route("GET", "/.well-known/jwks.json", tag="auth", auth=False, reply=schemas.Jwks,
       summary="The public keys (JWK Set) that verify Parley's access tokens (EdDSA).")
def jwks():
    return tokens.jwks()


@route("GET", "/api/v1/me", reply=schemas.UserShape, summary="Who the token speaks for.")
def me(actor):
    return actor.to_public()


# -- rooms ------------------------------------------------------------------------------

@route("GET", "/api/v1/rooms", reply=schemas.RoomsReply,
       summary="Public rooms and the private rooms the caller belongs to (rooms:list).")
def list_rooms(actor):
    return {"rooms": rooms.list_rooms(actor)}


@route("POST", "/api/v1/rooms", body=schemas.RoomCreate, reply=schemas.RoomReply, status=201,
       summary="Create a room; the caller owns it and is a member (room:create).")
def create_room(actor, body: schemas.RoomCreate):
    return {"room": rooms.create_room(actor, body.name, body.topic, body.private)}


def _room_as_seen(actor, slug: str) -> dict:
    room, member = rooms.visible_room(actor, slug)
    if member:
        return rooms.public_room(room, actor.id)
    return rooms.room_to_public(room, rooms.member_count(room.id))


@route("GET", "/api/v1/rooms/<slug>", reply=schemas.RoomReply,
       summary="One room (with unread where the caller is a member).")
def get_room(actor, slug: str):
    return {"room": _room_as_seen(actor, slug)}


@route("POST", "/api/v1/rooms/<slug>/join", reply=schemas.RoomReply,
       summary="Become a member of a public room (stored membership, as room:join; "
               "no live stream over HTTP).")
def join_room(actor, slug: str):
    rooms.join(actor, slug)
    return {"room": _room_as_seen(actor, slug)}


@route("POST", "/api/v1/rooms/<slug>/leave", status=204,
       summary="End the caller's membership (room:leave).")
def leave_room(actor, slug: str):
    rooms.leave_room(actor, slug)


@route("GET", "/api/v1/rooms/<slug>/members", reply=schemas.MembersReply,
       summary="The room's members, and which of them are online in it.")
def members(actor, slug: str):
    return rooms.members_of(actor, slug, live.presence.online(slug))


@route("GET", "/api/v1/rooms/<slug>/messages", query=schemas.HistoryQuery,
       reply=schemas.MessagesReply,
       summary="A page of history, ascending by id, paged exactly as message:history "
               "(before=, after= or around=, limit= 1 to 500, default 100).")
def history(actor, slug: str, query: schemas.HistoryQuery):
    if query.around is not None:
        return messages.history_around(actor, slug, query.around, limit=query.limit)
    page, has_more = messages.history(actor, slug, before=query.before, after=query.after,
                                      limit=query.limit)
    return {"messages": page, "has_more": has_more}


@route("POST", "/api/v1/rooms/<slug>/messages", body=schemas.MessageCreate,
       reply=schemas.MessageReply, status=201,
       headers={IDEMPOTENCY_KEY: "the message's client_id (1 to 64 characters): sending "
                                 "again with the same key stores nothing new and answers "
                                 "the same message. Without it the server picks one."},
       summary="Send a message (message:send), optionally replying to another message of "
               "the room (reply_to): stored and broadcast to the room's sockets; spends the "
               "same rate limit as the socket.")
def send_message(actor, slug: str, body: schemas.MessageCreate):
    client_id = request.headers.get(IDEMPOTENCY_KEY) or uuid.uuid4().hex
    payload = schemas.parse(schemas.MessageSend,
                            {"room": slug, "body": body.body, "client_id": client_id,
                             "reply_to": body.reply_to})
    room = rooms.member_room(actor, payload.room)
    with metrics.send_timer():
        message = messages.send(actor, room, payload.body, payload.client_id,
                                payload.reply_to)
    return {"message": message}


@route("POST", "/api/v1/rooms/<slug>/read", body=schemas.ReadMarker, reply=schemas.UnreadReply,
       summary="Move the caller's read marker (room:read); answers the unread count and unread mentions left.")
def mark_read(actor, slug: str, body: schemas.ReadMarker):
    return rooms.mark_read(actor, slug, body.last_read_id)


@route("PUT", "/api/v1/rooms/<slug>/notify", body=schemas.NotifyChoice,
       reply=schemas.NotifyReply,
       summary="The caller's notification level for a room they belong to (room:notify): "
               "all, mentions or none.")
def notify_level(actor, slug: str, body: schemas.NotifyChoice):
    return mentions.set_level(actor, slug, body.level)


# -- messages -----------------------------------------------------------------------

def _message_id(message_id: int) -> int:
    return schemas.parse(schemas.MessageRef, {"id": message_id}).id


@route("PATCH", "/api/v1/messages/<int:message_id>", body=schemas.MessageBody,
       reply=schemas.MessageReply, summary="Edit a message (author only; message:edit).")
def edit_message(actor, message_id: int, body: schemas.MessageBody):
    return {"message": messages.edit(actor, _message_id(message_id), body.body)}


@route("DELETE", "/api/v1/messages/<int:message_id>", status=204,
       summary="Delete a message (author, room owner or admin; message:delete).")
def delete_message(actor, message_id: int):
    messages.delete(actor, _message_id(message_id))


@route("GET", "/api/v1/search", query=schemas.SearchQuery, reply=schemas.SearchReply,
       summary="Search the messages the caller may read (message:search): q= the words, "
               "room=, author=, after=, before=, order=relevance|newest, cursor=, limit=.")
def search_messages(actor, query: schemas.SearchQuery):
    return search.search(actor, query.q, room=query.room, author=query.author,
                         before=query.before, after=query.after, order=query.order,
                         cursor=query.cursor, limit=query.limit)
@route("POST", "/api/v1/messages/<int:message_id>/reactions", body=schemas.ReactionBody,
       status=204, summary="React to a message with an emoji (reaction:add); adding one "
                           "already given changes nothing.")
def add_reaction(actor, message_id: int, body: schemas.ReactionBody):
    reactions.add(actor, _message_id(message_id), body.emoji)


@route("DELETE", "/api/v1/messages/<int:message_id>/reactions/<emoji>", status=204,
       summary="Take back the caller's reaction (reaction:remove); the emoji percent-encoded "
               "in the path. Removing one not given changes nothing.")
def remove_reaction(actor, message_id: int, emoji: str):
    reactions.remove(actor, _message_id(message_id),
                     schemas.parse(schemas.ReactionBody, {"emoji": emoji}).emoji)


# -- direct messages -------------------------------------------------------------------

@route("POST", "/api/v1/dms", body=schemas.DmOpen, reply=schemas.RoomReply,
       summary="The private two-person room with a user, created once (dm:open).")
def open_dm(actor, body: schemas.DmOpen):
    return {"room": rooms.open_dm(actor, body.user)}
