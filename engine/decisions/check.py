"""The second question: would this concrete action, with this payload, be accepted now?

Two evaluations through the compiled policy: the `gate` stage (is the action allowed at all? a
third negotiation or a second edit is caught here) and the `payload` stage, whose facts carry
the payload's `p_*` fields (amount above paid, a fixed field changed, missing evidence, ...).
Gate denials become violations with `field: null`; payload rules name the field.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from engine.core.errors import UnknownActionError
from engine.decisions.facts import build_facts
from engine.policy.model import Policy
from engine.decisions.payload import payload_facts, validate_payload
from engine.decisions.verdicts import (ACTOR_OF, actions_of, denial, denial_as_violation, fire, policy_json,
                             trace, violation)


def check(policy: Policy, compiled: Any, ticket: Mapping[str, Any], action: str,
          payload: Mapping[str, Any] | None, at: datetime) -> dict[str, Any]:
    actor = ACTOR_OF.get(action)
    if actor is None:
        raise UnknownActionError("action", str(action), list(ACTOR_OF))
    payload = validate_payload(action, {} if payload is None else payload)

    facts = build_facts(policy, ticket, actor, at, "gate")
    violations, relevant = [], []
    for rule in fire(compiled, "gate", facts):
        if action in actions_of(rule):
            relevant.append(rule)
            if rule.effect_kind == "deny":
                violations.append(denial_as_violation(denial(rule, policy, facts)))

    extra = payload_facts(policy, ticket, facts, action, payload)
    facts["stage"] = "payload"
    facts.update(extra)
    for rule in fire(compiled, "payload", facts):
        if action in actions_of(rule) and rule.effect_kind == "violation":
            relevant.append(rule)
            violations.append(violation(rule))

    return {
        "action": action,
        "actor": actor,
        "valid": not violations,
        "violations": violations,
        "policy": policy_json(policy),
        "trace": trace(relevant),
    }
