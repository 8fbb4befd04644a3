"""Control messages between server processes: declared once, carried by class."""
from __future__ import annotations

import dataclasses

import pytest

from app import bus, control


def test_every_declared_message_survives_the_trip_through_the_bus_encoding():
    samples = [control.CloseConnections(reason="banned", user_id=3, kicked=True),
               control.CloseConnections(reason="signed out", session="tok"),
               control.ForgetRoom(user_id=4, room="ops"),
               control.RoomDeleted(room="ops"),
               control.UserRenamed(user_id=4, display_name="Ops Person"),
               control.UserRenamed(user_id=4, display_name=None),
               control.RoomArchived(room="ops", archived=True),
               control.CloseConsoles(user_id=5)]
    assert {type(m) for m in samples} == set(control.MESSAGES.values())
    for message in samples:
        assert control.decode(control.encode(message)) == message


def test_a_message_type_this_version_does_not_know_is_dropped():
    assert control.decode({"type": "SelfDestruct", "fields": {}}) is None


def test_fields_added_by_a_newer_process_are_ignored():
    data = control.encode(control.CloseConsoles(user_id=5))
    data["fields"]["added_later"] = True
    assert control.decode(data) == control.CloseConsoles(user_id=5)


def test_only_declared_messages_can_have_a_handler():
    @dataclasses.dataclass
    class Undeclared:
        pass

    with pytest.raises(TypeError):
        bus.handler(Undeclared)


def test_every_declared_message_has_a_handler_in_this_process():
    import app.services.connections  # noqa: F401 - declares the handlers

    assert set(bus._handlers) == set(control.MESSAGES.values())
