"""The ticket's fast path (msgspec types generated from schemas/ticket.schema.json) is never laxer
than the schema: over generated tickets and thousands of mutations of them, every ticket the
msgspec types accept, the schema accepts too; and valid tickets do take the fast path."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import fastjsonschema
import msgspec
import yaml

from engine.decisions.schema_types import struct_type
from engine.decisions.ticket import _fast_type
from engine.history.corpus import Vocabulary, generate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "ticket.schema.json").read_text(encoding="utf-8"))
SCHEMA_OK = fastjsonschema.compile(SCHEMA)
ODD_VALUES = [None, True, False, 0, -1, 1, 1.0, 0.5, 10 ** 11, 10 ** 11 + 1, 1001, "", "x", "中" * 600,
              "2024-02-30T10:00:00+08:00", "2024-06-01T10:00:00", "2024-06-01 10:00+0800", [], {}, {"x": 1}]


def accepted_by_schema(ticket) -> bool:
    try:
        SCHEMA_OK(ticket)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def accepted_fast(ticket) -> bool:
    try:
        msgspec.convert(ticket, _fast_type())
    except msgspec.MsgspecError:
        return False
    return True


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


def mutate(ticket: dict, rng: random.Random) -> dict:
    out = copy.deepcopy(ticket)
    paths = list(_paths(out))
    path = rng.choice(paths)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    move = rng.random()
    if move < 0.15:
        del parent[path[-1]]
    elif move < 0.25:
        parent[rng.choice(["zz_extra", "note", "_x"])] = 1
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return out


def test_the_ticket_schema_translates_to_msgspec_types():
    assert _fast_type() is not None  # else every ticket takes the slow path: a keyword is not translated
    assert struct_type({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}) is None


def test_fast_path_never_accepts_what_the_schema_refuses():
    rng = random.Random(5)
    tickets = []
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        vocab = Vocabulary.from_document(yaml.safe_load(path.read_text(encoding="utf-8")))
        tickets += list(generate(120, seed=3, vocab=vocab))
    assert all(accepted_fast(t) for t in tickets)  # valid tickets take the fast path
    agreed = 0
    for _ in range(6000):
        ticket = rng.choice(tickets)
        for _ in range(rng.randint(1, 3)):
            ticket = mutate(ticket, rng)
        fast, schema = accepted_fast(ticket), accepted_by_schema(ticket)
        assert not fast or schema, f"msgspec accepts what the schema refuses: {ticket}"
        agreed += fast == schema
    assert agreed > 5700  # stricter only on rare forms (an integer written 1.0), which the schema then judges
