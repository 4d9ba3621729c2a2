"""durable_rules and the plain evaluator fire the same rules: every bundled version, thousands of
seeded fact dicts around the conditions' boundaries; and the cross-check does catch a difference."""
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.rules.compile import compile_policy
from engine.rules.crosscheck import Mismatch, crosscheck, fact_domains, generate_facts
from engine.rules.plain import PlainStage

ROOT = Path(__file__).resolve().parents[1]
POLICIES = sorted((ROOT / "rules").glob("*.yaml"))

TRICKY = {"version": "tricky", "limits": {"cap": {"value": 3}, "none": {"value": None}},
          "timeouts": {"window": {"window_hours": 2}}, "rules": [
    {"id": "nested", "section": "s", "stage": "gate", "action": "agree", "deny": {"code": "C", "message": "m"},
     "when": {"any": [{"all": [{"status": {"not_in": ["a", "b"]}}, {"n": {"lt": {"param": "limits.cap"}}}]},
                      {"status": {"in": ["c", "中文"]}, "flag": {"ne": True}}]}},
    {"id": "pair", "section": "s", "stage": "payload", "action": "negotiate",
     "violation": {"code": "V", "field": "refund_amount", "message": "m"},
     "when": {"p_amount": {"gte": {"fact": "paid"}}}},
    {"id": "hours", "section": "s", "stage": "gate", "action": "extend_receipt", "deny": {"code": "C", "message": "m"},
     "when": {"left": {"gte": {"param": "timeouts.window.window_hours", "unit": "hours"}}}},
    {"id": "presence", "section": "s", "stage": "outcome", "action": "timeout",
     "outcome": {"status": "merchant_processing", "effect": "back_to_merchant"},
     "when": {"any": [{"deadline": {"exists": False}}, {"deadline": {"lte": {"fact": "now"}}}]}},
    {"id": "dropped", "section": "s", "stage": "gate", "action": "agree", "deny": {"code": "C", "message": "m"},
     "when": {"n": {"gte": {"param": "limits.none"}}}},
]}


def test_domains_sit_on_the_boundaries():
    policy = compile_policy(TRICKY)
    domains = fact_domains(policy)
    assert set(domains["n"]) >= {2, 3, 4}
    assert set(domains["left"]) == {7199, 7200, 7201}
    assert set(domains["status"]) >= {"a", "b", "c", "中文", ""}
    assert set(domains["flag"]) == {True, False}
    assert {"paid", "p_amount", "deadline", "now"} <= set(domains)


def test_tricky_conditions_agree_and_every_live_rule_fires_sometimes():
    policy = compile_policy(TRICKY).open()
    try:
        facts = list(generate_facts(policy, count=1500, seed=3, missing_rate=0.1))
        assert crosscheck(policy, facts) == []
        fired = Counter(rid for f in facts for rid in policy.fired_plain(f["stage"], f))
        assert set(fired) == {"nested", "pair", "hours", "presence"}
        assert sum(1 for f in facts if not policy.fired_plain(f["stage"], f)) > 0
    finally:
        policy.close()


def test_generation_is_seeded():
    policy = compile_policy(TRICKY)
    assert list(generate_facts(policy, 50, seed=9)) == list(generate_facts(policy, 50, seed=9))
    assert list(generate_facts(policy, 50, seed=9)) != list(generate_facts(policy, 50, seed=10))


def test_a_disagreement_is_reported():
    policy = compile_policy(TRICKY).open()
    try:
        # sabotage the plain side: `lt` became `lte`
        live = [(r.id, r.python.replace(" < 3", " <= 3")) for r in policy.rules_in("gate") if not r.dropped]
        policy._plain["gate"] = PlainStage("gate", live)
        found = crosscheck(policy, generate_facts(policy, count=600, seed=1))
        assert found and all(isinstance(m, Mismatch) for m in found)
        assert "gate" in {m.stage for m in found}  # and the actor's and action's gate rulesets with it
        assert {m.stage for m in found} <= {"gate", "gate@merchant", "gate@buyer", "gate@agree"}
        assert all(m.facts.get("n") == 3 for m in found)
        assert "plain only ['nested']" in found[0].describe()
    finally:
        policy.close()


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_bundled_policy_durable_and_plain_agree(path):
    policy = compile_policy(yaml.safe_load(path.read_text(encoding="utf-8"))).open()
    try:
        facts = list(generate_facts(policy, count=3000, seed=20240531))
        assert crosscheck(policy, facts) == []
        fired = Counter(rid for f in facts for rid in policy.fired(f["stage"], f))
        live = {r.id for r in policy.rules.values() if not r.dropped}
        assert live - set(fired) == set(), "generated facts never reach these rules"
    finally:
        policy.close()


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_facts_of_synthetic_tickets_agree(path):
    """The real fact builder's output (engine/facts.py over engine/corpus.py tickets) passes the
    runtime's validation and fires the same rules on both evaluators."""
    from engine.history import corpus
    from engine.decisions import facts as facts_mod
    from engine.policy.model import Policy
    from engine.decisions.ticket import parse_time

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    policy, compiled = Policy.from_document(doc), compile_policy(doc).open()
    try:
        fact_dicts = []
        for ticket in corpus.generate(150, seed=11, vocab=corpus.Vocabulary.from_document(doc)):
            at = parse_time(corpus.latest_time(ticket) or ticket["created_at"])
            for actor in ("merchant", "buyer"):
                fact_dicts.append(facts_mod.build_facts(policy, ticket, actor, at, "gate"))
        assert crosscheck(compiled, fact_dicts) == []
        assert sum(1 for f in fact_dicts if compiled.fired("gate", f)) > len(fact_dicts) // 4
    finally:
        compiled.close()
