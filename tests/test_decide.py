"""decide: denials with rule, section and unlock; advice; negotiation constraints; deadlines;
version-dependent behaviour (features, templates, limits). Run on the bundled latest policy
through durable_rules (CompiledPolicy.fired)."""
import json
from pathlib import Path

import jsonschema
import pytest

from decide_support import at, latest, receiving, situation, ticket, variant, with_pending
from engine.decisions.decide import decide

ROOT = Path(__file__).resolve().parents[1]
DECISION_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "schemas" / "decision.schema.json").read_text(encoding="utf-8")))
NOW = at("2024-06-02T10:00:00+08:00")


def run(t, actor="merchant", when=NOW, policy=None):
    _, prepared = policy or latest()
    decision = decide(prepared, situation(prepared, t, when), actor).to_json()
    DECISION_SCHEMA.validate(decision)
    assert json.loads(json.dumps(decision)) == decision  # plain JSON types only
    return decision


def codes(decision, action):
    return [d["code"] for d in decision["actions"][action]["denials"]]


def test_new_ticket_in_a_negotiation_required_scenario():
    d = run(ticket())
    assert d["status"] == "merchant_processing" and d["pending_timed_out"] is False
    assert d["policy"] == {"version": "2024-05-31", "effective_from": "2024-05-31T00:00:00+08:00"}
    reject = d["actions"]["reject"]
    assert reject["allowed"] is False
    assert reject["denials"] == [{
        "code": "NEGOTIATION_REQUIRED_FIRST", "message": reject["denials"][0]["message"],
        "rule": "merchant.reject.negotiation_required", "section": "三-3.1.1-(2)",
        "unlock": {"kind": "input", "needs": "negotiation"}, "platform_error": 10021068}]
    assert [a["code"] for a in reject["advice"]] == ["REJECTION_GUIDED"]
    assert d["actions"]["agree"]["allowed"] is True
    assert d["actions"]["negotiate"]["allowed"] is True
    assert codes(d, "modify_negotiation") == ["NO_PENDING_PROPOSAL"]
    assert {"rule": "merchant.reject.negotiation_required", "section": "三-3.1.1-(2)"} in d["trace"]
    assert set(d["actions"]) == {"agree", "reject", "negotiate", "modify_negotiation", "extend_receipt",
                                 "modify_return_logistics", "intercept_logistics", "withdraw_negotiation"}
    assert codes(d, "withdraw_negotiation") == ["WITHDRAWAL_NOT_SUPPORTED"]


def test_negotiate_constraints_for_a_refund_only_ticket():
    c = run(ticket())["actions"]["negotiate"]["constraints"]
    types = {t["id"]: t for t in c["negotiation_types"]}
    assert list(types) == ["modify_request", "request_evidence", "invite_cancel"]
    assert types["modify_request"]["platform_code"] == 3
    assert types["modify_request"]["changeable_fields"] == ["refund_type", "refund_amount"]
    assert types["invite_cancel"]["changeable_fields"] == []
    amount_only = next(r for r in types["modify_request"]["reasons"] if r["id"] == "amount_only")
    assert amount_only["platform_code"] == 10 and amount_only["evidence_required"] is True
    assert "400.00元" in amount_only["message"]  # template rendered with this ticket's amount
    assert [r["id"] for r in types["request_evidence"]["reasons"]] == ["contact_failed", "verify_delivery_signed"]
    assert c["refund_types"] == ["refund_only", "return_refund"]
    assert c["max_refund_amount"] == 40000
    assert c["fixed_fields"] == ["buyer_reason", "quantity"]
    assert c["negotiations_remaining"] == 2
    assert c["edits_remaining"] is None


def test_reasons_are_filtered_by_ticket_type():
    t = ticket(type="return_refund", scenario="quality_issue")
    types = {x["id"]: x for x in run(t)["actions"]["negotiate"]["constraints"]["negotiation_types"]}
    ids = [r["id"] for r in types["modify_request"]["reasons"]]
    assert ids == ["fresh_refund_only_no_return", "return_plan_agreed", "partial_compensation"]


def test_reject_allowed_with_advice_once_a_negotiation_was_rejected():
    d = run(ticket(negotiation={"count": 1, "last_outcome": "rejected"}))
    assert d["actions"]["reject"]["allowed"] is True
    assert [a["code"] for a in d["actions"]["reject"]["advice"]] == ["REJECTION_GUIDED"]
    assert d["actions"]["negotiate"]["constraints"]["negotiations_remaining"] == 1


def test_rejection_allowed_scenario_has_no_advice():
    d = run(ticket(scenario="no_reason_7d"))
    assert d["actions"]["reject"] == {"allowed": True, "denials": [], "advice": []}


def test_pending_proposal_blocks_the_merchant_until_the_deadline():
    d = run(with_pending())
    assert d["status"] == "awaiting_buyer_response"
    for action in ("agree", "negotiate"):
        denial = d["actions"][action]["denials"][0]
        assert denial["code"] == "AWAITING_BUYER_RESPONSE"
        assert denial["unlock"] == {"kind": "time", "available_at": "2024-06-03T12:00:00+08:00"}
    assert d["actions"]["modify_negotiation"]["allowed"] is True
    assert d["actions"]["modify_negotiation"]["constraints"]["edits_remaining"] == 1
    assert d["deadlines"]["buyer_response"] == "2024-06-03T12:00:00+08:00"


def test_second_edit_is_denied():
    d = run(with_pending(edits=1))
    denial = d["actions"]["modify_negotiation"]["denials"][0]
    assert (denial["code"], denial["unlock"]) == ("EDIT_LIMIT_REACHED", {"kind": "never"})
    assert d["actions"]["modify_negotiation"]["constraints"]["edits_remaining"] == 0


def test_timed_out_proposal_hands_the_ticket_back():
    d = run(with_pending(), when=at("2024-06-04T10:00:00+08:00"))
    assert d["status"] == "merchant_processing" and d["pending_timed_out"] is True
    assert d["actions"]["agree"]["allowed"] is True
    assert d["actions"]["reject"]["allowed"] is True  # the buyer let it time out: tried
    assert d["actions"]["negotiate"]["constraints"]["negotiations_remaining"] == 1
    assert codes(d, "modify_negotiation") == ["NO_PENDING_PROPOSAL"]
    assert d["deadlines"]["buyer_response"] is None


def test_third_negotiation_is_denied():
    d = run(ticket(negotiation={"count": 2, "last_outcome": "rejected"}))
    denial = d["actions"]["negotiate"]["denials"][0]
    assert (denial["code"], denial["rule"], denial["section"]) == (
        "NEGOTIATION_LIMIT_REACHED", "merchant.negotiate.limit", "二-2.1-(3)")
    assert d["actions"]["negotiate"]["constraints"]["negotiations_remaining"] == 0


def test_fresh_food_negotiates_refund_only():
    d = run(ticket(type="return_refund", scenario="damaged", order__category="fresh_food"))
    assert d["actions"]["negotiate"]["constraints"]["refund_types"] == ["refund_only"]
    assert {"rule": "merchant.negotiate.category_refund_only", "section": "二-2.3-(3)"} in d["trace"]



def modify_request_reasons(decision, action="negotiate"):
    types = {x["id"]: x for x in decision["actions"][action]["constraints"]["negotiation_types"]}
    return [r["id"] for r in types["modify_request"]["reasons"]]


def test_reasons_naming_a_refund_type_the_ticket_cannot_take_are_not_offered():
    general = ticket(scenario="quality_issue")
    assert "switch_to_return" in modify_request_reasons(run(general))
    # 二-2.3-(3): fresh food is refund-only, so 修改为退货退款 is not offered
    assert modify_request_reasons(run(ticket(scenario="quality_issue", order__category="fresh_food"))) == [
        "new_plan_agreed", "amount_only"]
    # 三-3.1.2 注意事项b: at the receiving stage the type stays return_refund
    assert modify_request_reasons(run(receiving(), when=at("2024-06-05T10:00:00+08:00"))) == ["return_plan_agreed"]


def test_the_reason_filter_reads_the_policy_refund_type():
    def drop_refund_type(doc):
        for reason in doc["reasons"]:
            reason.pop("refund_type", None)
    fresh = ticket(scenario="quality_issue", order__category="fresh_food")
    assert "switch_to_return" in modify_request_reasons(run(fresh, policy=variant(drop_refund_type)))

def test_receiving_stage_only_amount_changes_and_extension_too_early():
    d = run(receiving(), when=at("2024-06-05T10:00:00+08:00"))
    negotiate = d["actions"]["negotiate"]
    assert negotiate["allowed"] is True
    modify = negotiate["constraints"]["negotiation_types"][0]
    assert modify["changeable_fields"] == ["refund_amount"]
    extend = d["actions"]["extend_receipt"]
    assert codes(d, "extend_receipt") == ["TOO_EARLY_TO_EXTEND"]
    assert extend["denials"][0]["unlock"] == {"kind": "time", "available_at": "2024-06-07T10:00:00+08:00"}
    assert d["actions"]["modify_return_logistics"]["allowed"] is True
    assert d["deadlines"]["receipt"] == "2024-06-10T10:00:00+08:00"
    assert d["deadlines"]["receipt_if_extended"] == "2024-06-14T10:00:00+08:00"
    assert d["actions"]["agree"]["allowed"] is True


def test_extension_allowed_inside_the_window_and_refused_once_used():
    assert run(receiving(), when=at("2024-06-08T10:00:00+08:00"))["actions"]["extend_receipt"]["allowed"] is True
    used = receiving()
    used["return_logistics"]["extension_used"] = True
    d = run(used, when=at("2024-06-08T10:00:00+08:00"))
    assert codes(d, "extend_receipt") == ["EXTENSION_ALREADY_USED"]
    assert d["deadlines"]["receipt_if_extended"] is None


def test_signed_during_extension_sets_processing_deadline():
    t = receiving()
    t["return_logistics"].update(extension_used=True, signed_at="2024-06-12T15:30:00+08:00",
                                 receipt_deadline="2024-06-14T10:00:00+08:00")
    d = run(t, when=at("2024-06-13T10:00:00+08:00"))
    assert d["deadlines"]["processing_after_sign"] == "2024-06-14T15:30:00+08:00"
    assert set(codes(d, "extend_receipt")) == {"RETURN_ALREADY_SIGNED", "EXTENSION_ALREADY_USED"}


def test_intercept_only_before_negotiation():
    assert run(ticket())["actions"]["intercept_logistics"]["allowed"] is True
    d = run(ticket(negotiation={"count": 1, "last_outcome": "rejected"}))
    assert codes(d, "intercept_logistics") == ["INTERCEPT_AFTER_NEGOTIATION"]


def test_buyer_actions():
    d = run(with_pending(), actor="buyer")
    assert set(d["actions"]) == {"accept_negotiation", "reject_negotiation", "contact_merchant",
                                 "cancel_aftersale", "modify_aftersale", "request_platform_intervention",
                                 "update_return_logistics"}
    # 修改物流信息 is the buyer's button only for a proposal made at the receiving stage (三-3.2.1)
    assert all(a["allowed"] for name, a in d["actions"].items() if name != "update_return_logistics")
    assert [x["code"] for x in d["actions"]["update_return_logistics"]["denials"]] == ["NOT_A_RECEIVING_STAGE_NEGOTIATION"]
    assert "constraints" not in d["actions"]["accept_negotiation"]
    evidence = with_pending(type="request_evidence", reason="contact_failed")
    assert codes(run(evidence, actor="buyer"), "accept_negotiation") == ["NOT_ANSWERABLE"]
    closed = run(ticket(status="refunded"), actor="buyer")
    assert codes(closed, "cancel_aftersale") == ["TICKET_CLOSED"]
    assert codes(closed, "accept_negotiation") == ["NO_PENDING_PROPOSAL"]


def test_disabled_features_templates_and_evidence():
    def older(doc):
        doc["features"]["extend_receipt"]["enabled"] = False
        doc["features"]["message_templates"]["enabled"] = False
        doc["features"]["merchant_evidence"]["enabled"] = False
    d = run(receiving(), when=at("2024-06-08T10:00:00+08:00"), policy=variant(older))
    assert codes(d, "extend_receipt") == ["FEATURE_NOT_IN_POLICY"]
    reasons = [r for t in d["actions"]["negotiate"]["constraints"]["negotiation_types"] for r in t["reasons"]]
    assert reasons and all(r["message"] is None and r["evidence_required"] is False for r in reasons)


def test_no_negotiation_limit_means_null_remaining_and_no_denial():
    def unlimited(doc):
        doc["limits"]["negotiations_per_ticket"]["value"] = None
    d = run(ticket(negotiation={"count": 5, "last_outcome": "rejected"}), policy=variant(unlimited))
    assert d["actions"]["negotiate"]["allowed"] is True
    assert d["actions"]["negotiate"]["constraints"]["negotiations_remaining"] is None


def test_at_is_rendered_in_the_policy_zone():
    assert run(ticket(), when=at("2024-06-02T02:00:00Z"))["at"] == "2024-06-02T10:00:00+08:00"


def test_templates_render_placeholders_for_this_ticket():
    from engine.decisions.render import render, yuan

    assert (yuan(12345), yuan(5), yuan(40000)) == ("123.45", "0.05", "400.00")
    assert render("退款{refund_amount_yuan}元，{unknown}", {"refund_amount_yuan": "1.00"}) == "退款1.00元，{unknown}"
    t = ticket(scenario="quality_issue", request__refund_amount=12345)
    types = {x["id"]: x for x in run(t)["actions"]["negotiate"]["constraints"]["negotiation_types"]}
    photos = next(r for r in types["request_evidence"]["reasons"] if r["id"] == "add_problem_photos")
    assert "商品质量问题" in photos["message"] and "{" not in photos["message"]
    amount = next(r for r in types["modify_request"]["reasons"] if r["id"] == "amount_only")
    assert "123.45元" in amount["message"]


def test_a_bundle_durable_refuses_builds_no_engine_and_leaks_no_ruleset(monkeypatch):
    """Engine opens every version's rulesets at build: a failure on a later version closes the
    earlier ones (the service relies on a failed build holding nothing before it keeps the old)."""
    from engine import api
    from engine.policy.bundle import load_directory
    from engine.rules.durable import RulesetRunner, RuntimeFault

    bundle = load_directory(api.default_rules_dir())
    real_open = api.CompiledPolicy.open
    calls = []

    def failing_open(self):
        calls.append(self.version)
        if len(calls) == 3:
            raise RuntimeFault("durable_rules rejected the ruleset (simulated)")
        return real_open(self)

    before = set(RulesetRunner._names_in_use)
    monkeypatch.setattr(api.CompiledPolicy, "open", failing_open)
    with pytest.raises(RuntimeFault):
        api.Engine(bundle)
    assert len(calls) == 3
    assert set(RulesetRunner._names_in_use) == before
