"""One test per changelog item the policy declares (`changes:` of each version, 12 in all): the
item's rule or value is observable in its version and NOT in the version before, shown by a
decision, check or apply that differs. The table below must name exactly the declared items, so
a new item without a test (or a test for an item no longer declared) fails."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest

from engine.api import Engine
from engine.core.errors import TicketError
from engine.core.resources import REPO_ROOT
from engine.core.timeutil import parse_aware

RULES_DIR = REPO_ROOT / "rules"
AT = "2024-06-10T12:00:00+08:00"  # one moment for both versions: only the policy differs

BASE = {
    "ticket_id": "T-CHANGELOG", "type": "refund_only", "status": "merchant_processing",
    "scenario": "no_reason_7d", "buyer_reason": "七天无理由退货", "created_at": "2024-01-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
}


def ticket(**changes) -> dict:
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def hours_before(hours: float, at: str = AT) -> str:
    return (parse_aware(at) - timedelta(hours=hours)).isoformat()


def pending(hours_ago: float = 6, **fields) -> dict:
    proposal = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                "refund_amount": 30000, "proposed_at": hours_before(hours_ago), "edits": 0, "evidence_count": 1}
    proposal.update(fields)
    return {"status": "awaiting_buyer_response",
            "negotiation": {"count": 1, "last_outcome": "pending", "pending": proposal}}


def action(decision: dict, name: str) -> dict:
    return decision["actions"][name]


def denial_codes(decision: dict, name: str) -> list[str]:
    return sorted(d["code"] for d in action(decision, name)["denials"])


def reasons_offered(decision: dict, negotiation_type: str) -> dict[str, dict]:
    types = action(decision, "negotiate")["constraints"]["negotiation_types"]
    (found,) = [t for t in types if t["id"] == negotiation_type]
    return {r["id"]: r for r in found["reasons"]}


# -- one probe per item: engine, version -> an observable value --------------------------------------

def rejection_guidance(eng, version):
    d = eng.decide(ticket(scenario="not_as_described", buyer_reason="描述不符"), "merchant", AT, version)
    return sorted(a["code"] for a in action(d, "reject")["advice"])


def scenarios_refined(eng, version):
    d = eng.decide(ticket(scenario="quality_issue", buyer_reason="商品质量问题"), "merchant", AT, version)
    try:
        eng.decide(ticket(scenario="perished", buyer_reason="生鲜腐坏"), "merchant", AT, version)
        perished = True
    except TicketError:
        perished = False
    return {"switch_to_return offered": "switch_to_return" in reasons_offered(d, "modify_request"),
            "perished scenario": perished}


def buyer_window(eng, version):
    d = eng.decide(ticket(**pending(hours_ago=30)), "merchant", AT, version)  # the 30th hour
    return {"pending_timed_out": d["pending_timed_out"], "negotiate": denial_codes(d, "negotiate")}


def negotiation_limit(eng, version):
    d = eng.decide(ticket(negotiation={"count": 2, "last_outcome": "rejected"}), "merchant", AT, version)
    return denial_codes(d, "negotiate")


def reject_escalates(eng, version):
    t = ticket(scenario="not_received", buyer_reason="未收到货", **pending())
    return eng.apply(t, "reject", AT, version, reason="不同意")["status"]


def types_and_reasons(eng, version):
    d = eng.decide(ticket(scenario="not_received", buyer_reason="未收到货"), "merchant", AT, version)
    types = {t["id"]: t for t in action(d, "negotiate")["constraints"]["negotiation_types"]}
    return {"request_evidence label": types["request_evidence"]["label"],
            "new_plan_agreed offered": "new_plan_agreed" in reasons_offered(d, "modify_request"),
            "contact_failed platform_code": reasons_offered(d, "request_evidence")["contact_failed"]["platform_code"]}


def modify_negotiation(eng, version):
    d = eng.decide(ticket(**pending()), "merchant", AT, version)
    return denial_codes(d, "modify_negotiation")


def intercept(eng, version):
    fresh = eng.decide(ticket(scenario="not_received", buyer_reason="未收到货"), "merchant", AT, version)
    after = eng.decide(ticket(negotiation={"count": 1, "last_outcome": "rejected"}), "merchant", AT, version)
    return {"before negotiation": denial_codes(fresh, "intercept_logistics"),
            "after negotiation": denial_codes(after, "intercept_logistics")}


def negotiation_required(eng, version):
    d = eng.decide(ticket(scenario="not_received", buyer_reason="未收到货"), "merchant", AT, version)
    return {"denials": denial_codes(d, "reject"),
            "platform_errors": [x.get("platform_error") for x in action(d, "reject")["denials"]]}


def message_templates(eng, version):
    d = eng.decide(ticket(), "merchant", AT, version)
    message = reasons_offered(d, "modify_request")["amount_only"]["message"]
    return None if message is None else ("400.00元" in message)


def merchant_evidence(eng, version):
    payload = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
               "refund_amount": 30000, "evidence_count": 0, "message": "已与您沟通"}
    result = eng.check(ticket(), "negotiate", payload, AT, version)
    return sorted(v["code"] for v in result["violations"])


def related_features(eng, version):
    t = ticket(type="return_refund", status="awaiting_merchant_receipt",
               return_logistics={"tracking_number": "SF1234567890", "uploaded_at": hours_before(48),
                                 "receipt_deadline": hours_before(-24), "extension_used": False, "fixes_used": 0})
    d = eng.decide(t, "merchant", AT, version)
    return {"extend_receipt": denial_codes(d, "extend_receipt"),
            "modify_return_logistics": denial_codes(d, "modify_return_logistics"),
            "receipt_if_extended": d["deadlines"]["receipt_if_extended"]}


# item id -> (version that declares it, probe, value in that version, value in the version before)
ITEMS = {
    "rejection-guidance-added": ("2024-03-11", rejection_guidance, ["REJECTION_GUIDED"], []),
    "scenarios-refined-reasons-added": (
        "2024-03-11", scenarios_refined,
        {"switch_to_return offered": True, "perished scenario": True},
        {"switch_to_return offered": False, "perished scenario": False}),
    "buyer-response-48h": (
        "2024-03-11", buyer_window,
        {"pending_timed_out": False, "negotiate": ["AWAITING_BUYER_RESPONSE"]},
        {"pending_timed_out": True, "negotiate": []}),
    "negotiation-limit-two": ("2024-03-22", negotiation_limit, ["NEGOTIATION_LIMIT_REACHED"], []),
    "buyer-reject-escalates": ("2024-03-22", reject_escalates, "platform_intervention", "merchant_processing"),
    "negotiation-types-reasons-adjusted": (
        "2024-03-22", types_and_reasons,
        {"request_evidence label": "邀请买家核实与补充凭证", "new_plan_agreed offered": True, "contact_failed platform_code": 7},
        {"request_evidence label": "邀请买家补充凭证", "new_plan_agreed offered": False, "contact_failed platform_code": None}),
    "modify-negotiation-added": ("2024-03-22", modify_negotiation, [], ["FEATURE_NOT_IN_POLICY"]),
    "intercept-before-negotiation": (
        "2024-03-22", intercept,
        {"before negotiation": [], "after negotiation": ["INTERCEPT_AFTER_NEGOTIATION"]},
        {"before negotiation": ["FEATURE_NOT_IN_POLICY"], "after negotiation": ["FEATURE_NOT_IN_POLICY"]}),
    "negotiation-required-before-reject": (
        "2024-04-22", negotiation_required,
        {"denials": ["NEGOTIATION_REQUIRED_FIRST"], "platform_errors": [10021068]},
        {"denials": [], "platform_errors": []}),
    "message-templates-added": ("2024-04-22", message_templates, True, None),
    "merchant-evidence-added": ("2024-04-22", merchant_evidence, ["EVIDENCE_REQUIRED"], []),
    "related-features-documented": (
        "2024-05-31", related_features,
        {"extend_receipt": [], "modify_return_logistics": [],
         "receipt_if_extended": (parse_aware(hours_before(-24)) + timedelta(hours=96)).isoformat()},
        {"extend_receipt": ["FEATURE_NOT_IN_POLICY"], "modify_return_logistics": ["FEATURE_NOT_IN_POLICY"],
         "receipt_if_extended": None}),
}


@pytest.fixture(scope="module")
def engine():
    eng = Engine.from_directory(RULES_DIR)
    yield eng
    eng.close()


def declared(engine) -> dict[str, str]:
    return {change.id: info.version for info in engine.versions() for change in engine.policy(info.version).changes}


def previous_version(engine, version: str) -> str:
    order = [info.version for info in engine.versions()]
    return order[order.index(version) - 1]


def test_every_declared_item_has_exactly_one_test(engine):
    assert declared(engine) == {item: spec[0] for item, spec in ITEMS.items()}
    assert len(ITEMS) == 12


@pytest.mark.parametrize("item", list(ITEMS))
def test_changelog_item_appears_in_its_version_and_not_before(engine, item):
    version, probe, in_version, before = ITEMS[item]
    assert in_version != before  # the probe must tell the two versions apart
    prev = previous_version(engine, version)
    got_now, got_before = probe(engine, version), probe(engine, prev)
    assert _norm(got_now) == _norm(in_version), f"{item} in {version}"
    assert _norm(got_before) == _norm(before), f"{item} in {prev} (before the item)"


def _norm(value):
    """ISO times compare as instants."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        return datetime.fromisoformat(value).timestamp()
    return value
