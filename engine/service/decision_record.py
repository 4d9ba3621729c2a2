"""What one decision-log line says: the decision id, the canonical hash of the request, the
outcome in brief, masked fields. Pure functions, used per decision on the service's hot path
(decision_log.py writes the lines; handlers.py stamps the ids).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
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
