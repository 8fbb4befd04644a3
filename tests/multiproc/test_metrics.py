"""Prometheus metrics with several gunicorn workers (multiprocess mode)."""
from __future__ import annotations

import re

import pytest
import requests
import socketio

from tests.multiproc.conftest import running, start_server
from tests.support.server import TEST_PASSWORD, flask_cli, wait_until

pytestmark = pytest.mark.multiproc

TOKEN = "multiproc-scrape-token"
CONNECTIONS = 6
SENDS = 8


def scrape(server) -> str:
    return requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).text


def sample(text: str, pattern: str) -> float:
    return sum(float(value) for value in re.findall(pattern + r" ([0-9.e+]+)$", text, re.M))


def test_every_workers_figures_add_up_in_any_workers_scrape(cluster_env, tmp_path):
    flask_cli(cluster_env, "create-user", "metrics-user", "--password-stdin",
              stdin=TEST_PASSWORD + "\n")
    server = start_server(cluster_env, "server-metrics", "--workers", "2",
                          WEBSOCKET_ONLY="true", METRICS_ENABLED="true", METRICS_TOKEN=TOKEN,
                          PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    clients = []
    with running(server):
        try:
            def pair():
                return requests.post(server.url + "/api/v1/auth/token", timeout=10, json={
                    "username": "metrics-user", "password": TEST_PASSWORD}).json()

            tokens = pair()
            room = requests.post(server.url + "/api/v1/rooms", json={"name": "Metered"},
                                 headers={"Authorization": f"Bearer {tokens['access_token']}"},
                                 timeout=10).json()["room"]["slug"]
            for i in range(SENDS):
                # New connections each time: the kernel spreads them over both workers.
                with requests.Session() as http:
                    assert http.post(f"{server.url}/api/v1/rooms/{room}/messages", timeout=10,
                                     json={"body": f"m{i}"}, headers={
                                         "Authorization": f"Bearer {tokens['access_token']}",
                                         "Connection": "close"}).status_code == 201
            for _ in range(CONNECTIONS):
                client = socketio.Client(reconnection=False)
                client.connect(server.url, namespaces=["/public"], transports=["websocket"],
                               auth={"token": tokens["access_token"]}, wait_timeout=10)
                clients.append(client)
            public_ws = r'parley_connections\{namespace="/public",transport="websocket"\}'
            wait_until(lambda: sample(scrape(server), public_ws) == CONNECTIONS, 20,
                       message="the workers' connection counts never added up")
            text = scrape(server)
            assert sample(text, r"parley_messages_stored_total") == SENDS
            assert sample(text, r"parley_redis_up") == 1
        finally:
            for client in clients:
                client.disconnect()
