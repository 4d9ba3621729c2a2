"""`aftersale validate`'s steps past loading, on the compiled policy:

1. compile every version into durable_rules rulesets (a version durable refuses is an error);
2. cross-check durable_rules against the plain evaluator on generated facts;
3. prove the outcome rules complete and unambiguous: for every ticket type, scenario, category,
   negotiation type, proposed refund type, stage and answer the version allows, exactly one
   outcome (status + effect) follows. Without this, a policy that forgot a case would be served and
   `apply` would fail on the first buyer who answers that way.

`Engine` runs all three when it is built (so a hot reload that fails them keeps the running
policy), and `aftersale validate` builds an Engine with a larger cross-check.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product
from typing import Iterator

from engine.decisions.apply import ANSWER_ACTIONS, is_outcome_of, outcome_facts
from engine.policy.bundle import PolicyDocument
from engine.core.errors import PolicyError
from engine.rules.compile import CompiledPolicy, compile_policy
from engine.policy.conditions import CompileError
from engine.rules.crosscheck import crosscheck_policy
from engine.core.problems import Diagnostic
from engine.decisions.facts import build_facts
from engine.policy.model import Policy
from engine.core.vocabulary import REFUND_TYPES

CROSSCHECK_FACTS = 2000  # per version in `aftersale validate` (~0.09 s each)
ENGINE_CROSSCHECK_FACTS = 500  # per version at every Engine build, service reloads included
STAGES_OF_PROPOSAL = ("merchant_processing", "awaiting_merchant_receipt")


def compile_document(document: PolicyDocument) -> CompiledPolicy:
    """Compile one version and create its durable rulesets; a rule the compiler cannot translate
    is a PolicyError located in the file, like every other problem the policy team sees."""
    try:
        return compile_policy(document.data).open()
    except CompileError as exc:
        raise PolicyError([document.diagnostic("compile_error", exc.path, exc.detail)]) from None


def verify(document: PolicyDocument, policy: Policy, compiled: CompiledPolicy,
           crosscheck_facts: int) -> list[Diagnostic]:
    """Steps 2 and 3 on one compiled version; [] when it may be served."""
    problems = [
        document.diagnostic("engine_disagreement", "/rules",
                            "durable_rules and the plain evaluator disagree: " + mismatch.describe(),
                            hint="a bug in the compiler or runtime, not in the policy: report it")
        for mismatch in crosscheck_policy(compiled, count=crosscheck_facts, seed=0)[:5]
    ]
    problems.extend(outcome_completeness(document, policy, compiled))
    return problems


def outcome_completeness(document: PolicyDocument, policy: Policy, compiled: CompiledPolicy) -> Iterator[Diagnostic]:
    """One diagnostic per kind of gap (no outcome / conflicting outcomes), naming the first
    combination that shows it and how many do."""
    missing: list[str] = []
    conflicting: list[str] = []
    for answer, ticket in _answered_tickets(policy):
        facts = outcome_facts(ticket, build_facts(policy, ticket, "buyer", _AT, "gate"), answer)
        action = ANSWER_ACTIONS[answer]
        rules = [compiled.rules[i] for i in compiled.fired_plain("outcome", facts)]
        outcomes = {(r.effect["status"], r.effect["effect"]) for r in rules if is_outcome_of(r, action)}
        if not outcomes:
            missing.append(_describe(answer, ticket))
        elif len(outcomes) > 1:
            conflicting.append(_describe(answer, ticket) + f" → {sorted(outcomes)}")
    if missing:
        yield document.diagnostic(
            "outcome_missing", "/rules",
            f"no outcome rule for {len(missing)} answer(s) the policy allows, e.g. {missing[0]}",
            hint="add a `stage: outcome` rule whose `when` covers it")
    if conflicting:
        yield document.diagnostic(
            "outcome_ambiguous", "/rules",
            f"{len(conflicting)} answer(s) lead to more than one outcome, e.g. {conflicting[0]}",
            hint="make the outcome rules' `when` conditions exclusive")


# A moment inside the proposal's window: the outcome of an answer does not depend on the clock.
_PROPOSED = "2024-01-01T12:00:00+08:00"
_AT = datetime.fromisoformat(_PROPOSED) + timedelta(hours=1)


def _answered_tickets(policy: Policy) -> Iterator[tuple[str, dict]]:
    """Every (answer, ticket with a pending proposal) the policy allows: accept/reject only for
    types the buyer may answer (三-3.2.2), the receiving stage only for return-refund tickets,
    where the refund type cannot change (三-3.1.2 注意事项b)."""
    for ticket_type, scenario, category, ntype, refund_type, stage, answer in product(
            REFUND_TYPES, policy.scenarios, policy.categories, policy.negotiation_types,
            REFUND_TYPES, STAGES_OF_PROPOSAL, ANSWER_ACTIONS):
        if answer != "timeout" and not ntype.buyer_may_accept:
            continue
        if stage == "awaiting_merchant_receipt" and (ticket_type != "return_refund" or refund_type != ticket_type):
            continue
        if ntype.id != "modify_request" and refund_type != ticket_type:
            continue  # only a modification carries a refund type of its own
        pending = {"type": ntype.id, "reason": "", "refund_type": refund_type, "refund_amount": 100,
                   "proposed_at": _PROPOSED, "stage": stage}
        yield answer, {
            "ticket_id": "SELFCHECK", "type": ticket_type, "status": "awaiting_buyer_response",
            "scenario": scenario, "buyer_reason": "", "created_at": _PROPOSED,
            "order": {"paid_amount": 100, "category": category, "goods_kind": "physical", "quantity": 1,
                      "shipped": True},
            "request": {"refund_amount": 100, "quantity": 1, "evidence_count": 0},
            "negotiation": {"count": 1, "last_outcome": "pending", "pending": pending},
        }


def _describe(answer: str, ticket: dict) -> str:
    pending = ticket["negotiation"]["pending"]
    return (f"`{answer}` on a `{pending['type']}` proposal ({pending['refund_type']}, made at "
            f"{pending['stage']}) for a {ticket['type']} ticket, scenario `{ticket['scenario']}`, "
            f"category `{ticket['order']['category']}`")
