"""What a policy pull request gets: `--format github` annotations from `validate` and `test`,
`aftersale diff --format markdown` grouped by declared change, and the pre-commit hooks."""
from __future__ import annotations

import difflib
import re
import shutil

import yaml

from engine.cli.main import build_parser, main
from engine.cli.output import github_annotation
from server_support import REPO, RULES

IN_FORCE = "2024-05-31"


def copy_rules(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def test_annotations_escape_what_the_runner_would_misread():
    line = github_annotation("error", "50% off\nsecond line", "rules/a,b.yaml", 3, 7, "code: x")
    assert line == "::error file=rules/a%2Cb.yaml,line=3,col=7,title=code%3A x::50%25 off%0Asecond line"
    assert github_annotation("warning", "plain") == "::warning::plain"


def test_validate_github_format_points_at_the_line(tmp_path, capsys, monkeypatch):
    rules = copy_rules(tmp_path)
    path = rules / f"{IN_FORCE}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("buyer_response_hours: {value: 48", "buyer_response_hours: {value: -1"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "rules", "--format", "github"]) == 1
    out = capsys.readouterr().out.splitlines()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "buyer_response_hours" in t)
    assert out[0] == (f"::error file=rules/{IN_FORCE}.yaml,line={line},col=33,title=impossible_number::"
                      "/timeouts/buyer_response_hours/value: a window of -1 hours is closed before it opens")
    assert out[-1].startswith("aftersale validate: 1 problem(s)")


def test_test_github_format_annotates_each_failed_expectation(tmp_path, capsys, monkeypatch):
    rules = copy_rules(tmp_path)
    path = rules / f"{IN_FORCE}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("buyer_response_hours: {value: 48", "buyer_response_hours: {value: 24")
                        .replace("      - features/extend_receipt\n",
                                 "      - features/extend_receipt\n      - timeouts/buyer_response_hours\n", 1),
                    encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["test", "--rules", "rules", "--format", "github", "--no-regression"]) == 1
    out = capsys.readouterr().out.splitlines()
    annotations = [line for line in out if line.startswith("::error ")]
    assert annotations and all(re.match(r"::error file=rules/tests/[\w-]+\.yaml,line=\d+,title=policy case::", a)
                               for a in annotations)
    case_file = (rules / "tests" / "buyer-window.yaml").read_text(encoding="utf-8").splitlines()
    first = next(a for a in annotations if "buyer-window.yaml" in a)
    number = int(re.search(r"line=(\d+)", first).group(1))
    assert "expect" in first and case_file[number - 1].strip().startswith(("status", "pending_timed_out", "denied", "agree"))
    assert re.match(r"\d+ passed, [1-9]\d* failed", out[-1])


def test_markdown_diff_is_the_semantic_change_grouped_by_declared_change(capsys):
    assert main(["diff", "2024-04-22", IN_FORCE, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith(f"## 政策变更 2024-04-22 → {IN_FORCE}")
    assert "### 1. 新增售后协商关联功能介绍" in markdown and "`related-features-documented`" in markdown
    assert "未声明" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| 新增") or line.startswith("| 修改")
            or line.startswith("| 删除")]
    assert len(rows) == 16
    # a rule reads as what it does, not as a JSON blob
    assert "gate merchant extend_receipt: deny STATUS_NOT_ALLOWED" in markdown
    old = (RULES / "2024-04-22.yaml").read_text(encoding="utf-8").splitlines()
    new = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8").splitlines()
    line_diff = list(difflib.unified_diff(old, new, lineterm=""))
    assert len(markdown.splitlines()) * 5 < len(line_diff)


def test_markdown_diff_across_several_versions_names_every_declared_change(capsys):
    assert main(["diff", "2024-03-11", IN_FORCE, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    versions = set(re.findall(r"版本 (\d{4}-\d\d-\d\d)", markdown))
    assert versions == {"2024-03-22", "2024-04-22", IN_FORCE}


def test_markdown_diff_of_a_draft_shows_what_nobody_declared(tmp_path, capsys):
    draft = tmp_path / f"{IN_FORCE}.yaml"
    draft.write_text((RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
                     .replace("negotiations_per_ticket: {value: 2", "negotiations_per_ticket: {value: 3"), encoding="utf-8")
    assert main(["diff", "2024-04-22", str(draft), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    undeclared = markdown.split("未声明的变更")[1]
    assert "limits/negotiations_per_ticket/value" in undeclared and "| 2 | 3 |" in undeclared


def test_pre_commit_hooks_run_in_a_repository_holding_only_yaml(tmp_path, capsys, monkeypatch):
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert {h["id"] for h in hooks} == {"aftersale-validate", "aftersale-test"}
    copy_rules(tmp_path)
    monkeypatch.chdir(tmp_path)  # the policy repository: rules/ and rules/tests/, nothing else
    parser = build_parser()
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert re.search(hook["files"], "rules/2024-05-31.yaml")  # pre-commit searches
        argv = hook["entry"].split()[1:] + hook["args"]
        parser.parse_args(argv)
        assert main(argv) == 0, hook["id"]
    capsys.readouterr()
