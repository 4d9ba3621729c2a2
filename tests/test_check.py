"""check: gate denials and payload rules as violations; malformed payloads as PayloadError."""
import json
from pathlib import Path

import jsonschema
import pytest

from decide_support import at, latest, receiving, situation, ticket, variant, with_pending
from engine.decisions.check import check
from engine.core.errors import PayloadError, UnknownActionError
from engine.decisions.payload import lua_pattern, match_carrier, payload_facts

ROOT = Path(__file__).resolve().parents[1]
RESULT_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "schemas" / "check.schema.json").read_text(encoding="utf-8")))
NOW = at("2024-06-02T10:00:00+08:00")
GOOD = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
        "refund_amount": 30000, "message": "已与您沟通，退款调整为300元", "evidence_count": 1}


def run(t, action, payload, when=NOW, policy=None):
    _, prepared = policy or latest()
    result = check(prepared, situation(prepared, t, when), action, payload).to_json()
    RESULT_SCHEMA.validate(result)
    return result


def found(result):
    return {(v["code"], v["field"]) for v in result["violations"]}


def proposal(**changes):
    out = dict(GOOD)
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def test_a_good_proposal_is_valid():
    result = run(ticket(), "negotiate", GOOD)
    assert result["valid"] is True and result["violations"] == []
    assert result["actor"] == "merchant" and result["action"] == "negotiate"
    assert result["policy"]["version"] == "2024-05-31"


def test_amount_above_paid():
    result = run(ticket(), "negotiate", proposal(refund_amount=40001))
    assert result["valid"] is False
    assert result["violations"] == [{"code": "AMOUNT_ABOVE_PAID", "field": "refund_amount",
                                      "message": result["violations"][0]["message"],
                                      "rule": "payload.amount_above_paid", "section": "二-2.1-(1)"}]


def test_return_refund_for_fresh_food():
    t = ticket(type="return_refund", scenario="damaged", order__category="fresh_food")
    payload = proposal(reason="return_plan_agreed", refund_type="return_refund")
    assert found(run(t, "negotiate", payload)) == {("REFUND_TYPE_NOT_ALLOWED", "refund_type")}
    fine = proposal(reason="fresh_refund_only_no_return", refund_type="refund_only")
    assert run(t, "negotiate", fine)["valid"] is True


def test_changed_buyer_reason_or_quantity():
    assert found(run(ticket(), "negotiate", proposal(buyer_reason="不想要了"))) == {("REASON_NOT_CHANGEABLE", "buyer_reason")}
    assert found(run(ticket(), "negotiate", proposal(quantity=2))) == {("QUANTITY_NOT_CHANGEABLE", "quantity")}
    same = proposal(buyer_reason="未收到货", quantity=1)
    assert run(ticket(), "negotiate", same)["valid"] is True


def test_refund_type_change_at_the_receiving_stage():
    payload = proposal(reason="partial_compensation", refund_type="refund_only", refund_amount=10000)
    result = run(receiving(), "negotiate", payload, when=at("2024-06-05T10:00:00+08:00"))
    assert found(result) == {("TYPE_CHANGE_AT_RECEIVING_STAGE", "refund_type")}
    amount_only = proposal(reason="return_plan_agreed", refund_type="return_refund", refund_amount=10000)
    assert run(receiving(), "negotiate", amount_only, when=at("2024-06-05T10:00:00+08:00"))["valid"] is True



def test_refund_type_contradicting_the_reason():
    t = ticket(scenario="quality_issue")
    result = run(t, "negotiate", proposal(reason="switch_to_return", refund_type="refund_only", evidence_count=0))
    assert found(result) == {("REASON_REFUND_TYPE_MISMATCH", "refund_type")}
    assert result["violations"][0]["rule"] == "payload.reason_refund_type_mismatch"
    assert result["violations"][0]["section"] == "三-3.1.2 注意事项c"
    # a reason naming no refund type (new_plan_agreed) carries either
    either = proposal(reason="new_plan_agreed", refund_type="return_refund")
    assert run(t, "negotiate", either)["valid"] is True


def test_reason_refund_type_fact():
    policy, _ = latest()
    facts = {"ticket_type": "refund_only", "requested_amount": 40000, "quantity": 1}
    t = ticket(scenario="quality_issue")

    def named_type(reason):
        return payload_facts(policy, t, facts, "negotiate", proposal(reason=reason))["p_reason_refund_type"]
    assert tuple(map(named_type, ("switch_to_return", "amount_only", "new_plan_agreed", "no_such_reason"))) == (
        "return_refund", "refund_only", "", "")

def test_missing_evidence_where_the_reason_requires_it():
    assert found(run(ticket(), "negotiate", proposal(evidence_count=0))) == {("EVIDENCE_REQUIRED", "evidence_count")}
    # switch_to_return needs no images
    payload = proposal(reason="switch_to_return", refund_type="return_refund", evidence_count=0)
    assert run(ticket(scenario="quality_issue"), "negotiate", payload)["valid"] is True

    def no_evidence(doc):
        doc["features"]["merchant_evidence"]["enabled"] = False
    assert run(ticket(), "negotiate", proposal(evidence_count=0), policy=variant(no_evidence))["valid"] is True


def test_third_negotiation_is_a_gate_violation():
    result = run(ticket(negotiation={"count": 2, "last_outcome": "rejected"}), "negotiate", GOOD)
    violation = result["violations"][0]
    assert (violation["code"], violation["field"], violation["rule"]) == (
        "NEGOTIATION_LIMIT_REACHED", None, "merchant.negotiate.limit")
    assert violation["unlock"] == {"kind": "never"}


def test_second_edit_is_a_gate_violation():
    assert found(run(with_pending(edits=1), "modify_negotiation", GOOD)) == {("EDIT_LIMIT_REACHED", None)}
    assert run(with_pending(edits=0), "modify_negotiation", GOOD)["valid"] is True


def test_empty_rejection_reason():
    for payload in ({"reason": ""}, {"reason": "   "}, {}):
        result = run(with_pending(), "reject_negotiation", payload)
        assert found(result) == {("REJECT_REASON_REQUIRED", "reason")}, payload
        assert result["actor"] == "buyer"
    assert run(with_pending(), "reject_negotiation", {"reason": "金额太低"})["valid"] is True


def test_reason_not_offered_for_the_scenario_or_type():
    # reshipped is offered for missing_items, not for not_received
    payload = proposal(type="invite_cancel", reason="reshipped", refund_type=None, refund_amount=None)
    assert found(run(ticket(), "negotiate", payload)) == {("REASON_NOT_OFFERED", "reason")}
    # contact_failed belongs to request_evidence, not modify_request
    assert ("REASON_NOT_OFFERED", "reason") in found(run(ticket(), "negotiate", proposal(reason="contact_failed")))
    # an unknown reason id is simply not offered
    assert ("REASON_NOT_OFFERED", "reason") in found(run(ticket(), "negotiate", proposal(reason="made_up")))


def test_types_other_than_modify_request_cannot_change_amount():
    payload = {"type": "invite_cancel", "reason": "shipped_intercept_failed", "refund_amount": 100,
               "evidence_count": 1}
    assert found(run(ticket(), "negotiate", payload)) == {("FIELD_NOT_CHANGEABLE", "refund_amount")}
    payload.pop("refund_amount")
    assert run(ticket(), "negotiate", payload)["valid"] is True


def test_gate_and_payload_violations_together():
    result = run(with_pending(edits=1), "modify_negotiation", proposal(refund_amount=99999, evidence_count=0))
    assert found(result) == {("EDIT_LIMIT_REACHED", None), ("AMOUNT_ABOVE_PAID", "refund_amount"),
                             ("EVIDENCE_REQUIRED", "evidence_count")}
    assert [t["rule"] for t in result["trace"]][0] == "merchant.modify_negotiation.edit_limit"


def test_return_logistics_fix():
    when = at("2024-06-05T10:00:00+08:00")
    assert run(receiving(), "modify_return_logistics", {"tracking_number": "SF1234567"}, when)["valid"] is True
    unmatched = run(receiving(), "modify_return_logistics", {"tracking_number": "XX-1"}, when)
    assert found(unmatched) == {("CARRIER_REQUIRED", "carrier")}
    chosen = {"tracking_number": "XX-1", "carrier": "邮政快递包裹"}
    assert run(receiving(), "modify_return_logistics", chosen, when)["valid"] is True
    assert found(run(receiving(), "modify_return_logistics", {"tracking_number": " "}, when)) == {
        ("TRACKING_NUMBER_REQUIRED", "tracking_number"), ("CARRIER_REQUIRED", "carrier")}
    used_up = receiving()
    used_up["return_logistics"]["fixes_used"] = 2
    assert found(run(used_up, "modify_return_logistics", {"tracking_number": "SF1"}, when)) == {
        ("TRACKING_FIX_LIMIT_REACHED", None)}


def test_plain_actions_take_an_empty_payload():
    assert run(ticket(), "agree", {})["valid"] is True
    result = run(ticket(), "reject", {})
    assert found(result) == {("NEGOTIATION_REQUIRED_FIRST", None)}
    assert result["violations"][0]["platform_error"] == 10021068


@pytest.mark.parametrize("action, payload, where, code", [
    ("negotiate", {**GOOD, "refund_amount": -1}, "/refund_amount", "negative_amount"),
    ("negotiate", {**GOOD, "refund_amount": "300"}, "/refund_amount", "wrong_type"),
    ("negotiate", {**GOOD, "colour": "red"}, "/colour", "unknown_field"),
    ("negotiate", {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only"},
     "/refund_amount", "missing_field"),
    ("negotiate", {**GOOD, "type": "haggle"}, "/type", "unknown_value"),
    ("reject_negotiation", {"reason": 3}, "/reason", "wrong_type"),
    ("agree", {"note": "ok"}, "/note", "unknown_field"),
    ("agree", [], "", "wrong_type"),
])
def test_malformed_payloads_raise_located_payload_errors(action, payload, where, code):
    _, prepared = latest()
    with pytest.raises(PayloadError) as info:
        check(prepared, situation(prepared, ticket(), NOW), action, payload)
    assert (where, code) in {(p.path, p.code) for p in info.value.problems}


def test_unknown_action():
    _, prepared = latest()
    with pytest.raises(UnknownActionError):
        check(prepared, situation(prepared, ticket(), NOW), "haggle", {})


def test_lua_patterns_and_carrier_matching():
    assert lua_pattern("SF%d+").fullmatch("SF123")
    assert not lua_pattern("SF%d+").fullmatch("SF12X")
    assert lua_pattern("JD%u*%d+").fullmatch("JDVA0012")
    assert lua_pattern("[34]%d%d").fullmatch("399") and not lua_pattern("[34]%d%d").fullmatch("599")
    assert lua_pattern("a.b").fullmatch("axb") and lua_pattern("a%.b").fullmatch("a.b")
    assert not lua_pattern("a%.b").fullmatch("axb")
    policy, _ = latest()
    assert match_carrier(policy, "YT8812345678") == "圆通速递"
    assert match_carrier(policy, "nothing") is None
