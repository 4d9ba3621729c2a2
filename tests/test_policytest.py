"""The policy test runner itself: case files are checked and located, expectations compare what
they state (exactly), and the shipped cases are load-bearing (each mutated expectation fails)."""
from __future__ import annotations

import copy
import json
import textwrap
from dataclasses import replace

import pytest

from engine.api import Engine
from engine.cli.main import main
from engine.core.resources import REPO_ROOT
from engine.policytests.runner import all_rule_ids, coverage, run_case, same
from engine.policytests.files import CaseFileError, deep_merge, load_cases

RULES_DIR = REPO_ROOT / "rules"
SHIPPED = load_cases([RULES_DIR / "tests"])

HEADER = """\
defaults:
  actor: merchant
  at: "2024-06-10T12:00:00+08:00"
  ticket:
    ticket_id: T-1
    type: refund_only
    status: merchant_processing
    scenario: not_received
    buyer_reason: 未收到货
    created_at: "2024-06-01T10:00:00+08:00"
    order: {paid_amount: 40000, category: general, goods_kind: physical, quantity: 1, shipped: true}
    request: {refund_amount: 40000, quantity: 1, evidence_count: 0}
cases:
"""


@pytest.fixture(scope="module")
def engine():
    eng = Engine.from_directory(RULES_DIR)
    yield eng
    eng.close()


def write(tmp_path, body: str, name: str = "cases.yaml"):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return path


# -- case files ------------------------------------------------------------------------------------

def test_deep_merge_merges_mappings_replaces_lists_and_null_deletes():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    merged = deep_merge(base, {"a": {"c": [3]}, "d": None, "e": {"g": 2}})
    assert merged == {"a": {"b": 1, "c": [3]}, "e": {"f": 1, "g": 2}}
    assert base["a"]["c"] == [1, 2]  # inputs untouched


def test_defaults_fill_each_case(tmp_path):
    path = write(tmp_path, """\
      - name: one
        ticket: {order: {category: fresh_food}}
        expect: {version: "2024-05-31"}
    """)
    (case,) = load_cases([path])
    assert case.kind == "decide" and case.actor == "merchant" and case.at.startswith("2024-06-10")
    assert case.ticket["order"] == {"paid_amount": 40000, "category": "fresh_food", "goods_kind": "physical",
                                    "quantity": 1, "shipped": True}


def test_problems_in_case_files_are_located_all_at_once(tmp_path):
    path = write(tmp_path, """\
      - name: unknown expectation
        expect: {denied: {reject: NEGOTIATION_REQUIRED_FIRST}, alowed: [agree]}
      - name: both check and apply
        check: {action: negotiate}
        apply: {answer: accept}
        expect: {valid: true}
      - name: unknown action
        expect: {denied: {refund: STATUS_NOT_ALLOWED}}
      - name: a check has no actor
        actor: merchant
        check: {action: agree}
        expect: {valid: true}
    """)
    with pytest.raises(CaseFileError) as info:
        load_cases([path])
    lines = str(info.value).splitlines()[1:]
    text = "\n".join(lines)
    assert f"{path}:15:" in text and "/cases/0/expect" in text and "alowed" in text
    assert "/cases/1" in text and "at most one of `check` and `apply`" in text
    assert "/cases/2/expect/denied" in text and "refund" in text
    assert "/cases/3/actor" in text
    assert len(lines) >= 4


def test_duplicate_case_names_across_files_are_refused(tmp_path):
    a = write(tmp_path, "  - {name: same, expect: {version: \"2024-05-31\"}}\n", "a.yaml")
    b = write(tmp_path, "  - {name: same, expect: {version: \"2024-05-31\"}}\n", "b.yaml")
    with pytest.raises(CaseFileError) as info:
        load_cases([a, b])
    assert "duplicate_case_name" in json.dumps(info.value.to_json()) and f"{a}:" in str(info.value)


def test_yaml_syntax_error_is_located(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("cases:\n  - name: x\n    expect: {version: [\n", encoding="utf-8")
    with pytest.raises(CaseFileError) as info:
        load_cases([path])
    assert str(info.value).splitlines()[1].startswith(f"{path}:")


def test_a_time_without_offset_is_refused(tmp_path):
    path = write(tmp_path, "  - {name: naive, at: \"2024-06-10T12:00:00\", expect: {version: \"2024-05-31\"}}\n")
    with pytest.raises(CaseFileError, match="/cases/0/at"):
        load_cases([path])


# -- comparisons -----------------------------------------------------------------------------------

def test_same_is_partial_on_mappings_exact_on_sets_and_instants():
    assert same({"a": 1}, {"a": 1, "b": 2})
    assert not same({"a": 1, "c": 3}, {"a": 1})
    assert same(["x", "y"], ["y", "x"]) and not same(["x"], ["x", "y"])
    assert same(["modify_request"], [{"id": "modify_request", "label": "..."}])
    assert same([{"id": "b", "k": 1}], [{"id": "a"}, {"id": "b", "k": 1}])
    assert not same([{"id": "b", "k": 2}], [{"id": "a"}, {"id": "b", "k": 1}])
    assert same("2024-06-10T12:00:00+08:00", "2024-06-10T04:00:00Z")
    assert not same("2024-06-10T12:00:00+08:00", "2024-06-10T12:00:00Z")
    assert not same(True, 1) and not same(0, False)
    assert same(None, None) and not same(None, "x")


def test_a_failing_case_reports_file_line_expected_and_actual(tmp_path, engine):
    path = write(tmp_path, """\
      - name: wrong code
        expect:
          denied: {reject: STATUS_NOT_ALLOWED}
          fired: [merchant.reject.negotiation_required]
    """)
    (case,) = load_cases([path])
    result = run_case(engine, case)
    assert not result.passed
    (mismatch,) = result.mismatches
    assert mismatch.where == "expect.denied.reject" and mismatch.line == 16
    assert mismatch.expected == ["STATUS_NOT_ALLOWED"]
    assert "NEGOTIATION_REQUIRED_FIRST" in json.dumps(mismatch.actual)
    assert f"{path}:16: expect.denied.reject: expected" in result.format()


def test_denial_codes_compare_as_an_exact_set(tmp_path, engine):
    path = write(tmp_path, """\
      - name: extra code expected
        expect: {denied: {reject: [NEGOTIATION_REQUIRED_FIRST, STATUS_NOT_ALLOWED]}}
      - name: exact
        expect: {denied: {reject: [NEGOTIATION_REQUIRED_FIRST]}}
    """)
    first, second = load_cases([path])
    assert not run_case(engine, first).passed
    assert run_case(engine, second).passed


def test_unknown_rule_ids_fail_the_case(tmp_path, engine):
    path = write(tmp_path, """\
      - name: typo in not_fired would pass silently otherwise
        covers: [merchant.reject.negotiaton_required]
        expect: {not_fired: [merchant.reject.negotiaton_required]}
    """)
    (case,) = load_cases([path])
    result = run_case(engine, case)
    assert {m.where for m in result.mismatches} == {"covers", "expect.not_fired"}


def test_expected_and_unexpected_engine_errors(tmp_path, engine):
    path = write(tmp_path, """\
      - name: expects an error that does not come
        expect: {error: TicketError}
      - name: unknown scenario
        ticket: {scenario: no_such_scenario}
        expect: {version: "2024-05-31"}
      - name: expected unknown scenario
        ticket: {scenario: no_such_scenario}
        expect: {error: TicketError}
    """)
    no_error, unexpected, expected = load_cases([path])
    assert [m.where for m in run_case(engine, no_error).mismatches] == ["expect.error"]
    result = run_case(engine, unexpected)
    assert result.error and result.error.startswith("TicketError")
    assert run_case(engine, expected).passed


def test_coverage_reports_unfired_rules_per_version(tmp_path, engine):
    path = write(tmp_path, "  - {name: one, expect: {version: \"2024-05-31\"}}\n")
    results = [run_case(engine, c) for c in load_cases([path])]
    report = {v["version"]: v for v in coverage(engine, results)}
    newest = report["2024-05-31"]
    assert "merchant.reject.negotiation_required" in newest["fired"]
    assert "merchant.extend_receipt.too_early" in newest["unfired"]
    assert report["2023-12-22"]["fired"] == [] and report["2023-12-22"]["changed"]
    assert "merchant.negotiate.limit" in report["2023-12-22"]["dropped"]  # null limit: never fires


# -- the shipped cases are load-bearing --------------------------------------------------------------

def _mutations(expect: dict):
    """Yield (label, mutated expect) pairs; each must make a passing case fail."""
    if "version" in expect:
        yield "version", {**expect, "version": "2000-01-01"}
    for key in ("valid", "allowed", "pending_timed_out", "may_reapply"):
        if isinstance(expect.get(key), bool):
            yield key, {**expect, key: not expect[key]}
    if "status" in expect:
        yield "status", {**expect, "status": "closed" if expect["status"] != "closed" else "refunded"}
    for key in ("denied", "advised"):
        if expect.get(key):
            action, codes = next(iter(expect[key].items()))
            codes = codes if isinstance(codes, list) else [codes]
            yield key, {**expect, key: {**expect[key], action: codes + ["BOGUS_CODE"]}}
    if "violations" in expect:
        codes = expect["violations"] if isinstance(expect["violations"], list) else [expect["violations"]]
        yield "violations", {**expect, "violations": codes + ["BOGUS_CODE"]}
    if "effects" in expect:
        yield "effects", {**expect, "effects": expect["effects"] + ["closed" if "closed" not in expect["effects"] else "auto_refund"]}
    if "refund_amount" in expect:
        yield "refund_amount", {**expect, "refund_amount": (expect["refund_amount"] or 0) + 1}
    if expect.get("fired"):
        yield "fired", {**expect, "not_fired": [expect["fired"][0]]}
    if expect.get("not_fired"):
        yield "not_fired", {**expect, "fired": [expect["not_fired"][0]]}
    if expect.get("available_at"):
        action, when = next(iter(expect["available_at"].items()))
        yield "available_at", {**expect, "available_at": {action: "2000-01-01T00:00:00+08:00"}}
    if expect.get("deadlines"):
        name, when = next(iter(expect["deadlines"].items()))
        yield "deadlines", {**expect, "deadlines": {name: "2000-01-01T00:00:00+08:00"}}
    if "error" in expect:
        yield "error", {**expect, "error": "UnknownActionError"}


def test_every_shipped_expectation_can_fail(engine):
    known = all_rule_ids(engine)
    survivors = []
    for case in (c for c in SHIPPED if not c.known_issue):
        for label, mutated in _mutations(copy.deepcopy(case.expect)):
            result = run_case(engine, replace(case, expect=mutated), known)
            if result.matched:
                survivors.append(f"{case.name}: {label}")
    assert not survivors, survivors


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_passes_on_the_shipped_cases(capsys):
    assert main(["test", "--rules", str(RULES_DIR)]) == 0
    known = sum(1 for c in SHIPPED if c.known_issue)
    assert f"{len(SHIPPED) - known} passed, 0 failed, {known} known issues" in capsys.readouterr().out


def test_known_issues_are_xfail_and_a_fixed_one_is_xpass(tmp_path, engine):
    path = write(tmp_path, """\
      - name: still wrong
        known_issue: the engine says otherwise
        expect: {version: "2024-04-22"}
      - name: fixed meanwhile
        known_issue: stale marker
        expect: {version: "2024-05-31"}
    """)
    still, fixed = (run_case(engine, c) for c in load_cases([path]))
    assert still.outcome == "xfail" and still.passed and not still.matched
    assert fixed.outcome == "xpass" and not fixed.passed and "remove its `known_issue`" in fixed.format()


def test_cli_fails_and_prints_location_expected_and_actual(tmp_path, capsys):
    path = write(tmp_path, "  - {name: wrong version, expect: {version: \"2024-04-22\"}}\n")
    assert main(["test", str(path), "--rules", str(RULES_DIR)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "wrong version" in out and f"{path}:14: expect.version: expected \"2024-04-22\", got \"2024-05-31\"" in out


def test_cli_json_and_coverage(tmp_path, capsys):
    path = write(tmp_path, "  - {name: fine, expect: {version: \"2024-05-31\"}}\n")
    assert main(["test", str(path), "--rules", str(RULES_DIR), "--format", "json", "--coverage"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] == 1 and out["failed"] == 0 and out["cases"][0]["name"] == "fine"
    assert [v["version"] for v in out["coverage"]] == ["2023-12-22", "2024-03-11", "2024-03-22", "2024-04-22", "2024-05-31"]


def test_cli_reports_a_malformed_case_file_without_traceback(tmp_path, capsys):
    path = write(tmp_path, "  - {name: bad, expect: {nonsense: 1}}\n")
    assert main(["test", str(path), "--rules", str(RULES_DIR)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:14:" in err and "nonsense" in err and "Traceback" not in err
