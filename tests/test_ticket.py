"""validate_ticket / parse_time: every problem located, cross-field checks, examples valid."""
import copy
import json
from pathlib import Path

import pytest

from engine.core.errors import TicketError
from engine.decisions.ticket import parse_time, validate_ticket

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "tickets").glob("*.json"))

GOOD = {
    "ticket_id": "AS-1", "type": "refund_only", "status": "merchant_processing",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1},
}


def problems(ticket) -> dict[str, str]:
    with pytest.raises(TicketError) as info:
        validate_ticket(ticket)
    return {p.path: p.code for p in info.value.problems}


def changed(**paths):
    t = copy.deepcopy(GOOD)
    for key, value in paths.items():
        node, parts = t, key.split("__")
        for part in parts[:-1]:
            node = node[part]
        if value is None and parts[-1].startswith("del_"):
            del node[parts[-1][4:]]
        else:
            node[parts[-1]] = value
    return t


def test_examples_are_valid():
    assert len(EXAMPLES) >= 4
    for path in EXAMPLES:
        ticket = json.loads(path.read_text(encoding="utf-8"))
        assert validate_ticket(ticket) is ticket, path.name


def test_valid_ticket_is_returned_unchanged():
    t = copy.deepcopy(GOOD)
    assert validate_ticket(t) is t
    assert t == GOOD


def test_naive_time_is_refused_naming_the_field():
    found = problems(changed(created_at="2024-06-01T10:00:00"))
    assert found == {"/created_at": "naive_time"}


def test_impossible_date_is_refused():
    assert problems(changed(created_at="2024-02-30T10:00:00+08:00")) == {"/created_at": "bad_time"}


def test_negative_amount_unknown_enum_missing_field_all_reported_at_once():
    t = changed(order__paid_amount=-1, status="done", request__del_refund_amount=None, extra=1)
    assert problems(t) == {
        "/order/paid_amount": "negative_amount",
        "/status": "unknown_value",
        "/request/refund_amount": "missing_field",
        "/extra": "unknown_field",
    }


def test_boolean_is_not_an_amount_and_float_is_not_fen():
    assert problems(changed(order__paid_amount=True)) == {"/order/paid_amount": "wrong_type"}
    assert problems(changed(order__paid_amount=12.5)) == {"/order/paid_amount": "wrong_type"}


def test_pending_proposal_requires_awaiting_buyer_response():
    pending = {"type": "amount_only", "reason": "x", "proposed_at": "2024-06-01T12:00:00+08:00"}
    found = problems(changed(negotiation={"count": 1, "pending": pending}))
    assert found == {"/negotiation/pending/type": "unknown_value"}
    pending["type"] = "modify_request"
    found = problems(changed(negotiation={"count": 1, "pending": pending}))
    # status merchant_processing with a pending proposal; modify_request without its fields
    assert found == {"/negotiation/pending": "pending_without_status",
                     "/negotiation/pending/refund_type": "missing_field",
                     "/negotiation/pending/refund_amount": "missing_field"}


def test_awaiting_buyer_response_requires_a_pending_proposal():
    assert problems(changed(status="awaiting_buyer_response")) == {"/negotiation/pending": "missing_field"}


def test_amount_and_quantity_above_the_order():
    found = problems(changed(request__refund_amount=40001, request__quantity=2))
    assert found == {"/request/refund_amount": "amount_above_paid", "/request/quantity": "quantity_above_ordered"}


def test_return_statuses_only_for_return_refund():
    assert problems(changed(status="awaiting_merchant_receipt")) == {"/status": "status_type_mismatch"}


def test_not_an_object():
    with pytest.raises(TicketError) as info:
        validate_ticket([1])
    assert info.value.problems[0].code == "wrong_type"


def test_parse_time():
    assert parse_time("2024-06-01T10:00:00+08:00").utcoffset().total_seconds() == 8 * 3600
    assert parse_time("2024-06-01T02:00:00Z") == parse_time("2024-06-01T10:00:00+08:00")
    with pytest.raises(TicketError) as info:
        parse_time("2024-06-01T10:00:00", "--at")
    assert info.value.problems[0].code == "naive_time"
    assert "--at" in str(info.value)
    with pytest.raises(TicketError):
        parse_time("yesterday", "/created_at")


def test_every_schema_spells_a_time_the_way_the_library_checks_it():
    """One time syntax across the contract: the library (jsoncheck.TIME_PATTERN, used for `at`
    and ticket times) and every schema's `time` pattern agree, so HTTP and library accept and
    refuse the same strings."""
    from engine.core.jsonschema_errors import TIME_PATTERN
    from engine.core.resources import SCHEMAS_DIR

    patterns = {}
    for path in [SCHEMAS_DIR / "ticket.schema.json", SCHEMAS_DIR / "policytest.schema.json",
                 SCHEMAS_DIR / "requests" / "common.schema.json"]:
        text = path.read_text(encoding="utf-8")
        for found in json.loads(text).get("$defs", {}).values():
            if isinstance(found, dict) and "[T ]" in found.get("pattern", ""):
                patterns[path.name] = found["pattern"]
    assert set(patterns) == {"ticket.schema.json", "policytest.schema.json", "common.schema.json"}
    assert set(patterns.values()) == {TIME_PATTERN}


@pytest.mark.parametrize("text, code", [
    ("2024-06-02T10:00:00+08", "bad_time"),        # fromisoformat accepts, the contract does not
    ("20240602T100000+0800", "bad_time"),
    ("2024-06-02T10:00:00", "naive_time"),
    ("tomorrow", "bad_time"),
])
def test_engine_at_follows_the_contracts_time_syntax(text, code):
    from engine import Engine
    from engine.core.errors import TicketError

    with pytest.raises(TicketError) as caught:
        Engine._resolve_at(text)
    assert [(p.path, p.code) for p in caught.value.problems] == [("/at", code)]


def test_every_schema_names_the_actions_of_the_vocabulary():
    """The action names are listed in several schemas (the contract) and in engine/vocabulary.py
    (the code): they must be the same list everywhere, so adding an action is one visible change."""
    from engine.core.resources import SCHEMAS_DIR
    from engine.core.vocabulary import BUYER_ACTIONS, MERCHANT_ACTIONS

    actions = set(MERCHANT_ACTIONS) | set(BUYER_ACTIONS)
    found = {}

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            if "accept_negotiation" in node and "agree" in node:  # an enum of action names
                found[where] = set(node) - {"timeout"}
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    for path in sorted(SCHEMAS_DIR.rglob("*.schema.json")):
        walk(json.loads(path.read_text(encoding="utf-8")), path.name)
    assert len(found) >= 5, found.keys()
    assert {where: names for where, names in found.items() if names != actions} == {}
    payloads = json.loads((SCHEMAS_DIR / "check.schema.json").read_text(encoding="utf-8"))["$defs"]["payloads"]
    assert set(payloads) == actions  # every action has its payload shape for `check`
