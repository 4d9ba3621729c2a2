"""Slow and many clients: a request deadline, a connection cap that sheds idle connections first,
and 503 + Retry-After when the cap is reached by connections that are all busy.

What uvicorn (0.54, httptools) gives and what it does not:
- `timeout_keep_alive` closes a connection idle *after* a response; it is not armed before the
  first request, and any byte received disarms it. A client that opens a connection and never
  finishes its request line or headers (slowloris) holds a file descriptor forever. Measured on
  main: 2,500 such connections with the open-file limit at 1,024 left 0 of 3,186 normal requests
  answered (accept() fails with EMFILE and asyncio stops accepting for a second at a time).
- `limit_concurrency` answers 503 once N connections are open, but counts those unfinished
  connections too: a slowloris at the limit turns every real request into a 503 (no Retry-After).
- h11's `h11_max_incomplete_event_size` / httptools' own header limit bound the bytes of a
  request head, not the time it takes. None bounds the time to read headers and body.
So this module adds (subclassing uvicorn's own protocol, nothing else changes):
1. a request deadline: from connection (or the end of the previous response) to the last byte of
   the request body, `request_timeout` seconds; past it, 408 and close (or just close when the
   application already reads the body: it then sees a disconnect);
2. a per-process connection cap below the open-file limit; a new connection past the cap closes
   the oldest connection that has no request in progress (a slowloris, or an idle keep-alive),
   so accept() never meets EMFILE and normal clients are always accepted at once;
3. when nothing can be shed (every connection is busy with a request), the new connection's
   request gets 503 with `Retry-After` and is closed;
4. one write per response: uvicorn writes the response head and the body with two
   transport.write calls, i.e. two send() syscalls, and on loopback the sender's syscall also
   runs the receiver's TCP processing. Holding the head until the body comes (CoalescedWrites)
   halves that (bench/README.md, "Issue 14, last round");
5. responses written at the end of the event-loop iteration that completed them, all of them
   together (IterationWrites, after Netty's FlushConsolidationHandler): a worker under load
   reads and decides every request that arrived before it answers any, and its clients send
   their next requests in bursts, so each turn of the loop serves more of them. Measured with
   `bench/load_test.sh`, this and the commit before alternating: +10-24 % decisions/s, 10-20 µs
   less server CPU per decision, a lower p99 (bench/README.md). A response waits at most for
   the rest of its loop turn; alone in it, not at all.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from engine.service import metrics

logger = logging.getLogger("aftersale.service")

FD_RESERVE = 64          # descriptors kept for everything but client sockets (logs, rules, metrics files)


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (inherited by spawned workers).
    Returns (soft, hard) as they are afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # a container may refuse; the cap then follows the soft limit
            logger.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft, hard


@dataclass
class GuardSettings:
    request_timeout: float = 10.0       # seconds to receive a whole request (head and body)
    max_connections: int | None = None  # per worker; None: the open-file limit minus FD_RESERVE
    retry_after: int = 1                # seconds, in the 503's Retry-After

    def cap(self) -> int:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        by_files = max(16, soft - FD_RESERVE)
        return min(self.max_connections, by_files) if self.max_connections else by_files


class ConnectionGuard:
    """Per-process bookkeeping: every open connection, and in arrival order those without a
    request in progress (the ones that may be shed)."""

    def __init__(self) -> None:
        self.settings = GuardSettings()
        self.limit = self.settings.cap()
        self.open: set[GuardedHttpToolsProtocol] = set()
        self.idle: OrderedDict[GuardedHttpToolsProtocol, None] = OrderedDict()
        self.shed = 0          # connections closed to make room
        self.refused = 0       # requests answered 503 because every connection was busy
        self.timed_out = 0     # requests that missed the deadline

    def configure(self, settings: GuardSettings) -> None:
        self.settings = settings
        self.limit = settings.cap()

    def admit(self, conn: GuardedHttpToolsProtocol) -> bool:
        """Register a new connection; False when it is over the cap and nothing could be shed."""
        self.open.add(conn)
        self.idle[conn] = None
        while len(self.open) > self.limit:
            victim = next(iter(self.idle), None)
            if victim is None or victim is conn:
                return False
            self.shed += 1
            metrics.CONNECTIONS_SHED.inc()
            victim.shed()
        return True

    def busy(self, conn: GuardedHttpToolsProtocol) -> None:
        self.idle.pop(conn, None)

    def waiting(self, conn: GuardedHttpToolsProtocol) -> None:
        self.idle[conn] = None
        self.idle.move_to_end(conn)

    def gone(self, conn: GuardedHttpToolsProtocol) -> None:
        self.open.discard(conn)
        self.idle.pop(conn, None)


GUARD = ConnectionGuard()


def configure_guard(settings: Any) -> None:
    """From the service settings (`--request-timeout`, `--max-connections`), in each worker."""
    GUARD.configure(GuardSettings(request_timeout=settings.request_timeout,
                                  max_connections=settings.max_connections or None))


def _plain_response(status: bytes, text: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(text)).encode() + b"\r\nconnection: close\r\n" + extra + b"\r\n" + text)


_TIMEOUT_BODY = (b'{"error":{"status":408,"code":"request_timeout","message":'
                 b'"the request was not received in time"}}')
_BUSY_BODY = (b'{"error":{"status":503,"code":"overloaded","message":'
              b'"too many connections; retry later"}}')


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """ASGI app for a connection admitted past the cap: 503, Retry-After, close."""
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                            (b"retry-after", str(GUARD.settings.retry_after).encode()),
                            (b"content-length", str(len(_BUSY_BODY)).encode())]})
    await send({"type": "http.response.body", "body": _BUSY_BODY})


class IterationWrites:
    """The connections of one event loop with response bytes to write at the end of the current
    loop iteration (5. above). One per loop: iteration_writes()."""

    __slots__ = ("_loop", "_pending", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[CoalescedWrites] = []

    def add(self, writes: "CoalescedWrites") -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(writes)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for writes in pending:
            try:
                writes.send()
            except Exception:  # noqa: BLE001 - one broken connection must not keep the others' answers
                logger.exception("writing a response failed")


_ITERATION_WRITES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IterationWrites]" = \
    weakref.WeakKeyDictionary()


def iteration_writes(loop: asyncio.AbstractEventLoop) -> IterationWrites:
    found = _ITERATION_WRITES.get(loop)
    if found is None:
        found = _ITERATION_WRITES[loop] = IterationWrites(loop)
    return found


class CoalescedWrites:
    """A connection's transport as its response cycles see it. Two things are held back:
    - the first write of a response (uvicorn writes the head as soon as the application sends
      `http.response.start`) waits for the next one, the body, so head and body are one write;
      whatever ends the response releases it: the protocol's on_response_complete (a response
      without body: HEAD, 204, 304), or close. `100 Continue` is never held;
    - what is written goes out at the end of the loop iteration (IterationWrites), with the other
      connections' responses of that iteration; close() sends it first. A connection closed or
      lost meanwhile drops it (nobody is there to read it).
    Everything but write/close goes to the real transport."""

    __slots__ = ("_transport", "_held", "hold_next", "_out", "_iteration")

    def __init__(self, transport: asyncio.Transport, iteration: IterationWrites) -> None:
        self._transport = transport
        self._held = b""
        self.hold_next = False
        self._out: list[bytes] = []
        self._iteration = iteration

    def write(self, data: bytes) -> None:
        if self.hold_next and not data.startswith(b"HTTP/1.1 100 "):
            self.hold_next = False
            self._held = data
            return
        if self._held:
            data, self._held = self._held + data, b""
        if not self._out:
            self._iteration.add(self)
        self._out.append(data)

    def send(self) -> None:
        """What this loop iteration wrote, in one write (IterationWrites.flush, close)."""
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def flush(self) -> None:
        """The response is complete: a head still held joins what goes out."""
        self.hold_next = False
        if self._held:
            held, self._held = self._held, b""
            self.write(held)

    def close(self) -> None:
        self.flush()
        self.send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadline and the cap above (Config(http=this))."""

    _deadline: asyncio.TimerHandle | None = None
    _writes: CoalescedWrites

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writes = CoalescedWrites(transport, iteration_writes(self.loop))
        if not GUARD.admit(self):
            GUARD.refused += 1
            metrics.REQUESTS_REFUSED.inc()
            self.app = _overloaded
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        GUARD.gone(self)
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(GUARD.settings.request_timeout, self._missed_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _missed_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        GUARD.timed_out += 1
        metrics.REQUESTS_TIMED_OUT.inc()
        if self.cycle is None or self.cycle.response_complete:  # still reading the request head
            self._writes.write(_plain_response(b"408 Request Timeout", _TIMEOUT_BODY))
        self._writes.close()  # an application reading the body sees http.disconnect

    def shed(self) -> None:
        """Closed to make room for a newer connection: it had no request in progress."""
        GUARD.gone(self)
        self._disarm()
        if not self.transport.is_closing():
            self._writes.close()  # a response completed in this loop turn goes out first

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # the cycle writes through the connection's CoalescedWrites; its cycles write one after
        # the other (a pipelined one starts once the previous response is complete)
        cycle.transport = self._writes  # type: ignore[assignment]
        self._writes.hold_next = True
        super()._start_asgi_task(cycle, app)

    def shutdown(self) -> None:
        # the server stops: a response completed in this loop turn goes out before uvicorn
        # closes an idle connection
        self._writes.send()
        super().shutdown()

    def on_headers_complete(self) -> None:
        GUARD.busy(self)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._writes.flush()
        super().on_response_complete()
        if not self.transport.is_closing():
            GUARD.waiting(self)
            self._arm()  # the next request, or idleness (uvicorn's keep-alive timeout is shorter)
