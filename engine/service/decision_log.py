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
  The event loop writes the lines a loop iteration produced in one batch (`write` to the page
  cache: microseconds); one syncing thread `fdatasync`s everything written since its last sync
  (group commit: while one sync runs the next batches collect). `record()` hands the request a
  future; the operations middleware awaits it before the response starts. A failed write or sync
  answers 503 (`decision_log_unavailable`) and /readyz turns not-ready until a write succeeds
  again. Why the loop writes and the thread only syncs: every system call a Python thread makes
  releases the GIL and must win it back from the busy event loop; a batch written by the thread
  (lock, stat, tail check, write, sync, unlock) cost ~8 such hand-overs. Measured side by side
  (bench/load_test.sh with DECISION_LOG, 2 workers): 2,530 / 2,549 decisions/s with the thread
  writing, 3,031 / 3,110 with the loop writing. Used from plain code (no event loop), a required
  line is written and synced by the thread, as in best-effort mode.
- `best-effort`: answered at once; the writer writes in the background (synced every second).
  A line that cannot be written (write error, or the queue past `MAX_QUEUE` lines) is dropped and
  counted: the metric `aftersale_decision_log_dropped_total` and /readyz `degraded`.
What a line says (ids, canonical hash, outcome, masking): `decision_record.py`. File handling
(whole lines only, torn tail repair, rotation): `log_file.py`.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

from engine.service import metrics
from engine.service.decision_record import input_sha256, log_time, mask_value, outcome_label, outcome_of
from engine.service.pid import process_id
from engine.service.log_file import LogFile

logger = logging.getLogger("aftersale.service")

REQUIRED, BEST_EFFORT = "required", "best-effort"
MODES = (REQUIRED, BEST_EFFORT)
MAX_QUEUE = 100_000            # lines waiting for the writer; past it best-effort drops, required refuses
BEST_EFFORT_SYNC_SECONDS = 1.0
BEST_EFFORT_BATCH = 512        # lines that wake the best-effort writer before its 50 ms are up
DROP_WINDOW_SECONDS = 60.0     # /readyz says degraded while a drop is this recent
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
        self._queue: list[tuple[bytes, asyncio.Future[None] | None]] = []   # lines for the thread to write
        # required mode on an event loop: lines the loop writes at the end of this iteration, and
        # batches it wrote that wait for the thread's sync, with the descriptor to sync them by
        self._loop_lines: list[tuple[bytes, asyncio.Future[None] | None]] = []
        self._unsynced: list[tuple[int, list[tuple[bytes, asyncio.Future[None] | None]]]] = []
        self._sync_fd = -1            # a dup of the file's descriptor, owned by the syncing side
        self._sync_fd_of = 0          # the LogFile.opened it duplicates
        self._synced_fd = -1          # the dup the thread synced last (it closes superseded ones)
        self._file_lock = threading.Lock()   # the loop's writes and the thread's (plain callers)
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
        metrics.PER_ITERATION.inc(metrics.child(metrics.DECISIONS, kind, actor or "", version or "",
                                                outcome_label(kind, result)))
        if self.file is None:
            return
        entry = {
            "decision_id": decision_id,
            "time": log_time(),
            "kind": kind,
            "actor": actor,
            "ticket_id": ticket_id,
            "at": result.get("at") or (body.get("at") if isinstance(body, dict) else None),
            "policy_version": version,
            "bundle_hash": bundle_hash,
            "input_sha256": input_sha256(body),
            "outcome": outcome_of(kind, result),
            "pid": process_id(),
        }
        if self.mask:
            for name in self.mask.intersection(entry):
                entry[name] = mask_value(entry[name])
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        if self.mode != REQUIRED:
            future = None
        elif self._loop_lines:  # not the iteration's first line: its loop, without asking for it
            future = self._loop_lines[0][1].get_loop().create_future()   # type: ignore[union-attr]
        else:
            future = self._future()
        if future is not None:
            if not self._loop_lines:
                future.get_loop().call_soon(self._write_on_loop)
            self._loop_lines.append((line, future))
            self._track(future)
            return
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
        # asyncio.get_running_loop() makes a getpid() system call on Python 3.11 (it checks for a
        # fork): asked once per loop iteration, not per line
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
            "queue": len(self._queue) + len(self._loop_lines) + sum(len(b) for _, b in self._unsynced),
        }

    # -- required mode on the event loop: write here, sync in the thread --------------------------------

    def _write_on_loop(self) -> None:
        """The lines this loop iteration recorded, in one batch (scheduled by the first of them)."""
        batch, self._loop_lines = self._loop_lines, []
        if not batch:
            return
        if self.file is None:  # closed meanwhile (shutdown): these decisions are not answered
            self._settle(batch, LogUnavailable("the decision log is closed"))
            return
        if len(batch) > MAX_QUEUE or sum(len(b) for _, b in self._unsynced) > MAX_QUEUE:
            self._failed(batch, OSError("decision log queue full"))
            return
        try:
            with self._file_lock:
                self.file.write_lines([line for line, _ in batch], durable=False)
        except OSError as exc:
            self._failed(batch, exc)
            return
        if not self.file.regular:  # a pipe or terminal: nothing to sync
            self._done(batch)
            return
        if self.file.opened != self._sync_fd_of:  # first batch, or the file was rotated/reopened
            self._sync_fd, self._sync_fd_of = os.dup(self.file.fd), self.file.opened
        with self._cond:
            self._unsynced.append((self._sync_fd, batch))
            if self._wake_at:
                self._cond.notify()

    def _sync_batches(self, batches: list[tuple[int, list[tuple[bytes, asyncio.Future[None] | None]]]]) -> None:
        """Thread: one fdatasync per file the batches went to (nearly always one), then settle."""
        started = time.perf_counter()
        index = 0
        while index < len(batches):
            fd = batches[index][0]
            lines: list[tuple[bytes, asyncio.Future[None] | None]] = []
            while index < len(batches) and batches[index][0] == fd:
                lines.extend(batches[index][1])
                index += 1
            if fd != self._synced_fd:
                # the file was rotated or reopened: every line of the previous descriptor was
                # synced (batches come in order), so its dup can go
                if self._synced_fd >= 0:
                    os.close(self._synced_fd)
                self._synced_fd = fd
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self._failed(lines, exc)
            else:
                self._done(lines, time.perf_counter() - started)

    def _done(self, batch: list[tuple[bytes, asyncio.Future[None] | None]], seconds: float | None = None) -> None:
        if seconds is not None:
            metrics.LOG_WRITE_SECONDS.observe(seconds)
        self.written += len(batch)
        metrics.LOG_WRITTEN.inc(len(batch))
        if self.last_error is not None:
            logger.warning("decision log %s: writing again", self.target)
        self.last_error = None
        self._settle(batch, None)

    def _failed(self, batch: list[tuple[bytes, asyncio.Future[None] | None]], exc: OSError) -> None:
        self.failed_writes += 1
        self.last_error = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "message": f"{exc.strerror or exc} ({len(batch)} lines not written)"}
        metrics.LOG_WRITE_ERRORS.inc()
        logger.error("decision log %s: write failed (%s): %d lines %s", self.target, exc, len(batch),
                     "refused (503)" if self.mode == REQUIRED else "dropped")
        if self.mode == BEST_EFFORT:
            self._drop(len(batch), "write failed")
        self._settle(batch, LogUnavailable(str(exc)))

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
                while not self._queue and not self._unsynced and not self._stopping:
                    self._wake_at = 1
                    self._cond.wait(timeout=BEST_EFFORT_SYNC_SECONDS)
                self._wake_at = 0
                batch, self._queue = self._queue, []
                to_sync, self._unsynced = self._unsynced, []
                stopping = self._stopping
                self._writing = bool(batch or to_sync)
            if to_sync:
                self._sync_batches(to_sync)
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
            with self._file_lock:
                self.file.write_lines([line for line, _ in batch], durable)
        except OSError as exc:
            self._failed(batch, exc)
            return
        self._done(batch, time.perf_counter() - started)

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
        try:
            on_the_loop = asyncio.get_running_loop() is loop   # _write_on_loop's own failure
        except RuntimeError:
            on_the_loop = False

        def settle() -> None:
            for future in futures:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(LogUnavailable(str(error)))
        if on_the_loop:
            settle()
            return
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
            self._cond.wait_for(lambda: not self._queue and not self._unsynced and not self._writing, timeout=30)

    def close(self) -> None:
        """Write what is queued, stop the writer, close the file."""
        self._write_on_loop()  # lines of the last loop iteration, if its callback has not run
        if self._thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            self._thread.join()
            self._thread = None
        for fd in {self._sync_fd, self._synced_fd} - {-1}:
            os.close(fd)
        self._sync_fd = self._synced_fd = -1
        if self.file is not None:
            self.file.close()
            self.file = None
