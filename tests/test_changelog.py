"""The changelog generated from the bundled versions: the guide's rows, traced to computed changes."""
from __future__ import annotations

import json
import shutil

from engine.history import changelog
from engine.cli.main import main
from engine.history.versions import load_versions
from engine.core.resources import default_rules_dir


def entries():
    return changelog.build_changelog(load_versions())


def test_twelve_declared_rows_each_traced_to_computed_changes():
    rows = [row for entry in entries() for row in entry.rows]
    assert len(rows) == 12
    for row in rows:
        assert row.changes, f"{row.id} traces to no computed change"
        for change in row.changes:
            assert any(change.path.startswith(t) for t in row.touches)


def test_first_version_is_the_initial_one_and_nothing_is_undeclared():
    all_entries = entries()
    assert all_entries[0].previous is None and all_entries[0].rows == ()
    assert all(entry.undeclared == () for entry in all_entries)
    assert [e.version for e in all_entries] == sorted(e.version for e in all_entries)


def test_declared_words_and_traces():
    by_id = {row.id: row for entry in entries() for row in entry.rows}
    row = by_id["buyer-response-48h"]
    assert row.text == "商家发起协商后用户处理时效由24小时调整为48小时"
    assert row.ref == "详见二-2.1-(4)"
    assert [c.path for c in row.changes] == ["timeouts/buyer_response_hours/value"]
    assert (row.changes[0].before, row.changes[0].after) == (24, 48)


def test_markdown_is_the_guide_table():
    text = changelog.to_markdown(entries())
    lines = text.splitlines()
    assert lines[0] == "| 调整时间 | 调整内容 | 备注 | 对应变更 |"
    assert "| 2024年3月22日 | 商家发起售后协商的次数上限调整为两次 | 详见二-2.1-(3) | `limits/negotiations_per_ticket/value` |" in lines
    # the date is written once per version, as in the guide's merged cells
    assert sum(line.startswith("| 2024年3月22日") for line in lines) == 1
    assert len([line for line in lines[2:] if line.startswith("|")]) == 13  # 12 rows + the initial version


def test_order_newest_first(capsys):
    assert main(["changelog", "--format", "json", "--order", "newest"]) == 0
    data = json.loads(capsys.readouterr().out)
    versions = [v["version"] for v in data["versions"]]
    assert versions == sorted(versions, reverse=True)
    assert data["declared_count"] == 12 and data["undeclared_count"] == 0


def test_text_form(capsys):
    assert main(["changelog", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "2024年5月31日  (2024-05-31" in out
    assert "· 新增修改协商功能  [详见三-3.1.2]" in out


def test_undeclared_edit_shows_in_the_changelog(tmp_path, capsys):
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target, ignore=shutil.ignore_patterns("tests"))
    newest = target / "2024-05-31.yaml"
    text = newest.read_text(encoding="utf-8")
    newest.write_text(text.replace("tracking_fixes: {value: 2,", "tracking_fixes: {value: 3,")
                      .replace("negotiations_per_ticket: {value: 2,", "negotiations_per_ticket: {value: 3,"),
                      encoding="utf-8")
    assert main(["changelog", "--format", "json", "--rules", str(target)]) == 0
    data = json.loads(capsys.readouterr().out)
    newest_entry = data["versions"][-1]
    assert newest_entry["undeclared"] == ["limits/negotiations_per_ticket/value"]
    assert "limits/tracking_fixes" in newest_entry["declared"][0]["changes"]
