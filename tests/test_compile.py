"""compile_policy: rule index, durable definitions, feature rules, dropped rules, located errors."""
import copy
from pathlib import Path

import pytest
import yaml

from engine.rules.compile import FEATURE_DENY_CODE, compile_policy
from engine.policy.conditions import CompileError
from engine.rules.durable import FactError, RuntimeFault

ROOT = Path(__file__).resolve().parents[1]

DOC = {
    "version": "2024-03-22",
    "limits": {"negotiations_per_ticket": {"value": 2}, "proposal_edits": {"value": None}},
    "features": {
        "extend_receipt": {"enabled": False, "section": "四-4.1"},
        "modify_negotiation": {"enabled": True, "section": "三-3.1.2-(3)"},
        "message_templates": {"enabled": False, "section": "三-3.1.2-(2)"},  # not an action: no rule
    },
    "rules": [
        {"id": "merchant.turn.awaiting_buyer", "section": "二-2.1-(2)", "stage": "gate", "actor": "merchant",
         "action": ["agree", "reject", "negotiate"], "when": {"status": {"eq": "awaiting_buyer_response"}},
         "deny": {"code": "AWAITING_BUYER_RESPONSE", "message": "等待买家处理"}},
        {"id": "merchant.reject.guided", "section": "三-3.1.1-(2)", "stage": "gate", "actor": "merchant",
         "action": "reject", "when": {"scenario_rejection": {"in": ["guided", "negotiation_required"]}},
         "advise": {"code": "REJECTION_GUIDED", "message": "建议先协商"}},
        {"id": "merchant.negotiate.limit", "section": "二-2.1-(3)", "stage": "gate", "actor": "merchant",
         "action": "negotiate", "when": {"negotiations_used": {"gte": {"param": "limits.negotiations_per_ticket"}}},
         "deny": {"code": "NEGOTIATION_LIMIT_REACHED", "message": "次数已用完", "unlock": {"kind": "never"}}},
        {"id": "merchant.modify_negotiation.edit_limit", "section": "三-3.1.2-(3)", "stage": "gate",
         "actor": "merchant", "action": "modify_negotiation",
         "when": {"pending_edits": {"gte": {"param": "limits.proposal_edits"}}},
         "deny": {"code": "EDIT_LIMIT_REACHED", "message": "修改次数已用完"}},
        {"id": "payload.amount_above_paid", "section": "二-2.1-(1)", "stage": "payload", "actor": "merchant",
         "action": ["negotiate", "modify_negotiation"], "when": {"p_refund_amount": {"gt": {"fact": "paid_amount"}}},
         "violation": {"code": "AMOUNT_ABOVE_PAID", "field": "refund_amount", "message": "超过实付金额"}},
        {"id": "outcome.timeout", "section": "二-2.1-(2)", "stage": "outcome", "actor": "buyer",
         "action": "timeout", "when": {"answer": {"eq": "timeout"}},
         "outcome": {"status": "merchant_processing", "effect": "back_to_merchant"}},
    ],
}


def gate(**facts):
    return {"ticket_id": "T-1", "stage": "gate", **facts}


@pytest.fixture()
def compiled():
    policy = compile_policy(DOC).open()
    yield policy
    policy.close()


def test_rule_index_in_order_with_feature_rules_first(compiled):
    ids = list(compiled.rules)
    assert ids[0] == "feature.extend_receipt.disabled"
    assert ids[1:] == [r["id"] for r in DOC["rules"]]
    feature = compiled.rules["feature.extend_receipt.disabled"]
    assert (feature.stage, feature.actions, feature.effect_kind, feature.section, feature.actor) == \
        ("gate", ("extend_receipt",), "deny", "四-4.1", "merchant")
    assert feature.effect["code"] == FEATURE_DENY_CODE and feature.effect["unlock"] == {"kind": "never"}
    assert feature.generated and not compiled.rules["merchant.reject.guided"].generated
    assert not any("message_templates" in rid or "modify_negotiation.disabled" in rid for rid in ids)
    guided = compiled.rules["merchant.reject.guided"]
    assert guided.actions == ("reject",) and guided.effect_kind == "advise"
    assert guided.effect == DOC["rules"][1]["advise"]


def test_null_param_rule_is_dropped_and_never_fires(compiled):
    rule = compiled.rules["merchant.modify_negotiation.edit_limit"]
    assert rule.dropped and "proposal_edits" in rule.drop_reason and rule.durable_name is None
    assert compiled.dropped == {rule.id: rule.drop_reason}
    assert rule.id not in compiled.durable_names.values()
    facts = gate(pending_edits=99)
    assert rule.id not in compiled.fired("gate", facts)
    assert rule.id not in compiled.fired_plain("gate", facts)
    assert rule.predicate(facts) is False


def test_definitions_are_anchored_and_use_safe_names(compiled):
    gate_def = compiled.definitions["gate"]
    assert set(gate_def) == {compiled.rules[r].durable_name for r in
                             ("feature.extend_receipt.disabled", "merchant.turn.awaiting_buyer",
                              "merchant.reject.guided", "merchant.negotiate.limit")}
    for name, body in gate_def.items():
        assert name.startswith("r") and name[1:].isdigit()
        anchors = body["all"][0]["m"]["$and"][:2]
        assert anchors == [{"$ex": {"ticket_id": 1}}, {"stage": "gate"}]
    assert list(compiled.definitions["payload"]) == [compiled.rules["payload.amount_above_paid"].durable_name]
    assert '"$ne"' not in compiled.ruleset_json("gate") and "等待" not in compiled.ruleset_json("gate")


def test_fired_maps_names_to_ids_in_rule_order_on_both_evaluators(compiled):
    facts = gate(status="awaiting_buyer_response", scenario_rejection="guided", negotiations_used=2)
    expected = ["feature.extend_receipt.disabled", "merchant.turn.awaiting_buyer",
                "merchant.reject.guided", "merchant.negotiate.limit"]
    assert compiled.fired("gate", facts) == expected
    assert compiled.fired_plain("gate", facts) == expected
    facts = gate(status="merchant_processing", scenario_rejection="allowed", negotiations_used=1)
    assert compiled.fired("gate", facts) == ["feature.extend_receipt.disabled"]


def test_or_with_several_true_branches_is_reported_once():
    doc = {"version": "t", "rules": [
        {"id": "a", "section": "s", "stage": "gate", "action": "agree",
         "when": {"any": [{"x": {"eq": 1}}, {"x": {"gte": 1}}, {"y": {"eq": True}}]},
         "deny": {"code": "C", "message": "m"}},
        {"id": "b", "section": "s", "stage": "gate", "action": "agree", "when": {"x": {"gt": 0}},
         "deny": {"code": "C", "message": "m"}}]}
    policy = compile_policy(doc).open()
    try:
        runner = policy.runner("gate")
        raw = runner.fired(gate(x=1, y=True))
        assert sorted(raw).count("r0") == 3  # durable fires once per true branch
        assert policy.fired("gate", gate(x=1, y=True)) == ["a", "b"]
    finally:
        policy.close()


def test_payload_and_outcome_stages(compiled):
    payload = {"ticket_id": "T", "stage": "payload", "p_refund_amount": 40001, "paid_amount": 40000}
    assert compiled.fired("payload", payload) == ["payload.amount_above_paid"]
    assert compiled.fired("payload", dict(payload, p_refund_amount=40000)) == []
    assert compiled.fired("outcome", {"ticket_id": "T", "stage": "outcome", "answer": "timeout"}) == ["outcome.timeout"]


def test_stage_mismatch_and_bad_facts_raise_fact_error(compiled):
    with pytest.raises(FactError, match="stage `gate`, evaluated as `payload`"):
        compiled.fired("payload", gate())
    with pytest.raises(FactError, match="unknown stage"):
        compiled.fired("nope", gate())
    with pytest.raises(FactError, match="status"):
        compiled.fired("gate", gate(status=3))  # the rules compare status with strings
    with pytest.raises(FactError, match="None"):
        compiled.fired_plain("gate", gate(status=None))


def test_same_version_compiles_again_under_a_new_ruleset_name():
    first, second = compile_policy(DOC).open(), compile_policy(DOC).open()  # hot reload: both live
    try:
        assert first.ruleset_names["gate"] != second.ruleset_names["gate"]
        assert first.ruleset_names["gate"].startswith("v2024_03_22_gate_")
        facts = gate(status="awaiting_buyer_response")
        assert first.fired("gate", facts) == second.fired("gate", facts)
    finally:
        first.close()
    assert second.fired("gate", gate()) == ["feature.extend_receipt.disabled"]
    second.close()
    with pytest.raises(RuntimeFault, match="closed"):
        second.fired("gate", gate())
    assert second.fired_plain("gate", gate()) == ["feature.extend_receipt.disabled"]


def _broken(change):
    doc = copy.deepcopy(DOC)
    change(doc)
    return doc


@pytest.mark.parametrize("change, path, text", [
    (lambda d: d["rules"][1].update(id="merchant.turn.awaiting_buyer"), "/rules/1/id", "duplicate"),
    (lambda d: d["rules"][2].update(stage="later"), "/rules/2/stage", "stage"),
    (lambda d: d["rules"][0].update(advise={"code": "X", "message": "m"}), "/rules/0", "exactly one effect"),
    (lambda d: d["rules"][0].pop("deny"), "/rules/0", "exactly one effect"),
    (lambda d: d["rules"][0].update(action=[]), "/rules/0/action", "action"),
    (lambda d: d["rules"][1].update(when={"status": {"eq": 1}}), "/rules/1/when", "num value here"),
    (lambda d: d["rules"][1].update(when={"scenario_rejection": {"like": "g"}}),
     "/rules/1/when/scenario_rejection/like", "unknown operator"),
    (lambda d: d.update(version=None), "/version", "version"),
    (lambda d: d["rules"].append("text"), "/rules/6", "mapping"),
])
def test_compile_errors_are_located(change, path, text):
    with pytest.raises(CompileError) as err:
        compile_policy(_broken(change))
    assert err.value.path == path, err.value
    assert text in str(err.value)


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_policies_compile(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    policy = compile_policy(doc)
    assert policy.version == doc["version"]
    assert [r["id"] for r in doc["rules"]] == [r.id for r in policy.rules.values() if not r.generated]
    for stage in ("gate", "payload", "outcome"):
        assert len(policy.definitions[stage]) == sum(
            1 for r in policy.rules.values() if r.stage == stage and not r.dropped)


def test_only_facts_the_stage_reads_are_sent_to_durable(compiled):
    assert compiled._reads["gate"] == ("negotiations_used", "scenario_rejection", "stage", "status", "ticket_id")
    assert compiled._reads["payload"] == ("p_refund_amount", "paid_amount", "stage", "ticket_id")
    noisy = gate(status="awaiting_buyer_response", note="字" * 50, **{f"extra{i}": i for i in range(100)})
    assert compiled.fired("gate", noisy) == compiled.fired_plain("gate", noisy) == \
        ["feature.extend_receipt.disabled", "merchant.turn.awaiting_buyer"]
