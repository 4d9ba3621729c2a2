"""Slow and many clients against the real server (connections.py): the request deadline, the
connection cap that sheds idle connections, 503 + Retry-After when every connection is busy, and
the slowloris of issue 11 (thousands of unfinished connections, open-file limit 1,024)."""
from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest

from server_support import REPO, RULES, Server

BODY = json.dumps({"ticket": {
    "ticket_id": "AS-1001", "type": "refund_only", "status": "merchant_processing",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0}},
    "actor": "merchant", "at": "2024-06-02T10:00:00+08:00"}, ensure_ascii=False).encode()

REQUEST = (b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_an_unfinished_request_head_gets_408_and_is_closed(tmp_path):
    server = Server(tmp_path, RULES, "--poll", "0", "--request-timeout", "1")
    try:
        sock = connect(server.url)
        sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\n")   # never the blank line
        started = time.monotonic()
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"code":"request_timeout"' in answer
        assert 0.8 < time.monotonic() - started < 5
        # a body that never arrives: the connection is closed (the app sees a disconnect)
        sock = connect(server.url)
        sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"ticket\":")
        assert read_all(sock) == b""
        assert httpx.post(server.url + "/v1/decide", content=BODY,
                          headers={"content-type": "application/json"}).status_code == 200
    finally:
        server.stop()


def test_past_the_cap_idle_connections_are_shed_and_busy_ones_mean_503_retry_after(tmp_path):
    server = Server(tmp_path, RULES, "--poll", "0", "--max-connections", "2", "--request-timeout", "30")
    try:
        idle = [connect(server.url) for _ in range(2)]
        time.sleep(0.2)
        # a third connection sheds the oldest idle one and is answered normally
        assert httpx.post(server.url + "/v1/decide", content=BODY, headers={"content-type": "application/json"},
                          timeout=5).status_code == 200
        assert read_all(idle[0]) == b""                       # shed: closed without an answer
        # two connections busy with a request whose body is still coming: nothing to shed
        busy = [connect(server.url) for _ in range(2)]
        for sock in busy:
            sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n{")
        time.sleep(0.3)
        response = httpx.post(server.url + "/v1/decide", content=BODY, headers={"content-type": "application/json"},
                              timeout=5)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "overloaded"
        for sock in busy + idle[1:]:
            sock.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_three_thousand_unfinished_connections_do_not_starve_normal_clients(tmp_path):
    """Issue 11 finding 1: with the open-file limit at 1,024, 2,500 never-finished connections left
    0 of 3,186 normal requests answered. Now 3,000 (re-opened as fast as the server closes them)
    while every normal request, each on a new connection, is answered 200."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4000:
        pytest.skip(f"the attacker needs 3,000 descriptors (hard limit here {hard})")

    def at_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    server = Server(tmp_path, RULES, "--poll", "0", "--workers", "2", preexec_fn=at_1024)
    attacker = subprocess.Popen([sys.executable, str(REPO / "bench" / "slowloris.py"), server.url,
                                 "--connections", "3000", "--seconds", "18"],
                                stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        server.wait_ready(workers=2)
        time.sleep(5)  # the attacker's connections are open (or being shed) by now
        statuses = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:  # a new connection each time: normal clients must get through accept() too
                sock = connect(server.url)
                sock.sendall(REQUEST)
                statuses.append(read_all(sock)[:12].decode())
                sock.close()
            except OSError as exc:
                statuses.append(repr(exc))
        assert len(statuses) > 50 and set(statuses) == {"HTTP/1.1 200"}, [s for s in statuses if "200" not in s][:5]
        assert attacker.poll() is None, "the attacker stopped early"
    finally:
        attacker.terminate()
        report = attacker.communicate(timeout=30)[0]
        server.stop()
    final = [line for line in report.splitlines() if line.startswith("SLOWLORIS")]
    assert final, report[-500:]
    numbers = dict(item.split("=") for item in final[0].split()[1:])
    assert int(numbers["opened"]) >= 3000 and int(numbers["closed_by_server"]) > 0  # it did attack, it was shed
