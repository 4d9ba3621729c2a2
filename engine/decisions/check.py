"""The second question: would this concrete action, with this payload, be accepted now?

Two evaluations through the prepared evaluator: the `gate` stage (is the action allowed at all? a
third negotiation or a second edit is caught here) and the `payload` stage, whose facts carry
the payload's `p_*` fields (amount above paid, a fixed field changed, missing evidence, ...).
Gate denials become violations with `field: null`; payload rules name the field.
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.core.errors import UnknownActionError
from engine.decisions.facts import situation_facts
from engine.decisions.payload import payload_facts, validate_payload
from engine.decisions.prepared import PreparedVersion
from engine.decisions.results import CheckResult, RuleRef
from engine.decisions.situation import Situation
from engine.decisions.verdicts import ACTOR_OF, gate_violations, payload_violations


def check(prepared: PreparedVersion, situation: Situation, action: str,
          payload: Mapping[str, Any] | None) -> CheckResult:
    actor = ACTOR_OF.get(action)
    if actor is None:
        raise UnknownActionError("action", str(action), list(ACTOR_OF))
    payload = validate_payload(action, {} if payload is None else payload)

    facts = situation_facts(situation, actor, "gate")
    relevant: list[RuleRef] = []
    violations = gate_violations(prepared, facts, action, relevant)

    facts.update(payload_facts(situation.policy, situation.ticket, facts, action, payload))
    facts["stage"] = "payload"
    violations.extend(payload_violations(prepared, facts, action, relevant))

    return CheckResult(action, actor, not violations, tuple(violations), prepared.tables.policy_ref, tuple(relevant))
