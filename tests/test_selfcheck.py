"""`aftersale validate` past loading (engine/selfcheck.py): the outcome rules must give exactly one
outcome for every answer the policy allows. Checked on one-file bundles (no version pairs, so the
declared-changes check has nothing to say) copied from the bundled latest version."""
from __future__ import annotations

import re
import shutil

from engine.cli.main import main
from engine.core.resources import default_rules_dir

LATEST = default_rules_dir() / "2024-05-31.yaml"


def rule_block(text: str, rule_id: str) -> str:
    match = re.search(rf"(?ms)^  - id: {re.escape(rule_id)}\n.*?(?=^  - id: |\Z)", text)
    assert match, rule_id
    return match.group(0)


def validate(capsys, path) -> tuple[int, str]:
    code = main(["validate", str(path)])
    return code, capsys.readouterr().out


def test_the_bundled_versions_are_complete(capsys):
    code, out = validate(capsys, default_rules_dir())
    assert code == 0, out


def test_a_missing_outcome_is_refused_with_an_example(tmp_path, capsys):
    path = tmp_path / "2024-05-31.yaml"
    text = LATEST.read_text(encoding="utf-8")
    path.write_text(text.replace(rule_block(text, "outcome.accept.return_refund"), ""), encoding="utf-8")
    code, out = validate(capsys, path)
    assert code == 1
    assert "/rules: no outcome rule for" in out
    assert "`accept` on a `modify_request` proposal (return_refund, made at merchant_processing)" in out
    assert "(hint: add a `stage: outcome` rule" in out


def test_two_different_outcomes_for_one_answer_are_refused(tmp_path, capsys):
    path = tmp_path / "2024-05-31.yaml"
    text = LATEST.read_text(encoding="utf-8")
    block = rule_block(text, "outcome.accept.cancel")
    twin = (block.replace("id: outcome.accept.cancel", "id: outcome.accept.cancel_twin")
                 .replace("status: cancelled", "status: closed"))
    assert twin != block
    path.write_text(text.replace(block, block + twin), encoding="utf-8")
    code, out = validate(capsys, path)
    assert code == 1
    assert "lead to more than one outcome" in out and "('cancelled', 'closed')" in out


def test_a_complete_copy_still_passes(tmp_path, capsys):
    shutil.copy(LATEST, tmp_path / "2024-05-31.yaml")
    code, out = validate(capsys, tmp_path / "2024-05-31.yaml")
    assert code == 0, out
