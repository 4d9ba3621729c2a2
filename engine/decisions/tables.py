"""Everything a decision needs from one policy version that does not depend on the ticket,
computed once when the version is prepared (engine/pipeline): a question then only reads the rules
that fired and fills in the ticket's values.

- per rule: its result pieces (the denial with its unlock, the advice, the violation, the trace
  entry), the actions it names per actor, and for a time unlock the fact and offset to add;
- per scenario × ticket type: the negotiation types and the reasons offered for each, with their
  evidence flag and message template parsed into a `str.format` pattern;
- per (scenario, ticket type, restricts that fired): the constraints' skeleton (refund types,
  changeable and fixed fields, reasons left after the restricts), memoized the first time a
  combination is asked for (the empty one and every single restrict are built up front).
"""
from __future__ import annotations

import re
from msgspec import UNSET
from typing import Any, Iterable, Mapping

from engine.core.timeutil import iso
from engine.core.vocabulary import BUYER_ACTIONS, MERCHANT_ACTIONS
from engine.decisions.render import REFUND_TYPE_LABELS, yuan
from engine.decisions.results import (Advice, Denial, NegotiationOption, PolicyRef, ReasonOffer, RuleRef,
                                      Unlock, Violation, denial_as_violation)
from engine.core.vocabulary import REFUND_TYPES
from engine.policy.model import NegotiationType, Policy
from engine.rules.compile import CompiledPolicy, CompiledRule

ACTIONS_OF: dict[str, tuple[str, ...]] = {"merchant": tuple(MERCHANT_ACTIONS), "buyer": tuple(BUYER_ACTIONS)}
ACTOR_OF = {action: actor for actor, actions in ACTIONS_OF.items() for action in actions}
CONSTRAINED_ACTIONS = ("negotiate", "modify_negotiation")
# the gate ruleset of each actor's decisions and of each action's checks and answers
# (engine/rules/compile.py: CompiledPolicy.actor_definitions)
GATE_OF = {name: f"gate@{name}" for name in [*ACTIONS_OF, *ACTOR_OF]}
PLACEHOLDERS = ("refund_amount_yuan", "paid_amount_yuan", "refund_type_label", "scenario_label", "buyer_reason")
_SEPARATOR = "\x1f"  # ASCII unit separator: joins a skeleton's messages for one format call
_PLACEHOLDER = re.compile(r"\{\{?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}?\}")  # as engine/decisions/render.py


def actions_of(rule: CompiledRule) -> tuple[str, ...]:
    actions: Any = rule.actions
    return (actions,) if isinstance(actions, str) else tuple(actions)


def param_value(policy: Policy, operand: Any) -> Any:
    """A literal, or `{param: dotted.path}` resolved against the policy (a `{value: ...}`
    wrapper unwrapped); None when the policy sets no value."""
    if isinstance(operand, Mapping) and "param" in operand:
        node = policy.param(operand["param"])
        if isinstance(node, Mapping):
            node = node.get("value")
        return node
    return operand


def format_pattern(template: str) -> str:
    """A message template as a `str.format` pattern over PLACEHOLDERS: the same text
    engine/decisions/render.render gives (an unknown placeholder stays as written, braces in the
    text stay braces), at the cost of one C call per message instead of a regex substitution."""
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(_literal(template[last:match.start()]))
        name = match.group(1)
        out.append("{" + name + "}" if name in PLACEHOLDERS else _literal(match.group(0)))
        last = match.end()
    out.append(_literal(template[last:]))
    return "".join(out)


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class RuleEntry:
    """One compiled rule's result pieces (built once per version)."""

    __slots__ = ("rule", "kind", "ref", "names", "denial", "violation_of_denial", "advice",
                 "violation", "unlock_fact", "unlock_offset", "restrict")

    def __init__(self, rule: CompiledRule, policy: Policy) -> None:
        self.rule = rule
        self.kind = rule.effect_kind
        self.ref = RuleRef(rule.id, rule.section)
        actions = actions_of(rule)
        self.names = {actor: tuple(a for a in actions if a in names) for actor, names in ACTIONS_OF.items()}
        self.denial: Denial | None = None
        self.violation_of_denial: Violation | None = None
        self.advice: Advice | None = None
        self.violation: Violation | None = None
        self.unlock_fact: str | None = None      # a time unlock: the fact it counts from ...
        self.unlock_offset: float | None = None  # ... and the signed seconds (None: param unset)
        self.restrict: Mapping[str, Any] | None = None
        effect = rule.effect
        if self.kind == "deny":
            unlock = self._unlock(effect.get("unlock"), policy)
            self.denial = Denial(effect["code"], effect["message"], rule.id, rule.section, unlock,
                                 effect.get("platform_error"))
            self.violation_of_denial = denial_as_violation(self.denial)
        elif self.kind == "advise":
            self.advice = Advice(effect["code"], effect["message"], rule.id, rule.section)
        elif self.kind == "violation":
            self.violation = Violation(effect["code"], effect.get("field"), effect["message"], rule.id,
                                       rule.section, effect.get("platform_error"))
        elif self.kind == "restrict":
            self.restrict = effect

    def _unlock(self, spec: Mapping[str, Any] | None, policy: Policy) -> Unlock | None:
        if not spec:
            return None
        kind = spec["kind"]
        needs = spec["needs"] if "needs" in spec else UNSET
        if kind != "time":
            return Unlock(kind, needs)
        at = spec.get("at") or {}
        self.unlock_fact = at.get("fact", "")
        offset = param_value(policy, at.get("offset_hours", 0))
        sign = -1 if at.get("sign", 1) < 0 else 1
        self.unlock_offset = None if offset is None else sign * float(offset) * 3600
        return Unlock(kind, needs, None)  # available_at: filled in per ticket (timed_denial)

    def timed_denial(self, facts: Mapping[str, Any]) -> Denial:
        """The denial, its time unlock's `available_at` computed from the ticket's facts."""
        denial = self.denial
        assert denial is not None and denial.unlock is not None
        base = facts.get(self.unlock_fact or "")
        offset = self.unlock_offset
        when = None if base is None or offset is None else iso(int(base + offset))
        unlock = Unlock(denial.unlock.kind, denial.unlock.needs, when)
        return Denial(denial.code, denial.message, denial.rule, denial.section, unlock, denial.platform_error)


class ReasonEntry:
    __slots__ = ("reason_id", "refund_type", "offer", "pattern")

    def __init__(self, offer: ReasonOffer, refund_type: str | None, pattern: str | None) -> None:
        self.reason_id = offer.id
        self.refund_type = refund_type
        self.offer = offer      # message None: the offer as it is sent when no template is rendered
        self.pattern = pattern  # the template as a format pattern; None: no message for this reason


class Skeleton:
    """The constraints of one (scenario, ticket type, restricts) less the ticket's numbers."""

    __slots__ = ("refund_types", "fixed_fields", "types", "static_types", "_joined")

    def __init__(self, refund_types: tuple[str, ...], fixed_fields: tuple[str, ...],
                 types: tuple[tuple[NegotiationType, tuple[str, ...], tuple[ReasonEntry, ...]], ...],
                 templates_on: bool) -> None:
        self.refund_types = refund_types
        self.fixed_fields = fixed_fields
        self.types = types
        # without templates (or with no reason carrying one) the options are the same for every ticket
        needs_values = templates_on and any(r.pattern for _, _, reasons in types for r in reasons)
        self.static_types: tuple[NegotiationOption, ...] | None = None if needs_values else tuple(
            NegotiationOption(t.id, t.label, t.platform_code, fields, tuple(r.offer for r in reasons))
            for t, fields, reasons in types)

        # every message of the skeleton rendered by one format call, split on a separator no
        # template contains (one C call instead of one per reason; a value holding it falls back)
        patterns = [r.pattern for _, _, reasons in types for r in reasons if r.pattern is not None]
        self._joined = None if any(_SEPARATOR in p for p in patterns) else _SEPARATOR.join(patterns)

    def options(self, values: Mapping[str, str] | None) -> tuple[NegotiationOption, ...]:
        if self.static_types is not None:
            return self.static_types
        assert values is not None
        joined = self._joined
        if joined is not None and not any(_SEPARATOR in v for v in values.values()):
            messages = iter(joined.format_map(values).split(_SEPARATOR))
        else:
            messages = iter([r.pattern.format_map(values) for _, _, reasons in self.types for r in reasons
                             if r.pattern is not None])
        out = []
        for ntype, fields, reasons in self.types:
            offers = tuple(
                r.offer if r.pattern is None else ReasonOffer(r.offer.id, r.offer.text, r.offer.platform_code,
                                                              r.offer.evidence_required, next(messages))
                for r in reasons)
            out.append(NegotiationOption(ntype.id, ntype.label, ntype.platform_code, fields, offers))
        return tuple(out)


class VersionTables:
    """The precomputed pieces of one version (see the module docstring)."""

    def __init__(self, policy: Policy, compiled: CompiledPolicy) -> None:
        self.policy = policy
        self.policy_ref = PolicyRef(policy.version, iso(policy.effective_from))
        self.entries: dict[str, RuleEntry] = {rid: RuleEntry(rule, policy) for rid, rule in compiled.rules.items()}
        self.templates_on = policy.feature_enabled("message_templates")
        self.evidence_on = policy.feature_enabled("merchant_evidence")
        self.negotiations_limit = policy.limits.negotiations_per_ticket.value
        self.edits_limit = policy.limits.proposal_edits.value
        self.scenario_labels = {sid: s.label for sid, s in policy.scenarios.items()}
        # (scenario, ticket type) → per negotiation type, the reasons offered (before restricts)
        self.offered: dict[tuple[str, str], tuple[tuple[NegotiationType, tuple[ReasonEntry, ...]], ...]] = {
            (scenario_id, ticket_type): self._offered(scenario_id, ticket_type)
            for scenario_id in policy.scenarios for ticket_type in REFUND_TYPES}
        self._skeletons: dict[tuple[str, str, tuple[str, ...]], Skeleton] = {}
        restricts = [e for e in self.entries.values() if e.kind == "restrict" and not e.rule.dropped]
        for scenario_id, ticket_type in self.offered:
            for fired in [()] + [(e,) for e in restricts]:
                self.skeleton(scenario_id, ticket_type, fired)

    def _offered(self, scenario_id: str, ticket_type: str) -> tuple[tuple[NegotiationType, tuple[ReasonEntry, ...]], ...]:
        policy = self.policy
        scenario = policy.scenarios[scenario_id]
        out = []
        for ntype in policy.negotiation_types:
            reasons = []
            for reason_id in scenario.reasons.get(ntype.id, ()):
                reason = policy.reasons.get(reason_id)
                if reason is None or reason.negotiation_type != ntype.id or ticket_type not in reason.ticket_types:
                    continue
                pattern = format_pattern(reason.template) if self.templates_on and reason.template is not None else None
                offer = ReasonOffer(reason.id, reason.text, reason.platform_code,
                                    self.evidence_on and reason.evidence_required, None)
                reasons.append(ReasonEntry(offer, reason.refund_type, pattern))
            out.append((ntype, tuple(reasons)))
        return tuple(out)

    def skeleton(self, scenario_id: str, ticket_type: str, restricts: Iterable[RuleEntry]) -> Skeleton:
        fired = tuple(restricts)
        key = (scenario_id, ticket_type, tuple(e.rule.id for e in fired))
        found = self._skeletons.get(key)
        if found is None:
            found = self._skeletons[key] = self._build_skeleton(scenario_id, ticket_type,
                                                                [e.restrict for e in fired if e.restrict is not None])
        return found

    def _build_skeleton(self, scenario_id: str, ticket_type: str, restricts: list[Mapping[str, Any]]) -> Skeleton:
        """What a proposal may contain. Every type is listed (the merchant picks one); reasons are
        those the scenario offers for that type and this ticket type, less those whose own refund
        type is not among `refund_types`."""
        refund_types = [kind for kind in REFUND_TYPES
                        if all(kind in r["refund_types"] for r in restricts if "refund_types" in r)]
        field_sets = [set(r["changeable_fields"]) for r in restricts if "changeable_fields" in r]
        if any("refund_type" not in allowed for allowed in field_sets):
            # The type is not the merchant's to choose here (e.g. the receiving stage, 三-3.1.2 注意事项b):
            # the only type a proposal can carry is the ticket's own, whatever a category would prefer.
            refund_types = [ticket_type]
        types = []
        fixed: list[str] = []
        for ntype, reasons in self.offered[(scenario_id, ticket_type)]:
            # the reason's text names a type this ticket cannot take (修改为退货退款 for fresh food, a
            # type change at the receiving stage): offering it invites a contradiction
            kept = tuple(r for r in reasons if r.refund_type is None or r.refund_type in refund_types)
            fields = tuple(f for f in ntype.changeable_fields if all(f in allowed for allowed in field_sets))
            types.append((ntype, fields, kept))
            fixed += [f for f in ntype.fixed_fields if f not in fixed]
        return Skeleton(tuple(refund_types), tuple(fixed), tuple(types), self.templates_on)

    def placeholder_values(self, ticket: Mapping[str, Any]) -> dict[str, str]:
        """engine/decisions/render.placeholder_values for decide (the buyer's own request)."""
        kind = ticket["type"]
        return {
            "refund_amount_yuan": yuan(ticket["request"]["refund_amount"]),
            "paid_amount_yuan": yuan(ticket["order"]["paid_amount"]),
            "refund_type_label": REFUND_TYPE_LABELS.get(kind, kind),
            "scenario_label": self.scenario_labels.get(ticket["scenario"], ticket["scenario"]),
            "buyer_reason": ticket.get("buyer_reason", ""),
        }
