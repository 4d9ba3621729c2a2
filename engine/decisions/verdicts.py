"""What decide, check and apply share: run a stage through the compiled policy, and turn the
rules that fired into JSON pieces (denials, advice, violations, trace, unlock times).

Every evaluation goes through `CompiledPolicy.fired(stage, facts)`: the durable_rules engine is
the one that decides which rules fire; this module only reads the effects of those rules.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from engine.policy.model import Policy
from engine.core.timeutil import iso
from engine.core.vocabulary import BUYER_ACTIONS, MERCHANT_ACTIONS

ACTIONS_OF = {"merchant": MERCHANT_ACTIONS, "buyer": BUYER_ACTIONS}
ACTOR_OF = {action: actor for actor, actions in ACTIONS_OF.items() for action in actions}


def fire(compiled: Any, stage: str, facts: Mapping[str, Any]) -> list[Any]:
    """The compiled rules of `stage` that fired on durable_rules, once each, in policy order."""
    rules = compiled.rules
    return [rules[rule_id] for rule_id in compiled.fired(stage, facts)]


def actions_of(rule: Any) -> tuple[str, ...]:
    actions = rule.actions
    return (actions,) if isinstance(actions, str) else tuple(actions)


def policy_json(policy: Policy) -> dict[str, str | None]:
    return {"version": policy.version, "effective_from": iso(policy.effective_from)}


def trace(rules: Iterable[Any]) -> list[dict[str, str]]:
    return [{"rule": rule.id, "section": rule.section} for rule in rules]


def denial(rule: Any, policy: Policy, facts: Mapping[str, Any]) -> dict[str, Any]:
    """A deny effect as JSON: code, message, rule, section, unlock? (with `available_at` for a
    time unlock), platform_error?."""
    effect = rule.effect
    out: dict[str, Any] = {"code": effect["code"], "message": effect["message"],
                           "rule": rule.id, "section": rule.section}
    unlock = effect.get("unlock")
    if unlock:
        out["unlock"] = unlock_json(unlock, policy, facts)
    if effect.get("platform_error") is not None:
        out["platform_error"] = effect["platform_error"]
    return out


def advice(rule: Any) -> dict[str, Any]:
    return {"code": rule.effect["code"], "message": rule.effect["message"],
            "rule": rule.id, "section": rule.section}


def violation(rule: Any) -> dict[str, Any]:
    effect = rule.effect
    out = {"code": effect["code"], "field": effect.get("field"), "message": effect["message"],
           "rule": rule.id, "section": rule.section}
    if effect.get("platform_error") is not None:
        out["platform_error"] = effect["platform_error"]
    return out


def denial_as_violation(item: Mapping[str, Any]) -> dict[str, Any]:
    """A gate denial reported by check/apply: a violation with `field: null`."""
    out = {"code": item["code"], "field": None, "message": item["message"],
           "rule": item["rule"], "section": item["section"]}
    for key in ("platform_error", "unlock"):
        if key in item:
            out[key] = item[key]
    return out


def unlock_json(unlock: Mapping[str, Any], policy: Policy, facts: Mapping[str, Any]) -> dict[str, Any]:
    """`{kind: time, at: {fact, offset_hours?, sign?}}` gains `available_at` (ISO, or None when
    the ticket lacks the fact); other kinds pass through."""
    out = {key: value for key, value in unlock.items() if key != "at"}
    if unlock.get("kind") != "time":
        return out
    spec = unlock.get("at") or {}
    base = facts.get(spec.get("fact", ""))
    offset = param_value(policy, spec.get("offset_hours", 0))
    if base is None or offset is None:
        out["available_at"] = None
    else:
        sign = -1 if spec.get("sign", 1) < 0 else 1
        out["available_at"] = iso(int(base + sign * float(offset) * 3600))
    return out


def param_value(policy: Policy, operand: Any) -> Any:
    """A literal, or `{param: dotted.path}` resolved against the policy (a `{value: ...}`
    wrapper unwrapped); None when the policy sets no value."""
    if isinstance(operand, Mapping) and "param" in operand:
        node = policy.param(operand["param"])
        if isinstance(node, Mapping):
            node = node.get("value")
        return node
    return operand
