"""Decision regression across versions: every difference is declared.

Each policy test case (`rules/tests/*.yaml`) is asked again under every pair of adjacent versions,
pinned, at the case's own `at`. Where the two answers differ for an action (allowed/denied or the
set of codes), the newer version must declare a change whose `affects_actions` names that action;
otherwise the difference is unexplained: a policy edit changed decisions nobody said it would.

What is compared, per kind of case:
- decide: every action of the actor's decision: `allowed` and the denial codes;
- check: the case's action: `valid` and the violation codes;
- apply: the answer's action (`accept` → accept_negotiation, `reject` → reject_negotiation,
  `timeout` → the buyer's answer window, so either of those or `timeout` explains it): `allowed`,
  the new status, the effects and the violation codes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from engine.core.errors import EngineError
from engine.history.attribution import affects
from engine.policytests.files import Case
from engine.questions import ask

if TYPE_CHECKING:
    from engine.api import Engine

ANSWER_ACTIONS = {"accept": ("accept_negotiation",), "reject": ("reject_negotiation",),
                  "timeout": ("timeout", "accept_negotiation", "reject_negotiation")}


@dataclass(frozen=True)
class Divergence:
    case: Case
    old: str
    new: str
    action: str
    before: Any  # the compared summary under `old`
    after: Any
    explained_by: tuple[str, ...]  # ids of the newer version's declared changes naming the action
    old_answer: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    new_answer: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def explained(self) -> bool:
        return bool(self.explained_by)

    def format(self, full: bool = True) -> str:
        head = (f"{self.case.location}: {self.case.name}: {self.old} → {self.new}: `{self.action}` "
                f"{_show(self.before)} → {_show(self.after)}")
        if self.explained:
            return head + f"  (declared: {', '.join(self.explained_by)})"
        lines = [head + f"  UNEXPLAINED: no declared change of {self.new} lists `{self.action}` in affects_actions"]
        if full:
            lines.append(f"  at: {self.case.at}  actor: {self.case.actor or '-'}  kind: {self.case.kind}")
            lines.append(f"  ticket: {_show(self.case.ticket)}")
            lines.append(f"  {self.old}: {_show(self.old_answer)}")
            lines.append(f"  {self.new}: {_show(self.new_answer)}")
        return "\n".join(lines)


@dataclass
class RegressionReport:
    divergences: list[Divergence] = field(default_factory=list)
    skipped: list[tuple[Case, str, str, str]] = field(default_factory=list)  # case, old, new, why
    compared: int = 0  # (case, version pair) comparisons made

    @property
    def unexplained(self) -> list[Divergence]:
        return [d for d in self.divergences if not d.explained]


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _codes(items: Iterable[dict[str, Any]] | None) -> list[str]:
    return sorted({item.get("code", "") for item in items or ()})


def version_pairs(engine: Engine) -> list[tuple[str, str]]:
    names = [info.version for info in engine.versions()]
    return list(zip(names, names[1:]))


def declared_affects(engine: Engine, version: str) -> dict[str, set[str]]:
    """declared change id → the actions it says it may change, for one version."""
    return affects(engine.document(version).get("changes") or ())  # the rule impact attributes with too


def summaries(case: Case, answer: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], Any]]:
    """action → (the action names that may explain a change, the compared summary)."""
    if case.kind == "check":
        action = str(case.action)
        return {action: ((action,), {"valid": answer.get("valid"),
                                               "violations": _codes(answer.get("violations"))})}
    if case.kind == "apply":
        names = ANSWER_ACTIONS.get(str(case.answer), (str(case.answer),))
        return {names[0]: (names, {"allowed": answer.get("allowed"), "status": answer.get("status"),
                                   "effects": sorted(e.get("effect", "") for e in answer.get("effects") or ()),
                                   "violations": _codes(answer.get("violations"))})}
    return {action: ((action,), {"allowed": entry.get("allowed"), "denials": _codes(entry.get("denials"))})
            for action, entry in (answer.get("actions") or {}).items()}


def compare_case(engine: Engine, case: Case, old: str, new: str, affects: dict[str, set[str]],
                 report: RegressionReport) -> None:
    try:
        question = case.question()
        old_answer, new_answer = ask(engine, question.under(old)), ask(engine, question.under(new))
    except EngineError as exc:  # e.g. the older version does not know the case's scenario
        report.skipped.append((case, old, new, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
        return
    report.compared += 1
    before, after = summaries(case, old_answer), summaries(case, new_answer)
    for action in list(before) + [a for a in after if a not in before]:
        names, old_summary = before.get(action, ((action,), None))
        _, new_summary = after.get(action, ((action,), None))
        if old_summary == new_summary:
            continue
        explained_by = tuple(sorted(i for i, actions in affects.items() if actions & set(names)))
        report.divergences.append(Divergence(case, old, new, action, old_summary, new_summary,
                                             explained_by, old_answer, new_answer))


def run_regression(engine: Engine, cases: Iterable[Case]) -> RegressionReport:
    report = RegressionReport()
    pairs = version_pairs(engine)
    affects = {new: declared_affects(engine, new) for _, new in pairs}
    cases = list(cases)
    for old, new in pairs:
        for case in cases:
            compare_case(engine, case, old, new, affects[new], report)
    return report
