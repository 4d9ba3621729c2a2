"""`aftersale validate`: exit codes, one line per problem, JSON output, defaults, the hook."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import validate as validate_cmd
from engine.cli.main import main
from engine.core.resources import REPO_ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
VALID = FIXTURES / "valid"
BROKEN = FIXTURES / "broken"
MALFORMED = FIXTURES / "malformed" / "2024-05-31.yaml"


def run(capsys, *argv):
    code = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_directory_prints_a_one_line_summary(capsys):
    code, out, err = run(capsys, VALID)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ok: 1 version(s) (2024-03-22), compiled, cross-checked on ")
    assert " content hash " in lines[0]
    assert len(lines[0].rsplit(" ", 1)[1]) == 64


def test_broken_directory_one_line_per_problem(capsys):
    code, out, err = run(capsys, BROKEN)
    assert code == 1
    name = f"{BROKEN}/2024-03-22.yaml"
    assert out.splitlines() == [
        f"{name}:47:24: /scenarios/0/reasons/modify_request/0: reason `amount_onyl` is not defined in reasons"
        " (hint: did you mean `amount_only`?)",
        f"{name}:66:33: /timeouts/buyer_response_hours/value: a window of 0 hours is closed before it opens",
        f"{name}:88:7: /rules/0/when/stauts: unknown fact `stauts` (hint: did you mean `status`?)",
    ]
    assert err == "aftersale validate: 3 problem(s) in 1 file(s)\n"


def test_problems_of_several_paths_in_one_run(capsys):
    code, out, _ = run(capsys, BROKEN, MALFORMED, "no/such/dir")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 5
    assert (f"{MALFORMED}:5:11: /: mapping values are not allowed here"
            " (hint: check the indentation, or quote a value that contains `: `)") in lines
    assert "no/such/dir:1:1: /: no such file or directory" in lines


def test_json_format(capsys):
    code, out, _ = run(capsys, BROKEN, "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False and report["content_hash"] is None
    assert [p["code"] for p in report["problems"]] == ["unknown_reference", "impossible_number", "unknown_fact"]
    assert report["problems"][0] == {
        "code": "unknown_reference", "message": "reason `amount_onyl` is not defined in reasons",
        "file": f"{BROKEN}/2024-03-22.yaml", "line": 47, "column": 24,
        "path": "/scenarios/0/reasons/modify_request/0", "hint": "did you mean `amount_only`?", "severity": "error"}
    code, out, _ = run(capsys, VALID, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and report["problems"] == []
    assert report["versions"] == [{"version": "2024-03-22", "file": f"{VALID}/2024-03-22.yaml",
                                   "effective_from": "2024-03-22T00:00:00+08:00"}]


def test_default_is_the_bundled_rules_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("AFTERSALE_RULES", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    assert validate_cmd.default_paths() == [Path("rules")]
    monkeypatch.chdir(tmp_path)
    assert validate_cmd.default_paths() == [(REPO_ROOT / "rules")]


def test_extra_checks_hook(capsys, monkeypatch):
    def compiled_cross_check(bundle):
        yield bundle.documents[0].diagnostic("compile_error", "/rules/2/when", "cannot compile")

    monkeypatch.setattr(validate_cmd, "EXTRA_CHECKS", [compiled_cross_check])
    code, out, _ = run(capsys, VALID)
    assert code == 1
    assert out.splitlines() == [f"{VALID}/2024-03-22.yaml:107:7: /rules/2/when: cannot compile"]


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["validate", "--format", "xml"])
    assert caught.value.code == 2


def test_the_bundled_rules_are_valid(capsys):
    code, out, err = run(capsys, REPO_ROOT / "rules")
    assert code == 0, out + err
    assert out.startswith("ok: ")
