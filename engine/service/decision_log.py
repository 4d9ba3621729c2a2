"""The decision log: one JSON line per decision, for audit and replay.

    {"decision_id": "01J...", "time": "2026-...Z", "kind": "decide", "actor": "merchant",
     "ticket_id": "AS-1001", "at": "...", "policy_version": "2024-05-31", "bundle_hash": "...",
     "input_sha256": "...", "outcome": {"reject": ["NEGOTIATION_REQUIRED_FIRST"], "agree": "allowed"},
     "pid": 1234}

`input_sha256` is over the canonical JSON of the request body (sorted keys, no spaces, UTF-8), so
a decision can be matched to a stored request without logging the ticket itself.

Writes are buffered: lines collect in memory and go out in one `write` when 64 KiB are pending or
on the periodic flush (~1 s) and at shutdown; no fsync per request (a crash may lose the last
second). Several worker processes append to the same file: it is opened O_APPEND and every write
holds whole lines only, so lines from different workers never interleave mid-line (a pipe such as
stdout gets chunks of at most PIPE_BUF bytes, the size POSIX keeps atomic).
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import secrets
import stat
import threading
import time
from datetime import datetime, timezone
from typing import Any

FLUSH_BYTES = 64 * 1024
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_decision_id() -> str:
    """A ULID: 48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters),
    so ids sort by time and two workers never collide in practice."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def input_sha256(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def outcome_of(kind: str, result: dict) -> dict:
    """What was decided, compactly: enough to answer "why was X denied" without the whole result."""
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


class DecisionLog:
    """Append decision records to a file descriptor; `None` target = logging off."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._fd: int | None = None
        self._owns_fd = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()  # records come from the event loop; flush may come from a thread at exit
        if target == "-":
            self._fd = 1
        elif target:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._owns_fd = True
        self._chunk = FLUSH_BYTES
        if self._fd is not None and not stat.S_ISREG(os.fstat(self._fd).st_mode):
            self._chunk = select.PIPE_BUF

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def record(self, *, decision_id: str, kind: str, body: Any, result: dict, version: str | None,
               bundle_hash: str, actor: str | None = None, ticket_id: str | None = None) -> None:
        if self._fd is None:
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
            "pid": os.getpid(),
        }
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self._pending.append(line)
            self._pending_bytes += len(line)
            full = self._pending_bytes >= FLUSH_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending, self._pending_bytes = self._pending, [], 0
        if self._fd is None or not lines:
            return
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > self._chunk:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        self.flush()
        if self._owns_fd and self._fd is not None:
            os.close(self._fd)
        self._fd = None
