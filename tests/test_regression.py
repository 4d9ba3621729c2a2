"""Decision regression: the policy test tickets decided under every pair of adjacent versions;
every decision that differs is explained by a declared change of the newer version."""
from __future__ import annotations

import shutil

import pytest

from engine.api import Engine
from engine.core.resources import default_rules_dir
from engine.policytests.files import load_cases
from engine.history.regression import run_regression


@pytest.fixture(scope="module")
def cases():
    return load_cases([default_rules_dir() / "tests"])


@pytest.fixture(scope="module")
def report(cases):
    return run_regression(Engine.from_directory(), cases)


def test_every_decision_change_is_declared(report):
    unexplained = report.unexplained
    assert not unexplained, "\n\n".join(d.format() for d in unexplained)


def test_the_comparison_sees_the_declared_changes(report):
    assert report.compared > 100
    explained = {(d.new, d.action): d.explained_by for d in report.divergences}
    assert explained[("2024-04-22", "reject")] == ("negotiation-required-before-reject",)
    assert "negotiation-limit-two" in explained[("2024-03-22", "negotiate")]
    assert explained[("2024-05-31", "extend_receipt")] == ("related-features-documented",)
    assert explained[("2024-03-22", "reject_negotiation")] == ("buyer-reject-escalates",)


def test_skips_are_only_tickets_an_older_version_cannot_read(report):
    for case, old, _new, why in report.skipped:
        assert why.startswith("TicketError"), (case.name, old, why)


def test_an_undeclared_decision_change_fails_with_ticket_and_both_decisions(tmp_path, cases):
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("tests"))
    path = rules / "2024-04-22.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = text.index("id: negotiation-required-before-reject")
    old = "affects_actions: [reject]"
    start = text.index(old, anchor)
    path.write_text(text[:start] + "affects_actions: [agree]" + text[start + len(old):], encoding="utf-8")

    report = run_regression(Engine.from_directory(rules), cases)
    unexplained = report.unexplained
    assert unexplained and {(d.new, d.action) for d in unexplained} == {("2024-04-22", "reject")}
    text = unexplained[0].format()
    assert "UNEXPLAINED" in text and "`reject`" in text
    assert "ticket: {" in text
    assert "  2024-03-22: {" in text and "  2024-04-22: {" in text
    assert "NEGOTIATION_REQUIRED_FIRST" in text


def test_aftersale_test_fails_on_an_unexplained_difference(tmp_path, capsys):
    """The policy team's command runs the regression too: a decision that changes between two
    versions without a declared change naming the action fails `aftersale test` (exit 1)."""
    from engine.cli.main import main

    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)  # with tests/: the cases are the tickets
    path = rules / "2024-04-22.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("affects_actions: [reject]", text.index("id: negotiation-required-before-reject"))
    path.write_text(text[:start] + "affects_actions: [agree]" + text[start + len("affects_actions: [reject]"):],
                    encoding="utf-8")

    assert main(["test", "--rules", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "UNEXPLAINED: no declared change of 2024-04-22 lists `reject`" in out
    assert main(["test", "--rules", str(rules), "--no-regression"]) == 0
