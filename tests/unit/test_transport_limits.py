"""Engine.IO settings the app makes at start-up."""
from __future__ import annotations

import engineio.payload
import pytest
from engineio import packet


def batch(count: int) -> str:
    """A long-polling POST body: ``count`` message packets, as a client queues them."""
    return "\x1e".join(packet.Packet(packet.MESSAGE, data=f'42/public,{i}["typing",{{}}]')
                       .encode() for i in range(count))


def test_engineio_alone_refuses_a_batch_of_more_than_16_packets(monkeypatch):
    # The library default the app raises: without it a quick client is dropped.
    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 16)
    with pytest.raises(ValueError, match="Too many packets"):
        engineio.payload.Payload(encoded_payload=batch(17))


def test_the_app_accepts_a_long_polling_batch_of_50_packets(tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 16)
    monkeypatch.setenv("PARLEY_ENV", "testing")
    create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    packets = engineio.payload.Payload(encoded_payload=batch(50)).packets
    assert len(packets) == 50
    assert [p.data for p in packets[:2]] == ['42/public,0["typing",{}]',
                                             '42/public,1["typing",{}]']


def test_a_batch_is_still_bounded_in_bytes(app):
    # The packet count may be generous because the size is not.
    assert app.config["MAX_PAYLOAD_BYTES"] == 65536
    from app.extensions import socketio

    assert socketio.server.eio.max_http_buffer_size == 65536
