"""What one decision-log line says: the decision id, the canonical hash of the request, the
outcome in brief, masked fields. Pure functions, used per decision on the service's hot path
(decision_log.py writes the lines; handlers.py stamps the ids).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from typing import Any

import orjson

from engine.decisions.results import Decision

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

def new_decision_id() -> str:
    """A ULID: 48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters),
    so ids sort by time and two workers never collide in practice."""
    value = (int(time.time() * 1000) << 80) | _id_random.getrandbits(80)
    return "".join([_CROCKFORD_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


# (second, "YYYY-MM-DDTHH:MM:SS") of the last time stamp: the seconds part is formatted once a second
_last_second: tuple[int, str] = (-1, "")


def log_time() -> str:
    """Now in UTC to the millisecond, `2026-11-30T01:05:13.123Z`: what
    `datetime.now(timezone.utc).isoformat(timespec="milliseconds")` writes (with `Z`), 0.4 µs
    instead of 1.6 (3.4 within a request): only the milliseconds are formatted per line."""
    global _last_second
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached, prefix = _last_second
    if second != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, prefix)
    return f"{prefix}.{nanos // 1_000_000:03d}Z"


# A digit followed by `.`, `e` or `E`: the body may hold a float. orjson and the standard library
# write some floats differently (1e-05 / 0.00001, 1e-06 / 1e-6), so such a body takes the
# definition's own path (a string like "v1.2" does too: slower, never wrong). Looked for as
# `b"0." in data.translate(_FLOAT_MARKS)` (digits become `0`, `.eE` become `.`, the rest a space):
# the same test as the regex `[0-9][.eE]`, 1.2 µs instead of 3.3 on a 650-byte body and 6.6 µs
# within a request (the regex tries a match at every digit; bench/README.md).
_FLOAT_MARKS = bytes(ord("0") if chr(code).isdigit() and code < 128 else ord(".") if code in b".eE" else ord(" ")
                     for code in range(256))


def may_hold_float(data: bytes) -> bool:
    return b"0." in data.translate(_FLOAT_MARKS)


def canonical_json(body: Any) -> bytes:
    """The canonical form `input_sha256` hashes, by definition
    `json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8.
    orjson writes the same bytes for everything but some floats, 5-10x faster (tickets are ints,
    strings and booleans); tests/test_decision_log.py checks the two agree on generated JSON."""
    try:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):   # an int past 64 bits, a lone surrogate
        data = b""
    if not data or may_hold_float(data):
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
