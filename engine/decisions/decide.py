"""The first question: what may this actor do on this ticket now, and within which limits?

One evaluation of the `gate` stage through the prepared evaluator (durable_rules) gives the rules
that fired; each one denies, advises or restricts the actions it names. An action is allowed
unless a deny fired for it. negotiate / modify_negotiation also get their constraints: the
negotiation types, the reasons offered for the ticket's scenario, refund types and fields the
merchant may change (narrowed by every `restrict` that fired), money and count limits.

Everything not ticket-dependent was built with the version (engine/decisions/tables.py): here the
fired rules select precomputed pieces, and only time unlocks, messages and counts are filled in.
"""
from __future__ import annotations

from engine.core.timeutil import iso
from engine.decisions.deadlines import deadlines
from engine.decisions.facts import situation_facts
from engine.decisions.prepared import PreparedVersion
from engine.decisions.results import ActionVerdict, Advice, Constraints, Decision, Denial, RuleRef
from engine.decisions.situation import Situation
from engine.decisions.tables import ACTIONS_OF, CONSTRAINED_ACTIONS, GATE_OF, RuleEntry

_FREE = ActionVerdict(True, (), ())  # allowed, nothing to say: shared by every decision


def decide(prepared: PreparedVersion, situation: Situation, actor: str) -> Decision:
    tables = prepared.tables
    entries = tables.entries
    facts = situation_facts(situation, actor, "gate")
    denials: dict[str, list[Denial]] = {}
    advice: dict[str, list[Advice]] = {}
    restricts: dict[str, list[RuleEntry]] = {name: [] for name in CONSTRAINED_ACTIONS}
    relevant: list[RuleRef] = []
    for rule in prepared.evaluator.fired_rules(GATE_OF[actor], facts):
        entry = entries[rule.id]
        names = entry.names[actor]
        if not names:
            continue  # a rule of the other actor's actions
        relevant.append(entry.ref)
        kind = entry.kind
        if kind == "deny":
            denial = entry.denial if entry.unlock_fact is None else entry.timed_denial(facts)
            assert denial is not None
            for name in names:
                denials.setdefault(name, []).append(denial)
        elif kind == "advise":
            assert entry.advice is not None
            for name in names:
                advice.setdefault(name, []).append(entry.advice)
        elif kind == "restrict":
            for name in names:
                if name in restricts:
                    restricts[name].append(entry)

    ticket = situation.ticket
    actions: dict[str, ActionVerdict] = {}
    # negotiate and modify_negotiation nearly always carry the same restricts: build their
    # constraints once; the two actions then share one (immutable) constraints object.
    built: dict[tuple[str, ...], Constraints] = {}
    values = None
    for name in ACTIONS_OF[actor]:
        denied = denials.get(name)
        advised = advice.get(name)
        if name in restricts:
            key = tuple(e.rule.id for e in restricts[name])
            constraints = built.get(key)
            if constraints is None:
                skeleton = tables.skeleton(ticket["scenario"], facts["ticket_type"], restricts[name])
                if values is None and skeleton.static_types is None:
                    values = tables.placeholder_values(ticket)
                negotiations, edits = tables.negotiations_limit, tables.edits_limit
                constraints = built[key] = Constraints(
                    skeleton.options(values), skeleton.refund_types, facts["paid_amount"], skeleton.fixed_fields,
                    None if negotiations is None else max(0, negotiations - facts["negotiations_used"]),
                    # null also when nothing is pending: edits apply to the proposal awaiting the buyer
                    None if edits is None or not facts["has_pending"] else max(0, edits - facts["pending_edits"]))
            actions[name] = ActionVerdict(not denied, tuple(denied) if denied else (),
                                          tuple(advised) if advised else (), constraints)
        elif denied or advised:
            actions[name] = ActionVerdict(not denied, tuple(denied) if denied else (),
                                          tuple(advised) if advised else ())
        else:
            actions[name] = _FREE
    return Decision(actor, iso(situation.at), ticket["ticket_id"], tables.policy_ref, facts["status"],
                    facts["pending_expired"], actions, deadlines(situation, facts), tuple(relevant))
