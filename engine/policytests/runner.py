"""Run policy test cases (`rules/tests/*.yaml`, read by engine/policytest_files.py) against an
`Engine`, compare each answer with what the case expects, and report coverage of the rules.

Expectations are partial on purpose: a case states only what it is about, so one policy change
breaks the cases about that change and no others. What a case does state is compared exactly
(a set of denial codes is that set, not a superset), because a policy test that tolerates an
extra denial would miss the bug it exists for.

Every mismatch carries the line of the expectation that failed, so the report reads
`rules/tests/limits.yaml:42: expect.denied.negotiate: expected [...], got [...]`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from engine.core.errors import EngineError
from engine.policytests.files import Case
from engine.questions import EngineLike, ask
from engine.rules.compile import CompiledPolicy, CompiledRule

if TYPE_CHECKING:
    from engine.api import Engine
    from engine.policytests.http import HttpEngine
from engine.core.timeutil import parse_aware


@dataclass(frozen=True)
class Mismatch:
    where: str  # `expect.denied.reject`
    line: int
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "line": self.line, "expected": self.expected, "actual": self.actual}


@dataclass
class CaseResult:
    case: Case
    version: str | None = None
    fired: tuple[str, ...] = ()
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None  # the engine raised something the case did not expect

    @property
    def matched(self) -> bool:
        """The answer is what the case expects."""
        return not self.mismatches and self.error is None

    @property
    def outcome(self) -> str:
        """`pass`, `fail`, `xfail` (a declared known issue still fails: fine) or `xpass` (a known
        issue now matches: a failure, so the stale marker gets removed)."""
        if self.case.known_issue:
            return "xpass" if self.matched else "xfail"
        return "pass" if self.matched else "fail"

    @property
    def passed(self) -> bool:
        return self.outcome in ("pass", "xfail")

    def format(self) -> str:
        """Human text: one header line, then one line per problem (`file:line: where: ...`)."""
        label = {"pass": "ok   ", "fail": "FAIL ", "xfail": "XFAIL", "xpass": "XPASS"}[self.outcome]
        head = f"{label} {self.case.name}  ({self.case.location}, {self.case.kind}" \
               f"{', version ' + self.version if self.version else ''})"
        lines = [head]
        if self.case.known_issue:
            lines.append(f"      known issue: {self.case.known_issue}")
        if self.outcome == "xpass":
            lines.append(f"      {self.case.location}: the case now passes: remove its `known_issue`")
        if self.error:
            lines.append(f"      {self.case.location}: error: {self.error}")
        for m in self.mismatches:
            lines.append(f"      {self.case.file}:{m.line}: {m.where}: expected {_show(m.expected)}, got {_show(m.actual)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.case.name, "file": self.case.file, "line": self.case.line(), "kind": self.case.kind,
                "passed": self.passed, "outcome": self.outcome,
                "known_issue": self.case.known_issue, "version": self.version, "fired": list(self.fired), "error": self.error,
                "mismatches": [m.to_json() for m in self.mismatches]}


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- running --------------------------------------------------------------------------------------

class CaseEngine(EngineLike, Protocol):
    """What the runner asks of an engine besides the questions: the compiled rules of a version
    (their ids validate `covers`/`fired` and make the coverage report)."""

    def compiled(self, version: str) -> CompiledPolicy: ...


def run_cases(engine: CaseEngine, cases: Iterable[Case]) -> list[CaseResult]:
    known = all_rule_ids(engine)
    return [run_case(engine, case, known) for case in cases]


def run_case(engine: CaseEngine, case: Case, known_rules: set[str] | None = None) -> CaseResult:
    result = CaseResult(case)
    expect = case.expect
    known = known_rules if known_rules is not None else all_rule_ids(engine)
    for key in ("covers", "fired", "not_fired"):
        ids = case.covers if key == "covers" else expect.get(key, ())
        unknown = sorted(set(ids) - known)
        if unknown:
            where = key if key == "covers" else f"expect.{key}"
            line = case.line(key) if key == "covers" else case.line("expect", key)
            result.mismatches.append(Mismatch(where, line, "rule ids that exist in some version", unknown))
    try:
        answer = ask(engine, case.question())
    except EngineError as exc:
        raised = type(exc).__name__
        if expect.get("error") is None:
            result.error = f"{raised}: {exc}"
        elif expect["error"] != raised and not _is_a(exc, expect["error"]):
            result.mismatches.append(Mismatch("expect.error", case.line("expect", "error"), expect["error"], f"{raised}: {exc}"))
        return result
    except Exception as exc:  # an engine bug: report it on this case and go on with the others
        result.error = f"engine crashed: {type(exc).__name__}: {exc}"
        return result
    result.version = (answer.get("policy") or {}).get("version")
    result.fired = tuple(_fired(answer))
    if "error" in expect:
        result.mismatches.append(Mismatch("expect.error", case.line("expect", "error"), expect["error"], "an answer"))
        return result
    compare = {"decide": _compare_decision, "check": _compare_check, "apply": _compare_apply}[case.kind]
    compare(case, answer, result)
    _compare_common(case, answer, result)
    return result


def _is_a(exc: Exception, name: str) -> bool:
    return any(klass.__name__ == name for klass in type(exc).__mro__)


def _fired(answer: dict[str, Any]) -> list[str]:
    ids = [step.get("rule") for step in answer.get("trace") or () if isinstance(step, dict)]
    if answer.get("rule"):
        ids.append(answer["rule"])
    return [i for i in dict.fromkeys(ids) if i]


# -- comparisons ----------------------------------------------------------------------------------

class _Out:
    """Collects mismatches for one case, locating each by its expectation key."""

    def __init__(self, case: Case, result: CaseResult) -> None:
        self.case, self.result = case, result

    def differ(self, keys: tuple[str, ...], expected: Any, actual: Any) -> None:
        self.result.mismatches.append(Mismatch("expect." + ".".join(keys), self.case.line("expect", *keys), expected, actual))

    def equal(self, keys: tuple[str, ...], expected: Any, actual: Any) -> None:
        if not same(expected, actual):
            self.differ(keys, expected, actual)


def _compare_common(case: Case, answer: dict[str, Any], result: CaseResult) -> None:
    out, expect = _Out(case, result), case.expect
    if "version" in expect:
        out.equal(("version",), expect["version"], result.version)
    fired = set(result.fired)
    missing = [r for r in expect.get("fired", ()) if r not in fired]
    if missing:
        out.differ(("fired",), missing, sorted(fired))
    unexpected = [r for r in expect.get("not_fired", ()) if r in fired]
    if unexpected:
        out.differ(("not_fired",), f"none of {expect['not_fired']}", unexpected)
    for name, when in (expect.get("deadlines") or {}).items():
        out.equal(("deadlines", name), when, (answer.get("deadlines") or {}).get(name, "<absent>"))


def _compare_decision(case: Case, answer: dict[str, Any], result: CaseResult) -> None:
    out, expect = _Out(case, result), case.expect
    actions = answer.get("actions") or {}
    for key in ("status", "pending_timed_out"):
        if key in expect:
            out.equal((key,), expect[key], answer.get(key, "<absent>"))
    for action in expect.get("allowed", ()):
        got = actions.get(action)
        if got is None or got.get("allowed") is not True:
            out.differ(("allowed",), f"{action} allowed", _action_summary(got))
    for action, codes in (expect.get("denied") or {}).items():
        got = actions.get(action)
        actual = sorted({d.get("code") for d in (got or {}).get("denials") or ()})
        if got is None or got.get("allowed") is not False or sorted(set(_codes(codes))) != actual:
            out.differ(("denied", action), sorted(set(_codes(codes))), _action_summary(got))
    for action, codes in (expect.get("advised") or {}).items():
        got = actions.get(action) or {}
        out.equal(("advised", action), sorted(set(_codes(codes))), sorted({a.get("code") for a in got.get("advice") or ()}))
    for action, wanted in (expect.get("platform_errors") or {}).items():
        denials = (actions.get(action) or {}).get("denials") or ()
        got_errors = sorted({d["platform_error"] for d in denials if d.get("platform_error") is not None})
        out.equal(("platform_errors", action), sorted(set(_codes(wanted))), got_errors)
    for action, partial in (expect.get("constraints") or {}).items():
        got = (actions.get(action) or {}).get("constraints")
        if got is None:
            out.differ(("constraints", action), partial, _action_summary(actions.get(action)))
            continue
        for key, value in partial.items():
            out.equal(("constraints", action, key), value, got.get(key, "<absent>"))
    for action, when in (expect.get("available_at") or {}).items():
        out.equal(("available_at", action), when, _available_at(actions.get(action)))


def _compare_check(case: Case, answer: dict[str, Any], result: CaseResult) -> None:
    out, expect = _Out(case, result), case.expect
    violations = answer.get("violations") or []
    if "valid" in expect:
        out.equal(("valid",), expect["valid"], answer.get("valid"))
    if "violations" in expect:
        out.equal(("violations",), sorted(set(_codes(expect["violations"]))), sorted({v.get("code") for v in violations}))
    by_code = {v.get("code"): v for v in violations}
    for key, attribute in (("fields", "field"), ("platform_errors", "platform_error")):
        for code, wanted in (expect.get(key) or {}).items():
            got = by_code.get(code)
            out.equal((key, code), wanted, got.get(attribute) if got else f"no {code} violation")


def _compare_apply(case: Case, answer: dict[str, Any], result: CaseResult) -> None:
    out, expect = _Out(case, result), case.expect
    effects = answer.get("effects") or []
    for key in ("allowed", "status", "rule"):
        if key in expect:
            out.equal((key,), expect[key], answer.get(key, "<absent>"))
    if "violations" in expect:
        out.equal(("violations",), sorted(set(_codes(expect["violations"]))),
                  sorted({v.get("code") for v in answer.get("violations") or ()}))
    if "effects" in expect:
        out.equal(("effects",), sorted(expect["effects"]), sorted(e.get("effect") for e in effects))
    if "refund_amount" in expect:
        refunds = [e.get("refund_amount") for e in effects if e.get("effect") == "auto_refund"]
        out.equal(("refund_amount",), expect["refund_amount"], refunds[0] if refunds else None)
    if "may_reapply" in expect:
        closed = [e for e in effects if e.get("effect") == "closed"]
        out.equal(("may_reapply",), expect["may_reapply"], closed[0].get("may_reapply") if closed else "no closed effect")


def _codes(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _action_summary(action: dict[str, Any] | None) -> Any:
    if action is None:
        return "<no such action in the decision>"
    return {"allowed": action.get("allowed"), "denials": sorted(d.get("code") for d in action.get("denials") or ())}


def _available_at(action: dict[str, Any] | None) -> Any:
    if action is None:
        return "<no such action in the decision>"
    times = [d["unlock"]["available_at"] for d in action.get("denials") or ()
             if isinstance(d.get("unlock"), dict) and d["unlock"].get("available_at")]
    return max(times, key=lambda t: parse_aware(t).timestamp()) if times else None


def same(expected: Any, actual: Any) -> bool:
    """Partial, policy-minded equality: mappings compare only the expected keys; a list of ids
    matches a list of objects by their `id`; lists of scalars compare as sets; ISO times compare
    as instants; True is not 1."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if all(isinstance(a, dict) for a in actual) and all(isinstance(e, str) for e in expected) and actual:
            actual = [a.get("id") for a in actual]
        if expected and all(isinstance(e, dict) and "id" in e for e in expected):
            # items named by id: each must match the actual item of that id (others may exist)
            by_id = {a.get("id"): a for a in actual if isinstance(a, dict)}
            return all(e["id"] in by_id and same(e, by_id[e["id"]]) for e in expected)
        if all(not isinstance(e, (dict, list)) for e in expected) and all(not isinstance(a, (dict, list)) for a in actual):
            return sorted(map(_key, expected)) == sorted(map(_key, actual))
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, str) and isinstance(actual, str) and expected != actual:
        return _same_instant(expected, actual)
    return bool(expected == actual)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _same_instant(a: str, b: str) -> bool:
    try:
        return parse_aware(a) == parse_aware(b)
    except (ValueError, TypeError):
        return False


# -- coverage -------------------------------------------------------------------------------------

def all_rule_ids(engine: CaseEngine) -> set[str]:
    return {rule_id for version in _versions(engine) for rule_id in engine.compiled(version).rules}


def _versions(engine: CaseEngine) -> list[str]:
    return [info.version for info in engine.versions()]


def _fingerprint(rule: CompiledRule) -> str:
    """What makes a rule behave as it does: stage, actions, resolved condition, effect."""
    return json.dumps([rule.stage, list(rule.actions), rule.dropped, rule.condition, rule.python, rule.effect],
                      sort_keys=True, ensure_ascii=False, default=str)


def coverage(engine: CaseEngine, results: Iterable[CaseResult]) -> list[dict[str, Any]]:
    """Per version: its rules, those some case run under that version fired, and the gaps.
    `changed` are the rules new or different from the previous version (what its cases must
    reach); `dropped` never fire (a null limit) and are not counted."""
    fired_by_version: dict[str, set[str]] = {}
    covered_by_version: dict[str, set[str]] = {}
    for r in results:
        if r.version:
            fired_by_version.setdefault(r.version, set()).update(r.fired)
            covered_by_version.setdefault(r.version, set()).update(r.case.covers)
    report: list[dict[str, Any]] = []
    previous: dict[str, str] = {}
    for version in _versions(engine):
        rules = engine.compiled(version).rules
        live = [rid for rid, rule in rules.items() if not rule.dropped]
        prints = {rid: _fingerprint(rule) for rid, rule in rules.items()}
        changed = [rid for rid in live if previous.get(rid) != prints[rid]]
        fired = fired_by_version.get(version, set())
        report.append({
            "version": version,
            "rules": len(live),
            "fired": sorted(set(live) & fired),
            "unfired": [rid for rid in live if rid not in fired],
            "changed": changed,
            "changed_unfired": [rid for rid in changed if rid not in fired],
            "declared_not_fired": sorted(covered_by_version.get(version, set()) & set(live) - fired),
            "dropped": sorted(rid for rid, rule in rules.items() if rule.dropped),
        })
        previous = prints
    return report


def format_coverage(report: list[dict[str, Any]]) -> str:
    lines = []
    for v in report:
        lines.append(f"{v['version']}: {len(v['fired'])}/{v['rules']} rules fired by some case"
                     f"; new or changed in this version: {len(v['changed'])}, of which unfired: {len(v['changed_unfired'])}")
        for rid in v["unfired"]:
            mark = "  (new/changed here)" if rid in v["changed_unfired"] else ""
            lines.append(f"    not fired: {rid}{mark}")
        if v["dropped"]:
            lines.append(f"    never fires in this version (null limit): {', '.join(v['dropped'])}")
    return "\n".join(lines)


def _both_are_engines(local: "Engine", remote: "HttpEngine") -> tuple[CaseEngine, CaseEngine]:
    """Never called: mypy (`make test`) proves here that the in-process engine and the HTTP client
    both satisfy `EngineLike`, so a signature drifting on either side fails the build."""
    return local, remote
