"""The decision log: one JSON line per decision, the service's audit record.

    {"decision_id": "01J...", "time": "2026-...Z", "kind": "decide", "actor": "merchant",
     "ticket_id": "AS-1001", "at": "...", "policy_version": "2024-05-31", "bundle_hash": "...",
     "input_sha256": "...", "outcome": {"reject": ["NEGOTIATION_REQUIRED_FIRST"], "agree": "allowed"},
     "pid": 1234}

`input_sha256` is over the canonical JSON of the request body (sorted keys, no spaces, UTF-8), so
a decision can be matched to a stored request without logging the ticket itself. Named fields can
be masked (`--decision-log-mask ticket_id,actor`): the value becomes `sha256:<16 hex>` of itself,
still joinable, no longer readable.

Two modes, chosen explicitly:
- `required` (an audit log): a decision is answered only after its line is on disk (`fdatasync`).
  Lines wait in a queue for one writer thread that writes and syncs everything queued in one go
  (group commit: while one sync runs the next batch collects, so a sync costs one request little).
  `record()` hands the request a future; the operations middleware awaits it before the response
  starts. A failed write answers 503 (`decision_log_unavailable`) and /readyz turns not-ready
  until a write succeeds again.
- `best-effort`: answered at once; the writer writes in the background (synced every second).
  A line that cannot be written (write error, or the queue past `MAX_QUEUE` lines) is dropped and
  counted: the metric `aftersale_decision_log_dropped_total` and /readyz `degraded`.
File handling (whole lines only, torn tail repair, rotation): `log_file.py`.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

from engine.decisions.results import Decision
from engine.service import metrics
from engine.service.log_file import LogFile

logger = logging.getLogger("aftersale.service")

REQUIRED, BEST_EFFORT = "required", "best-effort"
MODES = (REQUIRED, BEST_EFFORT)
MAX_QUEUE = 100_000            # lines waiting for the writer; past it best-effort drops, required refuses
BEST_EFFORT_SYNC_SECONDS = 1.0
BEST_EFFORT_BATCH = 512        # lines that wake the best-effort writer before its 50 ms are up
DROP_WINDOW_SECONDS = 60.0     # /readyz says degraded while a drop is this recent
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# two characters (10 bits) per lookup: 13 lookups for the 130 bits of 26 characters, half the time
# of one character at a time (tests/test_decision_log.py checks it against the plain definition)
_CROCKFORD_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]
_PAIR_SHIFTS = tuple(range(120, -1, -10))


# The random part of decision ids. Ids must be unique, not secret: a generator seeded from the
# system's entropy once per process (and again in a forked child) instead of `secrets`, whose
# every call is a getrandom() system call, 4 % of a worker's CPU under load (bench/README.md).
_id_random = random.Random()
os.register_at_fork(after_in_child=_id_random.seed)

_pid = os.getpid()  # each line's `pid`: read once per process (getpid is a system call), again after a fork


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def new_decision_id() -> str:
    """A ULID: 48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters),
    so ids sort by time and two workers never collide in practice."""
    value = (int(time.time() * 1000) << 80) | _id_random.getrandbits(80)
    return "".join([_CROCKFORD_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


# A digit followed by `.`, `e` or `E`: the body may hold a float. orjson and the standard library
# write some floats differently (1e-05 / 0.00001, 1e-06 / 1e-6), so such a body takes the
# definition's own path (a string like "v1.2" does too: slower, never wrong).
_FLOAT_LIKE = re.compile(rb"[0-9][.eE]")


def canonical_json(body: Any) -> bytes:
    """The canonical form `input_sha256` hashes, by definition
    `json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8.
    orjson writes the same bytes for everything but some floats, 5-10x faster (tickets are ints,
    strings and booleans); tests/test_decision_log.py checks the two agree on generated JSON."""
    try:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):   # an int past 64 bits, a lone surrogate
        data = b""
    if not data or _FLOAT_LIKE.search(data):
        data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return data


def input_sha256(body: Any) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def outcome_of(kind: str, result: Any) -> dict[str, Any]:
    """What was decided, compactly: enough to answer "why was X denied" without the whole result."""
    if type(result) is Decision:  # the typed decision: the same, read from its fields
        return {action: "allowed" if verdict.allowed else [d.code for d in verdict.denials]
                for action, verdict in result.actions.items()}
    if kind == "decide":
        return {action: "allowed" if verdict.get("allowed") else [d.get("code") for d in verdict.get("denials", [])]
                for action, verdict in (result.get("actions") or {}).items()}
    if kind == "check":
        return {"action": result.get("action"), "valid": result.get("valid"),
                "violations": [v.get("code") for v in result.get("violations") or []]}
    if kind == "apply":
        return {"answer": result.get("answer"), "allowed": result.get("allowed"), "status": result.get("status"),
                "effects": [e.get("effect") for e in result.get("effects") or []],
                "violations": [v.get("code") for v in result.get("violations") or []]}
    return {}


def outcome_label(kind: str, result: Any) -> str:
    """One word per decision for the metrics (the log line keeps the detail)."""
    if type(result) is Decision:
        return "allowed" if any(verdict.allowed for verdict in result.actions.values()) else "denied"
    if kind == "decide":
        actions = (result.get("actions") or {}).values()
        return "allowed" if any(v.get("allowed") for v in actions) else "denied"
    if kind == "check":
        return "valid" if result.get("valid") else "invalid"
    return str(result.get("status") or ("allowed" if result.get("allowed") else "denied"))


def mask_value(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# The commits of the request being answered: the operations middleware sets a list here, record()
# appends the future of each line it queues (required mode), the middleware awaits them.
PENDING_COMMITS: contextvars.ContextVar[list[asyncio.Future[None]] | None] = contextvars.ContextVar(
    "aftersale_pending_commits", default=None)


class LogUnavailable(Exception):
    """A required-mode line could not be written: the decision must not be answered."""


class DecisionLog:
    """Queue decision records for the writer thread; `None` target = logging off (metrics still count)."""

    def __init__(self, target: str | None, mode: str = REQUIRED, *, rotate_bytes: int = 0,
                 rotate_seconds: float = 0, mask: Iterable[str] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"decision log mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.target, self.mode = target, mode
        self.mask = frozenset(mask)
        self.file = LogFile(target, rotate_bytes, rotate_seconds) if target else None
        self._cond = threading.Condition()
        self._queue: list[tuple[bytes, asyncio.Future[None] | None]] = []
        self._stopping = False
        self._writing = False                      # the writer holds a batch it has not finished
        self._wake_at = 0                          # queue length that wakes the waiting writer (0: it is busy)
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0
        self.last_error: dict[str, Any] | None = None       # {"at", "message"} of the last failed write, cleared by a good one
        self._last_drop = 0.0
        self._thread: threading.Thread | None = None
        if self.file is not None:
            self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self.file is not None

    # -- the request side (event loop thread) -------------------------------------------------------

    def record(self, *, decision_id: str, kind: str, body: Any, result: Any, version: str | None,
               bundle_hash: str, actor: str | None = None, ticket_id: str | None = None) -> None:
        metrics.child(metrics.DECISIONS, kind, actor or "", version or "", outcome_label(kind, result)).inc()
        if self.file is None:
            return
        entry = {
            "decision_id": decision_id,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": kind,
            "actor": actor,
            "ticket_id": ticket_id,
            "at": result.get("at") or (body.get("at") if isinstance(body, dict) else None),
            "policy_version": version,
            "bundle_hash": bundle_hash,
            "input_sha256": input_sha256(body),
            "outcome": outcome_of(kind, result),
            "pid": _pid,
        }
        for name in self.mask.intersection(entry):
            entry[name] = mask_value(entry[name])
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        future = self._future() if self.mode == REQUIRED else None
        with self._cond:
            if len(self._queue) >= MAX_QUEUE:
                if future is not None:
                    future.set_exception(LogUnavailable("decision log queue full"))
                    self._track(future)
                    return
                self._drop(1, "queue full")
                return
            self._queue.append((line, future))
            # wake the writer only when it waits for this many lines: a notify per line would
            # hand the GIL to the writer thread and back for every decision (measured: ~40 µs
            # of a worker's CPU per decision under load); a busy writer looks at the queue anyway
            # when its write is done
            if self._wake_at and len(self._queue) >= self._wake_at:
                self._cond.notify()
        if future is not None:
            self._track(future)

    def _future(self) -> asyncio.Future[None] | None:
        try:
            return asyncio.get_running_loop().create_future()
        except RuntimeError:  # no event loop (used from plain code): nothing can wait
            return None

    @staticmethod
    def _track(future: asyncio.Future[None]) -> None:
        pending = PENDING_COMMITS.get()
        if pending is not None:
            pending.append(future)
        else:  # nobody awaits: keep asyncio from warning about an unretrieved exception
            future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def status(self) -> dict[str, Any]:
        """For /readyz: `ok` false (not ready) when required writes fail; `degraded` when
        best-effort lines were dropped recently or the last write failed."""
        failing = self.last_error is not None
        return {
            "mode": self.mode if self.enabled else "off",
            "ok": not (failing and self.mode == REQUIRED),
            "degraded": failing or (time.monotonic() - self._last_drop < DROP_WINDOW_SECONDS and self.dropped > 0),
            "written": self.written, "dropped": self.dropped, "failed_writes": self.failed_writes,
            "queue": len(self._queue),
        }

    # -- the writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        assert self.file is not None
        last_sync = time.monotonic()
        while True:
            with self._cond:
                if self.mode == BEST_EFFORT and not self._stopping:
                    # let lines gather: one write per ~50 ms, not per line
                    self._wake_at = BEST_EFFORT_BATCH
                    self._cond.wait_for(lambda: self._stopping or len(self._queue) >= BEST_EFFORT_BATCH,
                                        timeout=0.05)
                while not self._queue and not self._stopping:
                    self._wake_at = 1
                    self._cond.wait(timeout=BEST_EFFORT_SYNC_SECONDS)
                self._wake_at = 0
                batch, self._queue = self._queue, []
                stopping = self._stopping
                self._writing = bool(batch)
            # the depth as the writer finds it, set here rather than on every record() (a write
            # to the metrics file each): a queue that grows shows as growing batches
            metrics.LOG_QUEUE.set(len(batch))
            if batch:
                now = time.monotonic()
                durable = self.mode == REQUIRED or now - last_sync >= BEST_EFFORT_SYNC_SECONDS
                self._write(batch, durable)
                if durable:
                    last_sync = now
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
            if stopping:
                return

    def _write(self, batch: list[tuple[bytes, asyncio.Future[None] | None]], durable: bool) -> None:
        assert self.file is not None
        started = time.perf_counter()
        try:
            self.file.write_lines([line for line, _ in batch], durable)
        except OSError as exc:
            self.failed_writes += 1
            self.last_error = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "message": f"{exc.strerror or exc} ({len(batch)} lines not written)"}
            metrics.LOG_WRITE_ERRORS.inc()
            logger.error("decision log %s: write failed (%s): %d lines %s", self.target, exc, len(batch),
                         "refused (503)" if self.mode == REQUIRED else "dropped")
            if self.mode == BEST_EFFORT:
                self._drop(len(batch), "write failed")
            self._settle(batch, LogUnavailable(str(exc)))
            return
        metrics.LOG_WRITE_SECONDS.observe(time.perf_counter() - started)
        self.written += len(batch)
        metrics.LOG_WRITTEN.inc(len(batch))
        if self.last_error is not None:
            logger.warning("decision log %s: writing again", self.target)
        self.last_error = None
        self._settle(batch, None)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self._last_drop = time.monotonic()
        metrics.LOG_DROPPED.labels(why).inc(count)

    @staticmethod
    def _settle(batch: list[tuple[bytes, asyncio.Future[None] | None]], error: Exception | None) -> None:
        futures = [f for _, f in batch if f is not None]
        if not futures:
            return
        loop = futures[0].get_loop()

        def settle() -> None:
            for future in futures:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(LogUnavailable(str(error)))
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed (shutdown): nobody waits any more
            pass

    @classmethod
    def from_settings(cls, settings: Any) -> "DecisionLog":
        return cls(settings.decision_log, settings.decision_log_mode,
                   rotate_bytes=settings.decision_log_rotate_bytes,
                   rotate_seconds=settings.decision_log_rotate_seconds,
                   mask=[name for name in settings.decision_log_mask.split(",") if name])

    def flush(self) -> None:
        """Wake the writer (it writes on its own; kept for callers that flushed periodically)."""
        with self._cond:
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until every queued line is written (tests, shutdown)."""
        if self._thread is None:
            return
        with self._cond:
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._queue and not self._writing, timeout=30)

    def close(self) -> None:
        """Write what is queued, stop the writer, close the file."""
        if self._thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            self._thread.join()
            self._thread = None
        if self.file is not None:
            self.file.close()
            self.file = None
