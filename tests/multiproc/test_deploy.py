"""The two documented ways to run several processes, and emitting from outside."""
from __future__ import annotations

import importlib.util
import re
import subprocess

import pytest
import requests
import socketio

from tests.support.client import ChatClient
from tests.support.requirements import require_program
from tests.support.server import ROOT, child_pids, free_port, sign_up, wait_until

from .conftest import start_server, unique

pytestmark = pytest.mark.multiproc


def _cluster_module():
    spec = importlib.util.spec_from_file_location("parley_cluster", ROOT / "deploy" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nginx():
    """nginx's path; the proxy tests skip (fail under CI) without it."""
    return require_program("nginx", "nginx", "/usr/sbin/nginx")


@pytest.fixture(scope="module")
def backends(nginx, cluster_env):
    servers = [start_server(cluster_env, "nginx-a"), start_server(cluster_env, "nginx-b")]
    yield servers
    for server in servers:
        server.close()


def run_nginx(tmp_path, nginx, backends, balance: str):
    cluster = _cluster_module()
    port = free_port()
    conf = cluster.render_nginx_conf(tmp_path / "nginx", port,
                                     [f"127.0.0.1:{s.port}" for s in backends], balance)
    command = cluster.nginx_command(conf, nginx)
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _up(url), 10, message="nginx did not start")
    return process, url, conf.parent / "access.log"


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_a_polling_client_through_nginx_stays_on_one_backend(tmp_path, nginx, backends):
    process, url, access_log = run_nginx(tmp_path, nginx, backends, "ip_hash")
    try:
        username = unique("user")
        client = ChatClient(url, username, http=sign_up(url, username),
                            transports=("polling",)).connect()
        room = unique("room")
        assert client.call("room:create", {"name": room})["ok"]
        client.join(room)
        acks = [client.send(room, f"poll {i}") for i in range(15)]
        assert all(ack["ok"] for ack in acks)
        client.wait_for_bodies(room, [f"poll {i}" for i in range(15)])
        client.close()
        upstreams = set(re.findall(r'"[A-Z]+ /socket\.io/\S* HTTP/1\.1" \d+ upstream=(\S+)',
                                   access_log.read_text()))
        assert len(upstreams) == 1, upstreams
    finally:
        process.terminate(), process.wait(10)


def test_without_sticky_sessions_long_polling_breaks(tmp_path, nginx, backends):
    """Why the proxy must be sticky: round robin sends a session's requests to
    a process that does not know it."""
    process, url, _ = run_nginx(tmp_path, nginx, backends, "")
    try:
        username = unique("user")
        http = sign_up(url, username)
        client = ChatClient(url, username, http=http, transports=("polling",))
        client.sio.reconnection = False
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect()
    finally:
        process.terminate(), process.wait(10)


def test_websocket_upgrade_works_through_nginx(tmp_path, nginx, backends):
    process, url, _ = run_nginx(tmp_path, nginx, backends, "ip_hash")
    try:
        username = unique("user")
        client = ChatClient(url, username, http=sign_up(url, username)).connect()
        assert client.sio.transport() == "websocket"
        client.close()
    finally:
        process.terminate(), process.wait(10)


def test_nginx_refuses_a_body_over_the_engineio_limit(tmp_path, nginx, backends):
    """Request buffering is off, so nginx must refuse from the header: a body
    over MAX_PAYLOAD_BYTES never reaches a backend."""
    process, url, access_log = run_nginx(tmp_path, nginx, backends, "ip_hash")
    try:
        target = url + "/socket.io/?EIO=4&transport=polling&sid=nope"
        over = requests.post(target, data=b"4" * (65536 + 1), timeout=10,
                             headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert over.status_code == 413
        at_limit = requests.post(target, data=b"4" * 65536, timeout=10,
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})
        assert at_limit.status_code == 400  # reached the backend: an unknown session
        lines = access_log.read_text().splitlines()
        refused = [line for line in lines if '" 413 ' in line]
        assert refused and all("upstream=-" in line for line in refused), lines
    finally:
        process.terminate(), process.wait(10)


@pytest.fixture(scope="module")
def two_workers(cluster_env):
    server = start_server(cluster_env, "two-workers", "--workers", "2", WEBSOCKET_ONLY="true")
    yield server
    server.close()


def test_two_workers_on_one_port_deliver_every_message_websocket_only(two_workers):
    assert len(child_pids(two_workers.process.pid)) == 2
    clients = []
    for _ in range(8):
        username = unique("user")
        clients.append(ChatClient(two_workers.url, username,
                                  http=sign_up(two_workers.url, username)).connect())
    room = unique("room")
    assert clients[0].call("room:create", {"name": room})["ok"]
    for client in clients:
        client.join(room)
    sent = [client.send(room, f"{client.username} says {i}")["message"]["id"]
            for client in clients for i in range(5)]
    for client in clients:
        wait_until(lambda: set(sent) <= set(client.deliveries), 20,
                   message=f"{client.username} missed live messages")
        assert client.connects == 1  # delivered live, not by a catch-up
        client.close()


def test_websocket_only_mode_refuses_polling_cleanly(two_workers):
    username = unique("user")
    http = sign_up(two_workers.url, username)
    client = ChatClient(two_workers.url, username, http=http, transports=("polling",))
    client.sio.reconnection = False
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    response = requests.get(two_workers.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert response.status_code == 400


def test_several_workers_without_redis_refuse_to_start(tmp_path):
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "--workers", "2",
         "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr + result.stdout
    assert "WEBSOCKET_ONLY is not true" in result.stderr + result.stdout


def test_a_background_job_can_announce_through_redis(two_servers, redis_server):
    from app.external import announce

    a, b = two_servers
    clients = [ChatClient(s.url, n, http=sign_up(s.url, n)).connect()
               for s, n in ((a, unique("user")), (b, unique("user")))]
    payload = announce("maintenance at noon", redis_url=redis_server.url)
    for client in clients:
        wait_until(lambda: ("announcement", payload) in client.events, 10,
                   message=f"{client.username} got no announcement")
        client.close()


def test_the_announce_command_reaches_clients_on_every_process(two_servers, cluster_env):
    from tests.support.server import flask_cli

    a, b = two_servers
    clients = [ChatClient(s.url, n, http=sign_up(s.url, n)).connect()
               for s, n in ((a, unique("user")), (b, unique("user")))]
    output = flask_cli(cluster_env, "announce", "server restart at 18:00")
    assert "announced to every room" in output
    for client in clients:
        wait_until(lambda: any(e == "announcement" and p["body"] == "server restart at 18:00"
                               for e, p in client.events), 10,
                   message=f"{client.username} got no announcement")
        client.close()
