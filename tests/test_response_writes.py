"""One write per response (connections.py, CoalescedWrites), at the end of the loop iteration
that completed it (IterationWrites): uvicorn's own protocol, driven by a recording transport,
hands each response to the transport as a single write, head and body together; responses
without a body, `100 Continue` and pipelined requests still come out whole and in order; a
closing connection sends what it has first. Against the real server too (HEAD, Expect:
100-continue, pipelining, Connection: close)."""
from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
from uvicorn.server import ServerState

from engine.service.connections import CoalescedWrites, GuardedHttpToolsProtocol, IterationWrites, iteration_writes

from server_support import RULES, Server
from test_slow_clients import BODY, connect


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class ManualLoop:
    """The loop an IterationWrites schedules its flush on, run by hand: the end of an iteration."""

    def __init__(self) -> None:
        self.callbacks: list = []

    def call_soon(self, callback) -> None:
        self.callbacks.append(callback)

    def end_iteration(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def _coalesced(loop: ManualLoop) -> tuple[RecordingTransport, CoalescedWrites]:
    transport = RecordingTransport()
    return transport, CoalescedWrites(transport, IterationWrites(loop))  # type: ignore[arg-type]


def test_the_head_waits_for_the_body_and_goes_out_with_it():
    loop = ManualLoop()
    transport, writes = _coalesced(loop)
    writes.hold_next = True
    writes.write(b"HTTP/1.1 100 Continue\r\n\r\n")      # informational: not held, hold still armed
    loop.end_iteration()
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    loop.end_iteration()
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    writes.write(b"{}")
    loop.end_iteration()
    assert transport.writes[1:] == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    # a response without a body: its head goes out when the response completes (flush) or on close
    writes.hold_next = True
    writes.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    writes.flush()
    loop.end_iteration()
    writes.hold_next = True
    writes.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    writes.close()
    assert transport.writes[2:] == [b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 500 Internal Server Error\r\n\r\n"]
    assert transport.closed


def test_one_iterations_responses_go_out_at_its_end_each_connection_in_one_write():
    loop = ManualLoop()
    (first, a), (second, b) = _coalesced(loop), _coalesced(loop)
    iteration = a._iteration
    b._iteration = iteration           # two connections of one loop
    for writes, body in ((a, b"1"), (b, b"2"), (a, b"3")):
        writes.hold_next = True
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        writes.write(body)
    assert first.writes == second.writes == [] and len(loop.callbacks) == 1   # one flush per iteration
    loop.end_iteration()
    assert first.writes == [b"HTTP/1.1 200 OK\r\n\r\n1HTTP/1.1 200 OK\r\n\r\n3"]   # in order, one write
    assert second.writes == [b"HTTP/1.1 200 OK\r\n\r\n2"]
    # a connection closed or lost before the iteration ends: what it had is dropped, not written
    a.write(b"late")
    first.closed = True
    loop.end_iteration()
    assert first.writes == [b"HTTP/1.1 200 OK\r\n\r\n1HTTP/1.1 200 OK\r\n\r\n3"]


def test_iteration_writes_are_per_loop():
    one, other = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert iteration_writes(one) is iteration_writes(one)
        assert iteration_writes(one) is not iteration_writes(other)
    finally:
        one.close()
        other.close()


async def _app(scope, receive, send):
    message = await receive()
    body = b'{"echo":' + str(len(message.get("body", b""))).encode() + b"}"
    status = 204 if scope["path"] == "/empty" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [] if status == 204 else [(b"content-type", b"application/json"),
                                                     (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if status == 204 else body})


async def _drive(requests: bytes, expected_responses: int) -> RecordingTransport:
    config = uvicorn.Config(_app, http=GuardedHttpToolsProtocol, lifespan="off", log_level="warning",
                            proxy_headers=False)
    config.load()
    protocol = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(requests)
    for _ in range(200):
        if sum(w.startswith(b"HTTP/1.1 2") for w in transport.writes) >= expected_responses:
            break
        await asyncio.sleep(0.005)
    protocol.connection_lost(None)
    return transport


def test_uvicorns_protocol_writes_each_response_once():
    post = (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n"
            b'{"a"')
    empty = b"GET /empty HTTP/1.1\r\nHost: t\r\n\r\n"
    transport = asyncio.run(_drive(post + empty + post, 3))
    assert len(transport.writes) == 3, transport.writes      # three responses, three writes
    first, second, third = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b'\r\n\r\n{"echo":4}')
    assert second.startswith(b"HTTP/1.1 204 No Content\r\n") and second.endswith(b"\r\n\r\n")
    assert third == first


def _read_response(sock: socket.socket, buffer: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(head, body, rest) of one response with a Content-Length (none: no body)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, buffer
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head.startswith(b"HEAD ") or b" 204 " in head.split(b"\r\n")[0]:
        length = 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return head, rest[:length], rest[length:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("writes"), RULES, "--poll", "0")
    yield running
    running.stop()


def test_real_server_answers_expect_continue_head_and_pipelined_requests(server):
    sock = connect(server.url)
    # Expect: 100-continue: the interim answer comes before we send the body
    sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Expect: 100-continue\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n")
    sock.settimeout(5)
    interim = sock.recv(65536)
    assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
    sock.sendall(BODY)
    head, body, rest = _read_response(sock, interim.split(b"\r\n\r\n", 1)[1])
    assert head.startswith(b"HTTP/1.1 200") and body.startswith(b"{") and b'"decision_id"' in body
    # HEAD: a head, no body; then two pipelined requests, answered in order on the same connection
    sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head_only = b""
    while b"\r\n\r\n" not in head_only:
        head_only += sock.recv(65536)
    assert head_only.startswith(b"HTTP/1.1 200") and head_only.endswith(b"\r\n\r\n")
    request = (b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    sock.sendall(request + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body, rest = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200") and b'"actions"' in body
    head, body, rest = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in body and rest == b""
    sock.close()


def test_real_server_sends_the_whole_answer_before_closing_a_connection_close_request(server):
    sock = connect(server.url)
    sock.settimeout(5)
    sock.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    received = b""
    while chunk := sock.recv(65536):      # the server closes after the answer (written at close)
        received += chunk
    sock.close()
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    assert head.startswith(b"HTTP/1.1 200") and len(body) == length and b'"actions"' in body
