"""build_facts: the full fact table, normalized; the pending-timeout rule; optional facts."""

import pytest

from decide_support import DROP, at, latest, receiving, ticket, with_pending
from engine.core.errors import TicketError
from engine.decisions.facts import build_facts
from engine.rules.durable import validate_facts

ALWAYS = {
    "ticket_id", "stage", "actor", "now", "ticket_type", "status", "scenario", "scenario_rejection",
    "escalates_on_buyer_reject", "category", "category_allows_return", "goods_kind", "paid_amount",
    "requested_amount", "quantity", "order_shipped", "negotiations_used", "negotiation_tried",
    "last_outcome", "has_pending", "pending_expired", "pending_type", "pending_refund_type",
    "pending_edits", "pending_stage", "return_uploaded", "return_signed", "receipt_extension_used",
    "tracking_fixes_used", "intercept_requested", "buyer_evidence_count", "complaint_open", "aftersale_period_over",
}
OPTIONAL = {"buyer_response_deadline", "receipt_deadline", "receipt_seconds_left"}
NOW = at("2024-06-02T10:00:00+08:00")


def facts_of(t, when=NOW, **kw):
    policy, compiled = latest()
    facts = build_facts(policy, t, kw.pop("actor", "merchant"), when, **kw)
    validate_facts(facts, compiled.compiled.fact_types)  # what the runtime will accept
    return facts


def test_plain_ticket_has_every_fact_and_no_optional_one():
    facts = facts_of(ticket())
    assert set(facts) == ALWAYS
    assert facts["now"] == int(NOW.timestamp())
    assert facts["status"] == "merchant_processing"
    assert facts["scenario_rejection"] == "negotiation_required"
    assert facts["escalates_on_buyer_reject"] is True          # not_received escalates
    assert facts["category_allows_return"] is True
    assert facts["last_outcome"] == "none" and facts["negotiation_tried"] is False
    assert facts["pending_type"] == "" and facts["pending_edits"] == 0
    assert all(value is not None and not isinstance(value, float) for value in facts.values())


def test_pending_within_its_window():
    facts = facts_of(with_pending())
    assert facts["status"] == "awaiting_buyer_response"
    assert facts["has_pending"] is True and facts["pending_expired"] is False
    assert facts["buyer_response_deadline"] == int(at("2024-06-03T12:00:00+08:00").timestamp())
    assert facts["pending_type"] == "modify_request"
    assert facts["pending_refund_type"] == "refund_only"
    assert facts["pending_stage"] == "merchant_processing"
    assert facts["negotiation_tried"] is False
    assert facts["last_outcome"] == "pending"


def test_pending_times_out_exactly_at_its_deadline():
    t = with_pending()
    before = facts_of(t, at("2024-06-03T11:59:59+08:00"))
    assert before["has_pending"] is True
    facts = facts_of(t, at("2024-06-03T12:00:00+08:00"))
    assert facts["status"] == "merchant_processing"
    assert facts["pending_expired"] is True and facts["has_pending"] is False
    assert facts["negotiation_tried"] is True
    assert facts["last_outcome"] == "timed_out"
    assert facts["pending_type"] == "" and "buyer_response_deadline" not in facts
    assert facts["negotiations_used"] == 1  # the timed-out proposal still counts


def test_negotiation_tried_after_rejection_or_an_earlier_proposal():
    assert facts_of(ticket(negotiation={"count": 1, "last_outcome": "rejected"}))["negotiation_tried"] is True
    assert facts_of(with_pending(count=2))["negotiation_tried"] is True
    assert facts_of(with_pending(count=1))["negotiation_tried"] is False


def test_category_drives_return_and_escalation():
    facts = facts_of(ticket(scenario="no_reason_7d", order__category="fresh_food"))
    assert facts["category_allows_return"] is False
    assert facts["escalates_on_buyer_reject"] is True  # from the category, the scenario says no
    facts = facts_of(ticket(scenario="no_reason_7d"))
    assert facts["escalates_on_buyer_reject"] is False


def test_receipt_facts():
    facts = facts_of(receiving(), at("2024-06-08T10:00:00+08:00"))
    assert facts["return_uploaded"] is True and facts["return_signed"] is False
    assert facts["receipt_deadline"] == int(at("2024-06-10T10:00:00+08:00").timestamp())
    assert facts["receipt_seconds_left"] == 48 * 3600
    assert facts["tracking_fixes_used"] == 0


def test_payload_stage_and_extra_facts():
    facts = facts_of(ticket(), stage="payload", extra={"p_refund_amount": 5})
    assert facts["stage"] == "payload" and facts["p_refund_amount"] == 5


def test_unknown_scenario_or_category_is_a_ticket_error():
    policy, _ = latest()
    with pytest.raises(TicketError) as info:
        build_facts(policy, ticket(scenario="teleported", order__category="moon_rock"), "merchant", NOW)
    assert [p.path for p in info.value.problems] == ["/scenario", "/order/category"]


def test_evidence_count_default_and_value():
    assert facts_of(ticket(request__evidence_count=DROP))["buyer_evidence_count"] == 0
    assert facts_of(ticket(request__evidence_count=3))["buyer_evidence_count"] == 3


def test_fact_names_and_types_match_the_shared_fact_table():
    from engine.core.factnames import FACTS
    from engine.decisions.payload import payload_facts

    expected = {name for name, spec in FACTS.items()
                if spec.stage is None and not spec.optional and name not in ("p_type", "p_refund_type")}
    policy, _ = latest()
    t = receiving(status="awaiting_buyer_response", negotiation={"count": 1, "pending": {
        "type": "modify_request", "reason": "return_plan_agreed", "refund_type": "return_refund",
        "refund_amount": 100, "proposed_at": "2024-06-05T10:00:00+08:00", "stage": "awaiting_merchant_receipt"}})
    gate = facts_of(t, at("2024-06-06T10:00:00+08:00"))
    assert set(gate) - OPTIONAL == expected
    payloads = {
        "negotiate": {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                      "refund_amount": 1, "quantity": 1, "buyer_reason": "x"},
        "reject_negotiation": {"reason": "no"},
        "modify_return_logistics": {"tracking_number": "SF1"},
    }
    python_type = {"str": str, "int": int, "bool": bool}
    for action, payload in payloads.items():
        extra = payload_facts(policy, t, gate, action, payload)
        assert extra and set(extra) <= set(FACTS), action
        for name, value in {**gate, **extra}.items():
            assert type(value) is python_type[FACTS[name].type], (name, value)
