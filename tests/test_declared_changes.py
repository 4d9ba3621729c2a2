"""Declared vs computed changes: the bundled versions declare exactly what changed, and an edit
nobody declared fails at its line and column in the newer file."""
from __future__ import annotations

import shutil

import pytest

from engine.policy.checks.declared_changes import check_bundle
from engine.history.versions import load_versions
from engine.core.resources import default_rules_dir


@pytest.fixture()
def rules_copy(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target, ignore=shutil.ignore_patterns("tests"))
    return target


def edit(path, old, new, after=""):
    """Replace `old` (unique, or the first occurrence after `after`); return its line number."""
    text = path.read_text(encoding="utf-8")
    if after:
        start = text.index(after)
    else:
        assert text.count(old) == 1, f"`{old}` must occur once in {path.name}"
        start = 0
    index = text.index(old, start)
    path.write_text(text[:index] + new + text[index + len(old):], encoding="utf-8")
    return text[:index].count("\n") + 1


def test_bundled_versions_declare_every_change():
    assert check_bundle(load_versions()) == []


def test_bundled_versions_carry_twelve_declared_changes():
    assert sum(len(doc.changes) for doc in load_versions()) == 12


def test_undeclared_edit_fails_at_its_location(rules_copy):
    newest = rules_copy / "2024-05-31.yaml"
    line = edit(newest, "buyer_response_hours: {value: 48,", "buyer_response_hours: {value: 72,")
    problems = check_bundle(load_versions(rules_copy))
    assert len(problems) == 1, [p.format() for p in problems]
    problem = problems[0]
    assert problem.code == "undeclared_change"
    assert "undeclared change at `timeouts/buyer_response_hours/value`" in problem.message
    assert problem.file.endswith("2024-05-31.yaml")
    assert problem.line == line
    assert problem.column == newest.read_text(encoding="utf-8").splitlines()[line - 1].index("value") + 1
    assert problem.path == "/timeouts/buyer_response_hours/value"


def test_undeclared_reason_move_points_at_the_list_it_left_uncovered(rules_copy):
    newest = rules_copy / "2024-05-31.yaml"
    edit(newest, "request_evidence: [contact_failed, verify_delivery_signed]",
         "request_evidence: [contact_failed]")
    edit(newest, "request_evidence: [contact_failed, add_problem_photos]",
         "request_evidence: [contact_failed, add_problem_photos, verify_delivery_signed]",
         after="label: 商品质量问题")
    problems = check_bundle(load_versions(rules_copy))
    assert [p.code for p in problems] == ["undeclared_change"]
    assert "scenarios/quality_issue/reasons/request_evidence/verify_delivery_signed" in problems[0].message


def test_undeclared_removal_is_located_at_the_surviving_parent(rules_copy):
    newest = rules_copy / "2024-05-31.yaml"
    edit(newest, "  proposal_edits: {value: 1, section: 三-3.1.2-(3)}\n", "")
    problems = check_bundle(load_versions(rules_copy))
    assert len(problems) == 1
    assert problems[0].path == "/limits"
    assert "`limits/proposal_edits`" in problems[0].message


def test_a_stale_touches_prefix_is_a_warning(rules_copy):
    newest = rules_copy / "2024-05-31.yaml"
    line = edit(newest, "      - carriers\n", "      - carriers\n      - carrierz/typo\n")
    problems = check_bundle(load_versions(rules_copy))
    assert [(p.code, p.severity) for p in problems] == [("touches_unused", "warning")]
    assert problems[0].line == line + 1 and problems[0].path == "/changes/0/touches/6"
    assert "`carrierz/typo`" in problems[0].message


def test_declared_change_matching_nothing_is_reported(rules_copy):
    newest = rules_copy / "2024-05-31.yaml"
    line = edit(newest, "changes:\n", "changes:\n"
                "  - id: phantom\n    text: 虚构的调整\n    ref: \"\"\n    section: 四\n"
                "    touches: [limits/negotiations_per_ticket]\n")
    problems = check_bundle(load_versions(rules_copy))
    assert [p.code for p in problems] == ["touches_unused", "declared_change_unmatched"]
    problems = problems[1:]
    assert "declared change `phantom` matches no computed change" in problems[0].message
    assert problems[0].line == line + 1
    assert problems[0].path == "/changes/0"


def test_bundle_loader_runs_the_check(rules_copy):
    from engine.policy.bundle import load_directory
    from engine.core.errors import PolicyError

    newest = rules_copy / "2024-05-31.yaml"
    line = edit(newest, "negotiations_per_ticket: {value: 2,", "negotiations_per_ticket: {value: 3,")
    with pytest.raises(PolicyError) as caught:
        load_directory(rules_copy)
    undeclared = [d for d in caught.value.diagnostics if d.code == "undeclared_change"]
    assert len(undeclared) == 1
    assert undeclared[0].line == line
    assert "`limits/negotiations_per_ticket/value`" in undeclared[0].message
