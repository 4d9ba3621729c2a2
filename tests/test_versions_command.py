"""`aftersale versions`: effective windows, the version in force, future ones scheduled."""
from __future__ import annotations

import json
import shutil

from engine.cli.main import main
from engine.core.resources import default_rules_dir


def run_json(capsys, *argv):
    assert main(["versions", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_windows_chain_and_one_in_force(capsys):
    data = run_json(capsys, "--at", "2024-03-15T12:00:00+08:00")
    versions = data["versions"]
    assert data["in_force"] == "2024-03-11"
    assert [v["in_force"] for v in versions].count(True) == 1
    for earlier, later in zip(versions, versions[1:]):
        assert earlier["effective_until"] == later["effective_from"]
    assert versions[-1]["effective_until"] is None
    assert [v["version"] for v in versions if v["scheduled"]] == ["2024-03-22", "2024-04-22", "2024-05-31"]


def test_boundary_belongs_to_the_new_version(capsys):
    assert run_json(capsys, "--at", "2024-04-22T00:00:00+08:00")["in_force"] == "2024-04-22"
    assert run_json(capsys, "--at", "2024-04-21T15:59:59Z")["in_force"] == "2024-03-22"


def test_before_the_first_version_nothing_is_in_force(capsys):
    assert main(["versions", "--at", "2023-01-01T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "no version is in force at 2023-01-01T00:00:00+08:00" in out
    assert out.count("scheduled") == 5


def test_future_dated_version_is_scheduled_now(tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("tests"))
    newest = (rules / "2024-05-31.yaml").read_text(encoding="utf-8")
    future = newest.replace('version: "2024-05-31"', 'version: "2099-01-01"').replace(
        'effective_from: "2024-05-31T00:00:00+08:00"', 'effective_from: "2099-01-01T00:00:00+08:00"')
    (rules / "2099-01-01.yaml").write_text(future, encoding="utf-8")
    assert main(["versions", "--rules", str(rules)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("* 2024-05-31") and lines[-2].endswith("in force")
    assert lines[-1].startswith("  2099-01-01") and lines[-1].endswith("scheduled")


def test_bad_time_is_a_message(capsys):
    assert main(["versions", "--at", "yesterday"]) == 1
    assert "invalid --at" in capsys.readouterr().err
