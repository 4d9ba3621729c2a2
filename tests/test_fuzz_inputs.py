"""Property-based fuzz of what callers send, in process: tickets into `Engine` and platform payloads
into the mapping as the service runs it. The property: every input is answered or refused with an
error the service maps to a 4xx (`EngineError` → errors.py's table; ApiError from the platform
path), never any other exception (a 500 with a traceback in the log).

Tickets come from the ticket schema itself (hypothesis-jsonschema) and from mutating a valid
ticket at one place with any JSON value; platform payloads from mutating the platform fixtures.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis_jsonschema import from_schema

from engine.api import Engine
from engine.core.errors import EngineError
from engine.core.resources import SCHEMAS_DIR
from engine.service.errors import ApiError, from_engine_error
from engine.service.handlers import platform_check, platform_decide

from server_support import REPO, RULES

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

TICKET_SCHEMA = json.loads((SCHEMAS_DIR / "ticket.schema.json").read_text(encoding="utf-8"))
TICKET = {
    "ticket_id": "AS-1001", "type": "refund_only", "status": "merchant_processing",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
}
WECHAT = REPO / "tests" / "fixtures" / "wechat"
PLATFORM = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(WECHAT.glob("*.json"))]


def _check_body(request: dict) -> dict:
    fixture = json.loads((WECHAT / f"{request['order_fixture']}.json").read_text(encoding="utf-8"))
    return {"order": fixture["order"], "context": fixture["context"], "body": request["body"],
            "at": "2025-10-24T10:00:00+08:00"}


CHECK_BODIES = [_check_body(json.loads(p.read_text(encoding="utf-8"))) for p in sorted((WECHAT / "requests").glob("*.json"))]

# Any JSON value, with the numbers, times and text that broke the service before (issue 11).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**53 + 1, 2**63, 2**70, -2**60, 1761232710000, 0, -1])
    | st.text(max_size=20)
    | st.sampled_from(["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "2024-06-01T10:00:00",
                       "2024-06-01T10:00:00+08:00", "general", "refund_only", "REFUND", "MERCHANT_PROCESSING"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_directory(RULES)


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every location in a JSON document (the root excluded)."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(path + (key,))
            out.extend(_places(value, path + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append(path + (index,))
            out.extend(_places(value, path + (index,)))
    return out


def _mutated(document: Any, place: tuple, value: Any) -> Any:
    copied = copy.deepcopy(document)
    node = copied
    for part in place[:-1]:
        node = node[part]
    node[place[-1]] = value
    return copied


def _answered_or_4xx(call) -> None:
    try:
        call()
    except ApiError as exc:
        assert 400 <= exc.status < 500, (exc.status, exc.code, exc.message)
    except EngineError as exc:
        error = from_engine_error(exc)
        assert 400 <= error.status < 500, f"{type(exc).__name__} maps to {error.status}: {exc}"


@FUZZ
@given(ticket=from_schema(TICKET_SCHEMA), actor=st.sampled_from(["merchant", "buyer"]),
       at=st.sampled_from([None, "2024-06-02T10:00:00+08:00", "2023-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00"]))
def test_schema_valid_tickets_are_answered_or_refused(engine, ticket, actor, at):
    _answered_or_4xx(lambda: engine.decide(ticket, actor, at=at))
    _answered_or_4xx(lambda: engine.check(ticket, "agree", {}, at=at))
    _answered_or_4xx(lambda: engine.apply(ticket, "timeout", at=at))


@FUZZ
@given(data=st.data(), value=json_values)
def test_a_ticket_broken_anywhere_is_refused_not_crashed(engine, data, value):
    place = data.draw(st.sampled_from(_places(TICKET)))
    ticket = _mutated(TICKET, place, value)
    _answered_or_4xx(lambda: engine.decide(ticket, "merchant", at="2024-06-02T10:00:00+08:00"))
    _answered_or_4xx(lambda: engine.check(ticket, "reject", {"reason": "x"}, at="2024-06-02T10:00:00+08:00"))


@FUZZ
@given(data=st.data(), value=json_values)
def test_a_platform_payload_broken_anywhere_is_answered_or_a_located_4xx(engine, data, value):
    fixture = data.draw(st.sampled_from(PLATFORM))
    payload = {"order": fixture["order"], "context": fixture["context"]}
    place = data.draw(st.sampled_from(_places(payload)))
    broken = _mutated(payload, place, value)
    body = {**broken, "actor": data.draw(st.sampled_from(["merchant", "buyer"])), "at": "2025-10-24T10:00:00+08:00"}
    _answered_or_4xx(lambda: platform_decide(engine, body))


@FUZZ
@given(data=st.data(), value=json_values)
def test_a_platform_check_body_broken_anywhere_is_answered_or_a_located_4xx(engine, data, value):
    request = data.draw(st.sampled_from(CHECK_BODIES))
    place = data.draw(st.sampled_from(_places(request)))
    body = _mutated(request, place, value)
    if not isinstance(body.get("order"), dict) or not isinstance(body.get("context"), dict) or not isinstance(body.get("body"), dict):
        return  # the envelope schema refuses these before the mapping runs (tests/test_service_contract.py)
    _answered_or_4xx(lambda: platform_check(engine, body))


def test_the_fixtures_are_what_the_fuzz_starts_from():
    assert len(PLATFORM) >= 5 and CHECK_BODIES and all({"order", "context"} <= set(p) for p in PLATFORM)
    assert all({"order", "context", "body"} <= set(b) for b in CHECK_BODIES), [sorted(b) for b in CHECK_BODIES]
