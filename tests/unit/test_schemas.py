"""Payload schemas: every way a payload can be malformed answers ``invalid``
naming the field, with a message a person can act on."""
from __future__ import annotations

import pytest

from app import schemas
from app.errors import Invalid


def refusal(schema, payload) -> dict:
    with pytest.raises(Invalid) as caught:
        schemas.parse(schema, payload)
    return caught.value.to_ack()["error"]


SEND = {"room": "general", "body": "hi", "client_id": "c1"}


@pytest.mark.parametrize("schema, payload, field, message", [
    # client_id: 1 to 64 characters
    (schemas.MessageSend, {**SEND, "client_id": ""}, "client_id",
     "client_id: String should have at least 1 character"),
    (schemas.MessageSend, {**SEND, "client_id": "c" * 65}, "client_id",
     "client_id: String should have at most 64 characters"),
    (schemas.MessageSend, {"room": "general", "body": "hi"}, "client_id",
     "client_id: Field required"),
    # room slugs and usernames
    (schemas.RoomRef, {"room": ""}, "room", "room: String should have at least 1 character"),
    (schemas.RoomRef, {"room": "r" * 81}, "room", "room: String should have at most 80 characters"),
    (schemas.RoomInvite, {"room": "general", "user": "u" * 33}, "user",
     "user: String should have at most 32 characters"),
    # wrong types: strict, "5" is not a number and 1 is not a string
    (schemas.MessageRef, {"id": "5"}, "id", "id: Input should be a valid integer"),
    (schemas.MessageRef, {"id": 5.0}, "id", "id: Input should be a valid integer"),
    (schemas.MessageRef, {"id": True}, "id", "id: Input should be a valid integer"),
    (schemas.MessageRef, {"id": 0}, "id", "id: Input should be greater than or equal to 1"),
    (schemas.MessageRef, {"id": 2**63}, "id",
     "id: Input should be less than or equal to 9223372036854775807"),
    (schemas.MessageSend, {**SEND, "body": 1}, "body", "body: Input should be a valid string"),
    (schemas.MessageSend, {**SEND, "body": None}, "body", "body: Input should be a valid string"),
    (schemas.RoomRef, {"room": 1}, "room", "room: Input should be a valid string"),
    (schemas.RoomRef, {"room": ["general"]}, "room", "room: Input should be a valid string"),
    (schemas.RoomCreate, {"name": "x", "private": "yes"}, "private",
     "private: Input should be a valid boolean"),
    (schemas.RoomCreate, {"name": "x", "private": 1}, "private",
     "private: Input should be a valid boolean"),
    (schemas.Typing, {"room": "general", "typing": "true"}, "typing",
     "typing: Input should be a valid boolean"),
    (schemas.RoomRead, {"room": "general", "last_read_id": -1}, "last_read_id",
     "last_read_id: Input should be greater than or equal to 0"),
    (schemas.RoomJoin, {"room": "general", "since": "10"}, "since",
     "since: Input should be a valid integer"),
    # text no database can store
    (schemas.MessageSend, {**SEND, "body": "a\x00b"}, "body",
     "body: must not contain NUL characters"),
    (schemas.MessageSend, {**SEND, "body": "a\ud800b"}, "body",
     "body: must not contain unpaired surrogates"),
    # (length-limited strings are refused while pydantic reads them)
    (schemas.MessageSend, {**SEND, "client_id": "c\udfff"}, "client_id",
     "client_id: Input should be a valid string, unable to parse raw data as a unicode string"),
    (schemas.RoomCreate, {"name": "\x00"}, "name", "name: must not contain NUL characters"),
    (schemas.DmOpen, {"user": "bo\x00b"}, "user", "user: must not contain NUL characters"),
    # history: one direction at a time, limit at least 1
    (schemas.MessageHistory, {"room": "general", "before": 5, "after": 1}, "payload",
     "payload: give 'before' or 'after', not both"),
    (schemas.MessageHistory, {"room": "general", "limit": 0}, "limit",
     "limit: Input should be greater than or equal to 1"),
    (schemas.MessageHistory, {"room": "general", "limit": "100"}, "limit",
     "limit: Input should be a valid integer"),
    (schemas.RoomJoin, {"room": "general", "limit": 0}, "limit",
     "limit: Input should be greater than or equal to 1"),
    # required fields
    (schemas.RoomCreate, {}, "name", "name: Field required"),
    (schemas.MessageEdit, {"id": 1}, "body", "body: Field required"),
])
def test_a_malformed_payload_answers_invalid_naming_the_field(schema, payload, field, message):
    assert refusal(schema, payload) == {"code": "invalid", "message": message, "field": field}


@pytest.mark.parametrize("payload", [[], ["general"], "general", 5, True, 1.5])
def test_a_payload_that_is_not_an_object_answers_invalid(payload):
    assert refusal(schemas.RoomRef, payload) == {
        "code": "invalid", "message": "the payload must be a JSON object", "field": "payload"}


def test_a_missing_payload_is_an_empty_object():
    assert schemas.parse(schemas.Empty, None) == schemas.Empty()
    assert refusal(schemas.RoomRef, None)["field"] == "room"


def test_fields_the_contract_does_not_name_are_ignored():
    assert schemas.parse(schemas.RoomRef, {"room": "general", "extra": 1}).room == "general"


def test_a_well_formed_payload_keeps_its_values_and_defaults():
    create = schemas.parse(schemas.RoomCreate, {"name": "General"})
    assert (create.name, create.topic, create.private) == ("General", "", False)
    history = schemas.parse(schemas.MessageHistory, {"room": "general", "after": 0,
                                                     "limit": 10_000})
    # Large limits are clamped by the service, not refused here.
    assert (history.before, history.after, history.limit) == (None, 0, 10_000)
    send = schemas.parse(schemas.MessageSend, {**SEND, "client_id": "c" * 64,
                                               "body": "emoji \U0001F600 ok"})
    assert send.client_id == "c" * 64 and send.body == "emoji \U0001F600 ok"
