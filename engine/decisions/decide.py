"""The first question: what may this actor do on this ticket now, and within which limits?

One evaluation of the `gate` stage through the compiled policy (durable_rules) gives the rules
that fired; each one denies, advises or restricts the actions it names. An action is allowed
unless a deny fired for it. negotiate / modify_negotiation also get their constraints: the
negotiation types, the reasons offered for the ticket's scenario, refund types and fields the
merchant may change (narrowed by every `restrict` that fired), money and count limits.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from engine.decisions.deadlines import deadlines
from engine.decisions.facts import build_facts
from engine.policy.model import REFUND_TYPES, Policy
from engine.decisions.render import placeholder_values, render
from engine.core.timeutil import iso
from engine.decisions.verdicts import ACTIONS_OF, actions_of, advice, denial, fire, policy_json, trace

CONSTRAINED_ACTIONS = ("negotiate", "modify_negotiation")


def decide(policy: Policy, compiled: Any, ticket: Mapping[str, Any], actor: str, at: datetime) -> dict[str, Any]:
    facts = build_facts(policy, ticket, actor, at, "gate")
    actions = {name: {"allowed": True, "denials": [], "advice": []} for name in ACTIONS_OF[actor]}
    restricts: dict[str, list[Mapping[str, Any]]] = {name: [] for name in CONSTRAINED_ACTIONS}
    relevant = []
    for rule in fire(compiled, "gate", facts):
        names = [name for name in actions_of(rule) if name in actions]
        if not names:
            continue  # a rule of the other actor's actions
        relevant.append(rule)
        kind = rule.effect_kind
        for name in names:
            if kind == "deny":
                actions[name]["allowed"] = False
                actions[name]["denials"].append(denial(rule, policy, facts))
            elif kind == "advise":
                actions[name]["advice"].append(advice(rule))
            elif kind == "restrict" and name in restricts:
                restricts[name].append(rule.effect)
    # negotiate and modify_negotiation nearly always carry the same restricts: build their
    # constraints once (rendering every reason's message is the costliest part of a decision).
    # The two actions then share one constraints object; the decision is plain data to serialize.
    built: dict[tuple[int, ...], dict[str, Any]] = {}
    for name in CONSTRAINED_ACTIONS:
        if name in actions:
            key = tuple(id(effect) for effect in restricts[name])
            if key not in built:
                built[key] = constraints(policy, ticket, facts, restricts[name])
            actions[name]["constraints"] = built[key]
    return {
        "actor": actor,
        "at": iso(at),
        "ticket_id": ticket["ticket_id"],
        "policy": policy_json(policy),
        "status": facts["status"],
        "pending_timed_out": facts["pending_expired"],
        "actions": actions,
        "deadlines": deadlines(policy, ticket, facts),
        "trace": trace(relevant),
    }


def constraints(policy: Policy, ticket: Mapping[str, Any], facts: Mapping[str, Any],
                restricts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What a proposal may contain. Every type is listed (the merchant picks one); reasons are
    those the scenario offers for that type and this ticket type, less those whose own refund type
    is not among `refund_types`."""
    refund_types = [kind for kind in REFUND_TYPES
                    if all(kind in r["refund_types"] for r in restricts if "refund_types" in r)]
    field_sets = [set(r["changeable_fields"]) for r in restricts if "changeable_fields" in r]
    if any("refund_type" not in allowed for allowed in field_sets):
        # The type is not the merchant's to choose here (e.g. the receiving stage, 三-3.1.2 注意事项b):
        # the only type a proposal can carry is the ticket's own, whatever a category would prefer.
        refund_types = [facts["ticket_type"]]
    scenario = policy.scenarios[ticket["scenario"]]
    evidence_on = policy.feature_enabled("merchant_evidence")
    # templates are a feature of the version (from 2024-04-22); look that up once, not per reason
    values = placeholder_values(policy, ticket) if policy.feature_enabled("message_templates") else None

    types, fixed = [], []
    for negotiation_type in policy.negotiation_types:
        reasons = []
        for reason_id in scenario.reasons.get(negotiation_type.id, ()):
            reason = policy.reasons.get(reason_id)
            if (reason is None or reason.negotiation_type != negotiation_type.id
                    or facts["ticket_type"] not in reason.ticket_types):
                continue
            if reason.refund_type is not None and reason.refund_type not in refund_types:
                # the reason's text names a type this ticket cannot take (修改为退货退款 for fresh
                # food, a type change at the receiving stage): offering it invites a contradiction
                continue
            reasons.append({
                "id": reason.id,
                "text": reason.text,
                "platform_code": reason.platform_code,
                "evidence_required": evidence_on and reason.evidence_required,
                "message": render(reason.template, values) if values is not None else None,
            })
        types.append({
            "id": negotiation_type.id,
            "label": negotiation_type.label,
            "platform_code": negotiation_type.platform_code,
            "changeable_fields": [f for f in negotiation_type.changeable_fields
                                  if all(f in allowed for allowed in field_sets)],
            "reasons": reasons,
        })
        fixed += [f for f in negotiation_type.fixed_fields if f not in fixed]

    negotiations = policy.limits.negotiations_per_ticket.value
    edits = policy.limits.proposal_edits.value
    return {
        "negotiation_types": types,
        "refund_types": refund_types,
        "max_refund_amount": facts["paid_amount"],
        "fixed_fields": fixed,
        "negotiations_remaining": None if negotiations is None else max(0, negotiations - facts["negotiations_used"]),
        # null also when nothing is pending: edits apply to the proposal awaiting the buyer
        "edits_remaining": (None if edits is None or not facts["has_pending"]
                            else max(0, edits - facts["pending_edits"])),
    }
