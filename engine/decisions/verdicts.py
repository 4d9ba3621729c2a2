"""What decide, check and apply share: run the gate stage through the prepared evaluator
(durable_rules decides which rules fire) and read the precomputed pieces of the rules that fired
for one action (engine/decisions/tables.py)."""
from __future__ import annotations

from typing import Any, Mapping

from engine.decisions.prepared import PreparedVersion
from engine.decisions.results import RuleRef, Violation, denial_as_violation
from engine.decisions.tables import ACTIONS_OF, ACTOR_OF, GATE_OF, RuleEntry, actions_of, param_value

__all__ = ["ACTIONS_OF", "ACTOR_OF", "actions_of", "gate_violations", "param_value", "payload_violations",
           "violation_of"]


def violation_of(entry: RuleEntry, facts: Mapping[str, Any]) -> Violation:
    """A gate denial as check/apply report it (a violation with `field: null`)."""
    if entry.unlock_fact is not None:
        return denial_as_violation(entry.timed_denial(facts))
    assert entry.violation_of_denial is not None
    return entry.violation_of_denial


def gate_violations(prepared: PreparedVersion, facts: Mapping[str, Any], action: str,
                    relevant: list[RuleRef]) -> list[Violation]:
    """The gate rules that fired naming `action` (its own ruleset, `gate@<action>`): each traced in
    `relevant`; the denials returned."""
    entries = prepared.tables.entries
    violations = []
    for rule in prepared.evaluator.fired_rules(GATE_OF[action], facts):  # only rules naming `action`
        if action in rule.actions:
            entry = entries[rule.id]
            relevant.append(entry.ref)
            if entry.kind == "deny":
                violations.append(violation_of(entry, facts))
    return violations


def payload_violations(prepared: PreparedVersion, facts: Mapping[str, Any], action: str,
                       relevant: list[RuleRef]) -> list[Violation]:
    """The payload rules naming `action` that fired on the payload facts: traced and returned."""
    entries = prepared.tables.entries
    violations = []
    for rule in prepared.evaluator.fired_rules("payload", facts):
        if action in rule.actions and rule.effect_kind == "violation":
            entry = entries[rule.id]
            relevant.append(entry.ref)
            assert entry.violation is not None
            violations.append(entry.violation)
    return violations
