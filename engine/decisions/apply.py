"""The third question: the buyer answered the pending proposal (or let it time out): what now?

accept / reject first pass the buyer's gate (a proposal must be pending and answerable); then the
`outcome` stage, evaluated through the prepared evaluator, picks the transition: the new status, the
effect (auto refund of the proposed amount, return flow, closed, back to the merchant, platform
intervention) and the deadlines that follow. `timeout` is a clock event, not a buyer action: it
is allowed only when a proposal exists and its window has passed at `at`.
"""
from __future__ import annotations

from typing import Any, Mapping

import msgspec

from engine.core.errors import EngineError, UnknownActionError
from engine.core.timeutil import iso
from engine.decisions.deadlines import deadlines
from engine.decisions.facts import situation_facts
from engine.decisions.prepared import PreparedVersion
from engine.decisions.results import ApplyResult, Effect, RuleRef, Unlock, Violation
from engine.decisions.situation import Situation
from engine.decisions.payload import payload_facts
from engine.decisions.verdicts import gate_violations, param_value, payload_violations
from engine.rules.compile import CompiledRule

ANSWER_ACTIONS = {"accept": "accept_negotiation", "reject": "reject_negotiation", "timeout": "timeout"}
# 二-2.3-(1): after a rejection or a timeout the buyer may still modify or cancel the request or
# ask the platform to step in.
BUYER_MAY_AFTER_BACK_TO_MERCHANT = ["modify_aftersale", "cancel_aftersale", "request_platform_intervention"]


def apply(prepared: PreparedVersion, situation: Situation, answer: str, reason: str | None = None) -> ApplyResult:
    """`reason`: the buyer's rejection reason (三-3.2.1 「输入拒绝原因后可点击提交」): a rejection
    without one is refused by the same payload rule `check reject_negotiation` runs."""
    action = ANSWER_ACTIONS.get(answer)
    if action is None:
        raise UnknownActionError("answer", str(answer), list(ANSWER_ACTIONS))
    policy, ticket = situation.policy, situation.ticket
    pending = situation.pending
    facts = situation_facts(situation, "buyer", "gate")

    relevant: list[RuleRef] = []
    if answer == "timeout":
        violations = _timeout_violations(situation, facts)
    else:
        violations = gate_violations(prepared, facts, action, relevant)
        if answer == "reject":
            payload = {**facts, "stage": "payload",
                       **payload_facts(policy, ticket, facts, action, {"reason": reason or ""})}
            violations.extend(payload_violations(prepared, payload, action, relevant))
    if violations:
        return _result(prepared, answer, False, violations, facts["status"], (),
                       msgspec.structs.asdict(deadlines(situation, facts)), None, relevant)

    assert pending is not None
    facts = outcome_facts(ticket, facts, answer)
    entries = prepared.tables.entries
    chosen = [rule for rule in prepared.evaluator.fired_rules("outcome", facts) if is_outcome_of(rule, action)]
    if not chosen:  # `aftersale validate` proves every combination has one: a bug if reached
        raise EngineError(f"policy {policy.version} has no outcome rule for answer `{answer}` on a "
                          f"`{pending['type']}` proposal ({facts['p_refund_type']}): the policy is incomplete")
    rule = chosen[0]  # policy order: the first matching outcome wins; all of them are traced
    outcome = rule.effect

    after = msgspec.structs.asdict(deadlines(situation, facts))
    after["buyer_response"] = None  # the proposal is answered
    spec = outcome.get("deadline")
    if isinstance(spec, Mapping) and spec.get("name"):
        hours = param_value(policy, spec.get("hours"))
        after[spec["name"]] = None if hours is None else iso(situation.now + int(hours) * 3600)
    relevant.extend(entries[r.id].ref for r in chosen)
    return _result(prepared, answer, True, [], outcome["status"], (_effect(outcome, ticket, pending),),
                   after, rule, relevant)


def outcome_facts(ticket: Mapping[str, Any], facts: Mapping[str, Any], answer: str) -> dict[str, Any]:
    """The gate facts of a ticket with a pending proposal, plus what the `outcome` stage reads:
    the answer and the proposal's type, refund type and stage."""
    pending = ticket["negotiation"]["pending"]
    return {**facts, "stage": "outcome", "answer": answer, "p_type": pending["type"],
            "p_refund_type": pending.get("refund_type", ticket["type"]),
            "pending_stage": pending.get("stage", "merchant_processing")}


def is_outcome_of(rule: CompiledRule, action: str) -> bool:
    return rule.effect_kind == "outcome" and action in rule.actions


def _effect(outcome: Mapping[str, Any], ticket: Mapping[str, Any], pending: Mapping[str, Any]) -> Effect:
    kind = outcome["effect"]
    refund_amount = may_reapply = buyer_may = None
    if kind == "auto_refund" or "refund_amount" in outcome:
        source = outcome.get("refund_amount", "proposal")
        amount = ticket["request"]["refund_amount"] if source == "request" else pending.get("refund_amount")
        refund_amount = int(ticket["request"]["refund_amount"] if amount is None else amount)
    if kind == "closed":
        may_reapply = bool(outcome.get("may_reapply", True))  # 二-2.3-(4)
    if kind == "back_to_merchant":
        buyer_may = tuple(outcome.get("buyer_may", BUYER_MAY_AFTER_BACK_TO_MERCHANT))
    return Effect(kind, refund_amount, may_reapply, buyer_may)


def _timeout_violations(situation: Situation, facts: Mapping[str, Any]) -> list[Violation]:
    section = situation.policy.timeouts.buyer_response_section
    if not situation.pending:
        return [Violation("NO_PENDING_PROPOSAL", None, "当前没有待买家处理的协商方案，无超时可言", None, section)]
    if facts["pending_expired"]:
        return []
    return [Violation("NOT_TIMED_OUT", None, "买家处理时效尚未届满", None, section,
                      unlock=Unlock("time", available_at=iso(situation.respond_by)))]


def _result(prepared: PreparedVersion, answer: str, allowed: bool, violations: list[Violation], status: str,
            effects: tuple[Effect, ...], new_deadlines: dict[str, Any], rule: CompiledRule | None,
            traced: list[RuleRef]) -> ApplyResult:
    return ApplyResult(answer, allowed, tuple(violations), status, effects, new_deadlines,
                       rule.id if rule else None, rule.section if rule else None,
                       prepared.tables.policy_ref, tuple(traced))
