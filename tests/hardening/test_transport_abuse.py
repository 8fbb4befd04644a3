"""Availability attacks on the transport, against a real gunicorn worker.

Raw sockets, not an HTTP library: each test writes exactly the bytes an
attacker would (a body announced and never sent, headers a byte at a time, a
socket that never reads) and checks that the worker ends the request within
its deadline, answers ``/healthz`` within a second during and after the
attack, and writes no traceback. The deadlines are set short here (2-3 s) so
that the tests are quick; the defaults and their reasons are in app/config.py.
"""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import requests
import socketio
import websocket

from tests.hardening.conftest import attacked_server
from tests.hardening.conftest import still_serving as serving
from tests.hardening.test_abuse import worker_rss_kb
from tests.support.client import ChatClient
from tests.support.server import child_pids, cookie_header, sign_in, wait_until

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
SEND_TIMEOUT = 3
ANONYMOUS_TIMEOUT = 2
ANONYMOUS_CAP = 5
OUTBOX_BYTES = 1024 * 1024
# How long past a deadline the worker may take to notice it (a loaded CI box).
SLACK = 4
# The many-connections attack, scaled to a 2-core machine shared with other work.
SILENT_POSTS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from attacked_server(tmp_path_factory, "transport", ("alice", "mallory"),
                               HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
                               HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
                               HTTP_SEND_TIMEOUT_SECONDS=str(SEND_TIMEOUT),
                               ANONYMOUS_SESSION_TIMEOUT_SECONDS=str(ANONYMOUS_TIMEOUT),
                               MAX_ANONYMOUS_SESSIONS_PER_ADDRESS=str(ANONYMOUS_CAP),
                               MAX_OUTBOX_BYTES=str(OUTBOX_BYTES))


def worker_fds(server) -> int:
    """Open file descriptors of the worker: each client connection is one."""
    (pid,) = child_pids(server.process.pid)
    return len(os.listdir(f"/proc/{pid}/fd"))


def healthy_within_a_second(server) -> None:
    assert requests.get(server.url + "/healthz", timeout=1).status_code == 200


def still_serving(server, witness) -> None:
    serving(server, witness, health_timeout=1)


def no_tracebacks_since(server, offset: int) -> None:
    new = server.log_path.read_bytes()[offset:].decode(errors="replace")
    assert "Traceback" not in new, new[-3000:]


def log_size(server) -> int:
    return server.log_path.stat().st_size


def raw(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def polling_session(server) -> str:
    """An anonymous Engine.IO session over long-polling: its sid."""
    response = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert response.status_code == 200, response.text
    return response.text.split('"sid":"', 1)[1].split('"', 1)[0]


def read_until_closed(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends until it closes the connection, within ``within`` s."""
    sock.settimeout(within)
    received = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open past {within}s; got {received!r}")


def attack_while_watching(server, attack, within: float) -> bytes:
    """Run ``attack`` (returns its socket) and check /healthz while it waits for the close."""
    offset = log_size(server)
    sock = attack()
    healthy_within_a_second(server)
    started = time.monotonic()
    answer = read_until_closed(sock, within)
    sock.close()
    healthy_within_a_second(server)
    no_tracebacks_since(server, offset)
    return answer, time.monotonic() - started


# -- §2: every request ends -------------------------------------------------------

def post_head(sid: str, length: int, extra: str = "") -> bytes:
    return (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def test_a_body_over_the_limit_is_refused_from_the_header(server, witness):
    sid = polling_session(server)

    def attack():
        sock = raw(server)
        sock.sendall(post_head(sid, 10_000_000))  # and then nothing
        return sock

    answer, _ = attack_while_watching(server, attack, within=SLACK)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    still_serving(server, witness)


@pytest.mark.parametrize("sent", [0, 10], ids=["nothing", "ten-bytes"])
def test_a_body_that_never_comes_ends_within_the_body_deadline(server, witness, sent):
    sid = polling_session(server)

    def attack():
        sock = raw(server)
        sock.sendall(post_head(sid, 1000) + b"4" * sent)
        return sock

    answer, took = attack_while_watching(server, attack, within=BODY_TIMEOUT + SLACK)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    still_serving(server, witness)


def test_a_body_trickled_a_byte_at_a_time_ends_within_the_body_deadline(server, witness):
    sid = polling_session(server)
    sock = raw(server)
    sock.sendall(post_head(sid, 1000))
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.2):
            try:
                sock.send(b"4")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        healthy_within_a_second(server)
        answer = read_until_closed(sock, BODY_TIMEOUT + SLACK)
    finally:
        stop.set()
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    still_serving(server, witness)


def test_headers_trickled_a_byte_at_a_time_end_within_the_header_deadline(server, witness):
    sock = raw(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.2):
            try:
                sock.send(b"X")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        healthy_within_a_second(server)
        read_until_closed(sock, HEADER_TIMEOUT + SLACK)
    finally:
        stop.set()
        sock.close()
    still_serving(server, witness)


def test_a_connection_that_sends_nothing_is_closed(server, witness):
    answer, _ = attack_while_watching(server, lambda: raw(server), within=HEADER_TIMEOUT + SLACK)
    assert answer == b""
    still_serving(server, witness)


def test_a_chunked_body_is_refused(server, witness):
    sid = polling_session(server)

    def attack():
        sock = raw(server)
        sock.sendall((f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n").encode())
        return sock

    answer, _ = attack_while_watching(server, attack, within=SLACK)
    assert answer.startswith(b"HTTP/1.1 411"), answer
    still_serving(server, witness)


def test_hundreds_of_silent_posts_are_all_ended(server, witness):
    """The attack of the issue, scaled down: many cheap requests, each ends."""
    sid = polling_session(server)
    fds_before = worker_fds(server)
    socks = []
    for n in range(SILENT_POSTS):
        sock = raw(server)
        sock.sendall(post_head(sid, 60_000 if n % 2 else 10_000_000))
        socks.append(sock)
    healthy_within_a_second(server)
    rss_during, fds_during = worker_rss_kb(server), worker_fds(server)
    for sock in socks:
        read_until_closed(sock, BODY_TIMEOUT + 2 * SLACK)
        sock.close()
    healthy_within_a_second(server)
    # Every attacking connection is gone from the worker, not in CLOSE-WAIT.
    wait_until(lambda: worker_fds(server) <= fds_before + 5, 10,
               message="the worker kept the attackers' descriptors")
    print(f"\n{SILENT_POSTS} silent POSTs: worker RSS during {rss_during} kB, after "
          f"{worker_rss_kb(server)} kB; descriptors before {fds_before}, during "
          f"{fds_during}, after {worker_fds(server)}")
    still_serving(server, witness)


def test_a_websocket_that_never_sends_a_frame_is_dropped(server, witness):
    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=30)
    assert ws.recv().startswith("0{")
    healthy_within_a_second(server)
    started = time.monotonic()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            frame = ws.recv()
            assert frame in ("1", "2", ""), frame  # a CLOSE or a ping, then the end
            if frame == "":
                raise websocket.WebSocketConnectionClosedException()
    assert time.monotonic() - started < ANONYMOUS_TIMEOUT + SLACK
    still_serving(server, witness)


# -- §2: anonymous Engine.IO sessions -----------------------------------------------

def test_sessions_without_a_namespace_are_capped_per_address_and_expire(server, witness):
    sids = [polling_session(server) for _ in range(ANONYMOUS_CAP)]
    refused = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert refused.status_code in (400, 401), refused.text
    healthy_within_a_second(server)

    def all_gone():
        return all(requests.get(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}",
                                timeout=ANONYMOUS_TIMEOUT + SLACK).status_code == 400
                   for sid in sids)
    wait_until(all_gone, ANONYMOUS_TIMEOUT + SLACK, interval=0.5,
               message="anonymous sessions outlived their deadline")
    assert polling_session(server)  # room again for new ones
    # A client that connects its namespace is never counted against the cap.
    peers = [ChatClient(server.url, "mallory", transports=("polling",)).connect()
             for _ in range(ANONYMOUS_CAP + 1)]
    for peer in peers:
        assert peer.call("rooms:list")["ok"] is True
        peer.close()
    still_serving(server, witness)


# -- §2: binary packets --------------------------------------------------------------

def signed_in_socket(server, username="mallory") -> websocket.WebSocket:
    http = sign_in(server.url, username)
    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
        header=[f"Cookie: {cookie_header(http)}"], timeout=10)
    assert ws.recv().startswith("0{")
    ws.send("40/public,")
    assert ws.recv().startswith("40/public,{")
    return ws


def closed_by_server(ws: websocket.WebSocket, within: float) -> list[str]:
    """The frames received until the server closed ``ws``, within ``within`` s."""
    frames = []
    deadline = time.monotonic() + within
    ws.settimeout(1)
    while time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return frames
        if frame == "":
            return frames
        frames.append(frame)
    raise AssertionError(f"the server kept the socket open; it sent {frames[:5]}")


@pytest.mark.parametrize("frame", [
    '451-/public,["message:send",{"_placeholder":true,"num":0}]',
    '45999999-/public,["message:send",{"_placeholder":true,"num":0}]',
    '461-/public,1[{"_placeholder":true,"num":0}]',
], ids=["binary-event", "huge-attachment-count", "binary-ack"])
def test_a_binary_packet_closes_that_connection_at_once(server, witness, frame):
    offset = log_size(server)
    ws = signed_in_socket(server)
    ws.send(frame)
    ws.send('42/public,7["rooms:list",{}]')
    frames = closed_by_server(ws, SLACK)
    assert not any(f.startswith("43/public,7") for f in frames), frames
    no_tracebacks_since(server, offset)
    still_serving(server, witness)


def test_a_binary_frame_closes_that_connection(server, witness):
    ws = signed_in_socket(server)
    ws.send_binary(b"\x04" + b"x" * 1000)
    closed_by_server(ws, SLACK)
    still_serving(server, witness)


# -- §2: a client that never reads ---------------------------------------------------

@pytest.fixture(scope="module")
def long_history(witness):
    """'long': 200 messages of 4000 characters, ~0.8 MB a history page."""
    witness.call("room:create", {"name": "long"})
    witness.join("long")
    for n in range(200):
        assert witness.send("long", f"{n} " + "w" * 3990)["ok"] is True
    return "long"


def test_a_client_that_never_reads_is_disconnected_with_its_memory(server, witness,
                                                                   long_history):
    healthy_within_a_second(server)
    baseline = worker_rss_kb(server)
    ws = signed_in_socket(server)
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws.send('42/public,1["room:join",{"room":"long"}]')
    requests_sent = 40
    sent = 0
    try:
        for n in range(requests_sent):
            ws.send(f'42/public,{n + 2}["message:history",{{"room":"long","limit":500}}]')
            sent += 1
            healthy_within_a_second(server)
    except (websocket.WebSocketException, OSError):
        pass  # the server already cut it off
    peak = worker_rss_kb(server)
    # Never having read, the client now drains what the server sent: the
    # server must have closed the connection after a bounded amount (its
    # outbox, plus what the kernel buffers held), not the 40 pages asked.
    drained = 0
    ws.sock.settimeout(SEND_TIMEOUT + SLACK)
    try:
        while True:
            chunk = ws.sock.recv(1 << 20)
            if not chunk:
                break
            drained += len(chunk)
    except socket.timeout:
        raise AssertionError(f"the slow consumer was never disconnected ({drained} bytes)")
    except ConnectionError:
        pass
    ws.close()
    page = 200 * 4000
    assert drained < 6 * page, drained
    healthy_within_a_second(server)
    wait_until(lambda: worker_rss_kb(server) < baseline + 150_000, 20,
               message="the worker kept the slow consumer's output")
    print(f"\nslow consumer: {sent} history requests of ~{page // 1000} kB each; RSS "
          f"baseline {baseline} kB, peak {peak} kB, after {worker_rss_kb(server)} kB; "
          f"{drained} bytes reached the client before the close")
    still_serving(server, witness)


# -- §4: malformed input is counted, not logged as tracebacks ------------------------

def test_a_polling_post_of_malformed_packets_writes_almost_nothing_to_the_log(server, witness):
    sid = polling_session(server)
    packets = ['4' + p for p in ("2/public,[", '2/public,{"a":1}', "9", "2[", "2/public,"
                                 + "[" * 50, "5-/public,[]")]
    body = ""
    count = 0
    while len(body) < 44_000:
        body += packets[count % len(packets)] + "\x1e"
        count += 1
    body = body.rstrip("\x1e")
    before = log_size(server)
    response = requests.post(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}",
                             data=body.encode(), timeout=10,
                             headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert response.status_code in (200, 400)
    healthy_within_a_second(server)
    time.sleep(0.5)  # the packets are handled in background greenlets
    wait_until(lambda: requests.get(server.url + "/healthz", timeout=1).ok, 5)
    grown = log_size(server) - before
    no_tracebacks_since(server, before)
    print(f"\n{len(body)} bytes of {count} malformed packets: the log grew {grown} bytes")
    assert grown < 2048, server.log_path.read_bytes()[before:].decode(errors="replace")
    still_serving(server, witness)


# -- §5: a foreign Origin is refused so that clients say so ---------------------------

@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_foreign_origin_is_a_refused_connection_for_the_python_client(server, transport):
    http = sign_in(server.url, "mallory")
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data=None: errors.append(data), namespace="/public")
    started = time.monotonic()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.url, namespaces=["/public"], transports=[transport],
                       headers={"Cookie": cookie_header(http), "Origin": "https://evil.example"},
                       wait_timeout=10)
    # Refused at once, not after the wait timeout, and no client thread died.
    assert time.monotonic() - started < 5
    assert not client.connected
    healthy_within_a_second(server)
