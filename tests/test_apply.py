"""apply: the buyer's gate, then the outcome rule: status, effects, deadlines, rule, section."""
import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from decide_support import at, latest, receiving, situation, ticket, with_pending
from engine.decisions.apply import apply
from engine.core.errors import UnknownActionError

ROOT = Path(__file__).resolve().parents[1]
_schemas = {name: json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
            for name in ("apply.schema.json", "check.schema.json")}
_registry = Registry().with_resources(
    (f"https://aftersale-policy.local/schemas/{name}", Resource.from_contents(doc)) for name, doc in _schemas.items())
RESULT_SCHEMA = jsonschema.Draft202012Validator(_schemas["apply.schema.json"], registry=_registry)
NOW = at("2024-06-02T10:00:00+08:00")
LATE = at("2024-06-03T12:00:00+08:00")  # the pending proposal's deadline


def run(t, answer, when=NOW, reason="金额不合理"):
    """`reason`: the buyer's rejection reason (三-3.2.1 requires one; ignored for other answers)."""
    _, prepared = latest()
    result = apply(prepared, situation(prepared, t, when), answer, reason).to_json()
    RESULT_SCHEMA.validate(result)
    return result


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_rejection_without_a_reason_is_refused_like_check_refuses_it(reason):
    """Issue 10 item 11: 三-3.2.1 「输入拒绝原因后可点击提交」; apply agrees with check reject_negotiation."""
    result = run(with_pending_in("no_reason_7d"), "reject", reason=reason)
    assert result["allowed"] is False and result["status"] == "awaiting_buyer_response"
    assert [(v["code"], v["field"], v["rule"]) for v in result["violations"]] == [
        ("REJECT_REASON_REQUIRED", "reason", "payload.reject_reason_empty")]
    assert result["effects"] == []


def test_accept_refund_only_refunds_the_proposed_amount():
    result = run(with_pending(), "accept")
    assert result["allowed"] is True and result["violations"] == []
    assert result["status"] == "refunding"
    assert result["effects"] == [{"effect": "auto_refund", "refund_amount": 30000}]
    assert (result["rule"], result["section"]) == ("outcome.accept.refund_only", "三-3.1.2 注意事项a")
    assert result["deadlines"]["buyer_response"] is None
    assert result["trace"] == [{"rule": "outcome.accept.refund_only", "section": "三-3.1.2 注意事项a"}]


def test_accept_return_refund_starts_the_return_flow():
    result = run(with_pending(refund_type="return_refund", reason="switch_to_return"), "accept")
    assert (result["status"], result["effects"]) == ("awaiting_buyer_return", [{"effect": "return_flow"}])


def test_accept_at_the_receiving_stage_refunds():
    t = receiving(status="awaiting_buyer_response",
                  negotiation={"count": 1, "last_outcome": "pending", "pending": {
                      "type": "modify_request", "reason": "return_plan_agreed", "refund_type": "return_refund",
                      "refund_amount": 20000, "proposed_at": "2024-06-05T10:00:00+08:00",
                      "stage": "awaiting_merchant_receipt", "evidence_count": 1}})
    result = run(t, "accept", at("2024-06-06T10:00:00+08:00"))
    assert result["status"] == "refunding"
    assert result["effects"] == [{"effect": "auto_refund", "refund_amount": 20000}]
    assert result["rule"] == "outcome.accept.receiving_stage"
    assert result["deadlines"]["receipt"] == "2024-06-10T10:00:00+08:00"


def test_accept_invite_cancel_closes_and_the_buyer_may_reapply():
    result = run(with_pending(type="invite_cancel", reason="shipped_intercept_failed",
                              refund_type=None, refund_amount=None), "accept")
    assert result["status"] == "cancelled"
    assert result["effects"] == [{"effect": "closed", "may_reapply": True}]


def test_reject_goes_back_to_the_merchant_or_escalates():
    calm = run(with_pending_in("no_reason_7d"), "reject")
    assert calm["status"] == "merchant_processing"
    assert calm["effects"] == [{"effect": "back_to_merchant",
                                "buyer_may": ["modify_aftersale", "cancel_aftersale", "request_platform_intervention"]}]
    assert calm["rule"] == "outcome.reject.back_to_merchant"
    hot = run(with_pending(), "reject")  # not_received: the platform steps in (二-2.3-(2))
    assert hot["status"] == "platform_intervention"
    assert hot["effects"] == [{"effect": "platform_intervention"}]
    assert hot["section"] == "二-2.3-(2)"


def test_timeout_only_after_the_deadline():
    early = run(with_pending(), "timeout")
    assert early["allowed"] is False and early["status"] == "awaiting_buyer_response"
    assert early["violations"][0]["code"] == "NOT_TIMED_OUT"
    assert early["violations"][0]["unlock"] == {"kind": "time", "available_at": "2024-06-03T12:00:00+08:00"}
    late = run(with_pending(), "timeout", LATE)
    assert late["allowed"] is True and late["status"] == "merchant_processing"
    assert late["effects"][0]["effect"] == "back_to_merchant"
    assert late["rule"] == "outcome.timeout"
    nothing = run(ticket(), "timeout")
    assert [v["code"] for v in nothing["violations"]] == ["NO_PENDING_PROPOSAL"]


def test_buyer_gate_refusals():
    expired = run(with_pending(), "accept", LATE)
    assert expired["allowed"] is False and expired["effects"] == [] and expired["rule"] is None
    assert [v["code"] for v in expired["violations"]] == ["PROPOSAL_TIMED_OUT"]
    evidence = run(with_pending(type="request_evidence", reason="contact_failed"), "accept")
    assert [v["code"] for v in evidence["violations"]] == ["NOT_ANSWERABLE"]
    assert [v["code"] for v in run(ticket(), "reject")["violations"]] == ["NO_PENDING_PROPOSAL"]


def test_unknown_answer():
    _, prepared = latest()
    with pytest.raises(UnknownActionError):
        apply(prepared, situation(prepared, with_pending(), NOW), "maybe")


def with_pending_in(scenario):
    t = with_pending()
    t["scenario"] = scenario
    return t
