"""A stopping process turns every request away, so that no client lands on it again."""
from __future__ import annotations

from app.sockets import shutdown


def test_while_stopping_every_request_gets_503_and_connection_close(app, client, monkeypatch):
    # (/healthz answers 503 here anyway: the fixture's schema has no revision.)
    assert client.get("/login").status_code == 200
    monkeypatch.setattr(shutdown.state, "stopping", True)
    for path in ("/healthz", "/login", "/socket.io/?EIO=4&transport=polling"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["Connection"] == "close"
        assert response.headers["Retry-After"] == "1"


def test_requests_in_flight_are_counted_and_released(app, client):
    assert shutdown.state.in_flight == 0
    client.get("/healthz")
    assert shutdown.state.in_flight == 0
