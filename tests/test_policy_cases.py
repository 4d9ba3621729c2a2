"""Every policy test case in rules/tests/*.yaml runs as its own pytest item (id = case name), so a
policy change shows which cases it breaks by name. Plus the coverage gate: in every version, every
rule that is new or changed there is fired by some case run under that version."""
from __future__ import annotations

import pytest

from engine.api import Engine
from engine.core.resources import REPO_ROOT
from engine.policytests.runner import all_rule_ids, coverage, run_case, run_cases
from engine.policytests.files import load_cases

RULES_DIR = REPO_ROOT / "rules"
CASES = load_cases([RULES_DIR / "tests"])


@pytest.fixture(scope="module")
def engine():
    eng = Engine.from_directory(RULES_DIR)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def known_rules(engine):
    return all_rule_ids(engine)


def _param(case):
    # a declared known issue (engine or policy disagrees with the guide) is a strict xfail: it shows
    # in the summary, and once fixed the XPASS fails until the marker is removed from the YAML
    marks = [pytest.mark.xfail(strict=True, reason=case.known_issue)] if case.known_issue else []
    return pytest.param(case, marks=marks, id=case.name)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_policy_case(engine, known_rules, case):
    result = run_case(engine, case, known_rules)
    assert result.matched, "\n" + result.format()


def test_the_cases_are_many_and_span_every_version(engine):
    assert len(CASES) >= 60
    answered = {r.version for r in run_cases(engine, CASES) if r.version}
    assert answered == {v.version for v in engine.versions()}


def test_every_new_or_changed_rule_is_fired_in_its_version(engine):
    report = coverage(engine, run_cases(engine, CASES))
    gaps = {v["version"]: v["changed_unfired"] for v in report if v["changed_unfired"]}
    assert not gaps, f"rules new or changed in a version that no case of that version fires: {gaps}"
    # the newest version has every rule; each must be fired by some case
    newest = report[-1]
    assert newest["unfired"] == [], newest["unfired"]


def test_every_declared_cover_exists(known_rules):
    unknown = {c.name: sorted(set(c.covers) - known_rules) for c in CASES if set(c.covers) - known_rules}
    assert not unknown
