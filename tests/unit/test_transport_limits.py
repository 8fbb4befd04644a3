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


# -- the library internals app/sockets/transport.py relies on ----------------------
# Each test names what would break if an upgrade moved it.

def test_pywsgi_still_discards_an_unread_body_after_the_response():
    # Why the handler reads the body itself, under a deadline, before the
    # application runs: pywsgi reads out any unread body after answering.
    import inspect

    from gevent import pywsgi

    assert "_discard" in inspect.getsource(pywsgi.WSGIHandler.handle_one_response)
    for name in ("read_requestline", "read_request", "handle_one_response", "handle_error",
                 "start_response", "write", "log_request"):
        assert callable(getattr(pywsgi.WSGIHandler, name)), name
    body = pywsgi.Input(__import__("io").BytesIO(b"4hello"), 6)
    assert (body.chunked_input, body.content_length, body.read(6)) == (False, 6, b"4hello")


def test_gunicorn_builds_its_server_from_the_workers_wsgi_handler():
    import inspect

    from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
    from geventwebsocket.handler import WebSocketHandler

    assert GeventWebSocketWorker.wsgi_handler is WebSocketHandler
    assert "handler_class=self.wsgi_handler" in inspect.getsource(GeventWebSocketWorker.run)


def test_engineio_internals_the_guards_use():
    import inspect

    import engineio

    assert callable(engineio.Server._cors_allowed_origins)
    source = inspect.getsource(engineio.Server.handle_request)
    assert "_cors_allowed_origins(environ)" in source
    # Sockets take their queue from create_queue (the outbox bound).
    assert "create_queue()" in inspect.getsource(
        __import__("engineio.base_socket", fromlist=["x"]).BaseSocket.__init__)
    assert "def _websocket_handler(self, ws)" in inspect.getsource(
        __import__("engineio.socket", fromlist=["x"]).Socket)


def test_socketio_registers_its_engineio_handlers_by_name(app):
    from app.extensions import socketio

    eio = socketio.server.eio
    assert set(eio.handlers) >= {"connect", "message", "disconnect"}
    # guard() has wrapped them: the originals are python-socketio's methods.
    assert eio.handlers["message"].__name__ == "message"


def test_the_outbox_drops_a_slow_consumer_past_its_bound():
    from engineio import packet as eio_packet

    from app.sockets.transport import SocketLimits, _outbox_class

    overflowed = []
    outbox = _outbox_class(SocketLimits(outbox_packets=3, outbox_bytes=100,
                                        anonymous_per_address=0, anonymous_timeout=1),
                           overflowed.append)()
    for _ in range(3):
        outbox.put(eio_packet.Packet(eio_packet.MESSAGE, data="x" * 10))
    assert outbox.queued_bytes == 30 and not overflowed
    outbox.put(eio_packet.Packet(eio_packet.MESSAGE, data="x"))
    assert overflowed == [outbox] and outbox.qsize() == 3
    outbox.put(None)  # the end-of-stream marker still goes in
    assert outbox.qsize() == 4
    outbox.get()
    assert outbox.queued_bytes == 20


def test_client_input_errors_are_told_from_bugs():
    import json

    from socketio import packet as sio_packet

    from app.sockets.transport import is_client_input_error

    try:
        sio_packet.Packet(encoded_packet="2/public,[")
    except ValueError as exc:
        assert is_client_input_error(exc)
    try:
        json.loads("{")
    except ValueError as exc:
        assert is_client_input_error(exc)
    try:
        {}["a"]
    except KeyError as exc:
        assert not is_client_input_error(exc)
