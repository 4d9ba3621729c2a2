"""The third question: the buyer answered the pending proposal (or let it time out): what now?

accept / reject first pass the buyer's gate (a proposal must be pending and answerable); then the
`outcome` stage, evaluated through the compiled policy, picks the transition: the new status, the
effect (auto refund of the proposed amount, return flow, closed, back to the merchant, platform
intervention) and the deadlines that follow. `timeout` is a clock event, not a buyer action: it
is allowed only when a proposal exists and its window has passed at `at`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from engine.decisions.deadlines import deadlines
from engine.core.errors import EngineError, UnknownActionError
from engine.decisions.facts import build_facts, response_deadline
from engine.policy.model import Policy
from engine.core.timeutil import iso
from engine.decisions.payload import payload_facts
from engine.decisions.verdicts import (actions_of, denial, denial_as_violation, fire, param_value, policy_json,
                             trace, violation)

ANSWER_ACTIONS = {"accept": "accept_negotiation", "reject": "reject_negotiation", "timeout": "timeout"}
# 二-2.3-(1): after a rejection or a timeout the buyer may still modify or cancel the request or
# ask the platform to step in.
BUYER_MAY_AFTER_BACK_TO_MERCHANT = ["modify_aftersale", "cancel_aftersale", "request_platform_intervention"]


def apply(policy: Policy, compiled: Any, ticket: Mapping[str, Any], answer: str, at: datetime,
          reason: str | None = None) -> dict[str, Any]:
    """`reason`: the buyer's rejection reason (三-3.2.1 「输入拒绝原因后可点击提交」): a rejection
    without one is refused by the same payload rule `check reject_negotiation` runs."""
    action = ANSWER_ACTIONS.get(answer)
    if action is None:
        raise UnknownActionError("answer", str(answer), list(ANSWER_ACTIONS))
    pending = (ticket.get("negotiation") or {}).get("pending")
    facts = build_facts(policy, ticket, "buyer", at, "gate")

    relevant: list[Any] = []
    if answer == "timeout":
        violations = _timeout_violations(policy, facts, pending)
    else:
        violations = []
        for rule in fire(compiled, "gate", facts):
            if action in actions_of(rule):
                relevant.append(rule)
                if rule.effect_kind == "deny":
                    violations.append(denial_as_violation(denial(rule, policy, facts)))
        if answer == "reject":
            payload = {**facts, "stage": "payload",
                       **payload_facts(policy, ticket, facts, action, {"reason": reason or ""})}
            for rule in fire(compiled, "payload", payload):
                if action in actions_of(rule) and rule.effect_kind == "violation":
                    relevant.append(rule)
                    violations.append(violation(rule))
    if violations:
        return _result(policy, answer, False, violations, facts["status"], [],
                       deadlines(policy, ticket, facts), None, relevant)

    facts = outcome_facts(ticket, facts, answer)
    chosen = [rule for rule in fire(compiled, "outcome", facts) if is_outcome_of(rule, action)]
    if not chosen:  # `aftersale validate` proves every combination has one: a bug if reached
        raise EngineError(f"policy {policy.version} has no outcome rule for answer `{answer}` on a "
                          f"`{pending['type']}` proposal ({facts['p_refund_type']}): the policy is incomplete")
    rule = chosen[0]  # policy order: the first matching outcome wins; all of them are traced
    outcome = rule.effect

    after = deadlines(policy, ticket, facts)
    after["buyer_response"] = None  # the proposal is answered
    spec = outcome.get("deadline")
    if isinstance(spec, Mapping) and spec.get("name"):
        hours = param_value(policy, spec.get("hours"))
        after[spec["name"]] = None if hours is None else iso(int(at.timestamp()) + int(hours) * 3600)
    return _result(policy, answer, True, [], outcome["status"], [_effect(outcome, ticket, pending)],
                   after, rule, relevant + chosen)


def outcome_facts(ticket: Mapping[str, Any], facts: Mapping[str, Any], answer: str) -> dict[str, Any]:
    """The gate facts of a ticket with a pending proposal, plus what the `outcome` stage reads:
    the answer and the proposal's type, refund type and stage."""
    pending = ticket["negotiation"]["pending"]
    return {**facts, "stage": "outcome", "answer": answer, "p_type": pending["type"],
            "p_refund_type": pending.get("refund_type", ticket["type"]),
            "pending_stage": pending.get("stage", "merchant_processing")}


def is_outcome_of(rule: Any, action: str) -> bool:
    return rule.effect_kind == "outcome" and action in actions_of(rule)


def _effect(outcome: Mapping[str, Any], ticket: Mapping[str, Any], pending: Mapping[str, Any]) -> dict[str, Any]:
    kind = outcome["effect"]
    effect: dict[str, Any] = {"effect": kind}
    if kind == "auto_refund" or "refund_amount" in outcome:
        source = outcome.get("refund_amount", "proposal")
        amount = ticket["request"]["refund_amount"] if source == "request" else pending.get("refund_amount")
        effect["refund_amount"] = int(ticket["request"]["refund_amount"] if amount is None else amount)
    if kind == "closed":
        effect["may_reapply"] = bool(outcome.get("may_reapply", True))  # 二-2.3-(4)
    if kind == "back_to_merchant":
        effect["buyer_may"] = list(outcome.get("buyer_may", BUYER_MAY_AFTER_BACK_TO_MERCHANT))
    return effect


def _timeout_violations(policy: Policy, facts: Mapping[str, Any], pending: Mapping[str, Any] | None) -> list[dict]:
    section = policy.timeouts.buyer_response_section
    if not pending:
        return [{"code": "NO_PENDING_PROPOSAL", "field": None, "message": "当前没有待买家处理的协商方案，无超时可言",
                 "rule": None, "section": section}]
    if facts["pending_expired"]:
        return []
    deadline = response_deadline(policy, pending)
    return [{"code": "NOT_TIMED_OUT", "field": None, "message": "买家处理时效尚未届满",
             "rule": None, "section": section, "unlock": {"kind": "time", "available_at": iso(deadline)}}]


def _result(policy: Policy, answer: str, allowed: bool, violations: list, status: str, effects: list,
            new_deadlines: dict, rule: Any, traced: list) -> dict[str, Any]:
    return {
        "answer": answer,
        "allowed": allowed,
        "violations": violations,
        "status": status,
        "effects": effects,
        "deadlines": new_deadlines,
        "rule": rule.id if rule else None,
        "section": rule.section if rule else None,
        "policy": policy_json(policy),
        "trace": trace(traced),
    }
