"""The one pipeline: the named stages a policy passes, once, from files to a version that answers.

    load → check → model → compile → open → cross-check → outcome completeness → prepare

`STAGES` lists them in order, each a function testable on its own:

- load: parse each file (safe YAML, positions kept) — engine/policy/bundle.read_documents;
- check: schema and meaning of each document, then the versions together — check_documents;
- model: the checked document as the typed, frozen `Policy` (engine/policy/model.py);
- compile: the Policy to a `CompiledPolicy`, pure data: per stage a durable ruleset definition,
  the rule index and the plain evaluator (engine/rules/compile.py);
- open: the prepared evaluator, the durable_rules rulesets created (a version durable refuses
  fails the build, so a hot reload is refused before the swap, never a live request);
- cross-check: durable_rules against the plain evaluator on generated facts (once per process
  for the same compiled conditions);
- outcome completeness: for every ticket type, scenario, category, negotiation type, proposed
  refund type, stage and answer the version allows, exactly one outcome follows (else a policy
  that forgot a case would be served and `apply` would fail on the first buyer who answers so);
- prepare: everything a decision needs that does not depend on the ticket, computed now
  (engine/decisions/tables.py), with the evaluator: a `PreparedVersion`.

`build_bundle` runs the first two, `build_version` the others. `Engine` (engine/api.py) calls both;
`aftersale validate` builds an Engine with a larger cross-check; the service's hot reload builds an
Engine beside the running one; `aftersale diff/changelog/versions` read files through `load`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from engine.core.errors import PolicyError
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.vocabulary import REFUND_TYPES
from engine.decisions.apply import ANSWER_ACTIONS, is_outcome_of, outcome_facts
from engine.decisions.facts import build_facts
from engine.decisions.prepared import PreparedVersion
from engine.policy.bundle import Bundle, PolicyDocument, ReadDocuments, check_documents, read_documents
from engine.policy.conditions import CompileError
from engine.policy.model import Policy
from engine.rules.compile import CompiledPolicy, compile_policy
from engine.rules.crosscheck import PASSED_CROSSCHECKS
from engine.rules.evaluator import DurableEvaluator

CROSSCHECK_FACTS = 2000  # per version in `aftersale validate` (~0.09 s each)
ENGINE_CROSSCHECK_FACTS = 500  # per version at every Engine build, service reloads included
STAGES_OF_PROPOSAL = ("merchant_processing", "awaiting_merchant_receipt")


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[..., Any]
    does: str


# -- the stages ------------------------------------------------------------------------------------
def load(paths: Iterable[str | Path]) -> ReadDocuments:
    return read_documents(paths)


def check(read: ReadDocuments, root: Path | None = None) -> Bundle:
    return check_documents(read, root)


def model(document: PolicyDocument) -> Policy:
    return Policy.from_document(document.data)


def compile_version(document: PolicyDocument, policy: Policy) -> CompiledPolicy:
    """A rule the compiler cannot translate is a PolicyError located in the file, like every other
    problem the policy team sees."""
    try:
        return compile_policy(policy)
    except CompileError as exc:
        raise PolicyError([document.diagnostic("compile_error", exc.path, exc.detail)]) from None


def open_evaluator(document: PolicyDocument, compiled: CompiledPolicy) -> DurableEvaluator:
    """RuntimeFault when durable_rules refuses a ruleset (none of the version's stays open)."""
    return compiled.open()


def cross_check(document: PolicyDocument, evaluator: DurableEvaluator, count: int) -> list[Diagnostic]:
    """Run unless the very same compiled conditions passed already in this process (a hot reload
    after an edit to messages or texts only: engine/rules/crosscheck.py `PassedCrosschecks`)."""
    return [
        document.diagnostic("engine_disagreement", "/rules",
                            "durable_rules and the plain evaluator disagree: " + mismatch.describe(),
                            hint="a bug in the compiler or runtime, not in the policy: report it")
        for mismatch in PASSED_CROSSCHECKS.check(evaluator, count, seed=0)[:5]
    ]


def prepare(policy: Policy, compiled: CompiledPolicy, evaluator: DurableEvaluator) -> PreparedVersion:
    return PreparedVersion.of(policy, compiled, evaluator)


STAGES: tuple[Stage, ...] = (
    Stage("load", load, "parse each policy file (safe YAML, positions kept)"),
    Stage("check", check, "schema and meaning of each version, then the versions together"),
    Stage("model", model, "the typed, frozen Policy"),
    Stage("compile", compile_version, "durable ruleset definitions, rule index, plain evaluator (pure data)"),
    Stage("open", open_evaluator, "the durable_rules rulesets created: the prepared evaluator"),
    Stage("cross-check", cross_check, "durable_rules and the plain evaluator fire the same rules"),
    Stage("outcome completeness", lambda *a: list(outcome_completeness(*a)),
          "exactly one outcome for every answer the version allows"),
    Stage("prepare", prepare, "the ticket-independent parts of every answer, precomputed"),
)


# -- the runs --------------------------------------------------------------------------------------
def build_bundle(paths: Iterable[str | Path], root: Path | None = None) -> Bundle:
    """load → check. Raises PolicyError with every problem of every file."""
    return check(load(paths), root)


def build_version(document: PolicyDocument, crosscheck_facts: int = ENGINE_CROSSCHECK_FACTS,
                  check_outcomes: bool = True) -> PreparedVersion:
    """model → compile → open → cross-check → outcome completeness → prepare, on one checked
    document. Raises PolicyError, holding no durable ruleset, if a stage fails.

    `crosscheck_facts=0, check_outcomes=False`: only for a document whose very bytes another
    build proved (a service worker building what its supervisor validated: generations.py);
    compile and open still run, so a version durable_rules refuses still fails here."""
    policy = model(document)
    compiled = compile_version(document, policy)
    evaluator = open_evaluator(document, compiled)
    try:
        problems = cross_check(document, evaluator, crosscheck_facts) if crosscheck_facts else []
        if check_outcomes:
            problems.extend(outcome_completeness(document, policy, compiled))
        if problems:
            raise PolicyError(sort_diagnostics(problems))
        return prepare(policy, compiled, evaluator)
    except BaseException:
        evaluator.close()
        raise


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


def _answered_tickets(policy: Policy) -> Iterator[tuple[str, dict[str, Any]]]:
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


def _describe(answer: str, ticket: dict[str, Any]) -> str:
    pending = ticket["negotiation"]["pending"]
    return (f"`{answer}` on a `{pending['type']}` proposal ({pending['refund_type']}, made at "
            f"{pending['stage']}) for a {ticket['type']} ticket, scenario `{ticket['scenario']}`, "
            f"category `{ticket['order']['category']}`")
