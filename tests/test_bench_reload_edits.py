"""bench/load_test.sh's RELOAD_TOUCH edits (comment, message, condition) keep the policy valid,
remove no version, and change what they claim: a message edit compiles to the same conditions
(the cross-check is remembered), a condition edit to other ones (it must run again). The sed
expressions are read from the script itself, so the test follows the benchmark."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.policy.bundle import load_directory
from engine.rules.compile import compile_policy
from engine.rules.crosscheck import crosscheck_key

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = (ROOT / "bench" / "load_test.sh").read_text(encoding="utf-8")


def _pattern(name: str) -> str:
    match = re.search(rf"^  {name}='(.*)'$", SCRIPT, re.MULTILINE)
    assert match, f"{name} not found in bench/load_test.sh"
    return match.group(1)


def _edit(kind: str, path: Path, n: int) -> None:
    line = re.search(rf"^        {kind}\) (.*?) ;;", SCRIPT, re.MULTILINE)
    assert line, kind
    script = (f"message_line='{_pattern('message_line')}'; limit_line='{_pattern('limit_line')}'; "
              f"f='{path}'; n={n}; {line.group(1)}")
    subprocess.run(["bash", "-c", script], check=True)


def _keys(rules: Path) -> dict[str, str]:
    return {d.version: crosscheck_key(compile_policy(d.data), 500, 0) for d in load_directory(rules).documents}


@pytest.mark.parametrize("kind, conditions_change", [("comment", False), ("message", False), ("condition", True)])
def test_each_bench_edit_keeps_the_policy_valid_and_changes_what_it_says(tmp_path, kind, conditions_change):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    latest = sorted(rules.glob("*.yaml"))[-1]
    if kind == "comment":
        with latest.open("a", encoding="utf-8") as out:   # what the script appends before its first edit
            out.write("# reload 0\n")
    before, keys = latest.read_bytes(), _keys(rules)
    for n in (1, 2, 3):
        _edit(kind, latest, n)
        after = latest.read_bytes()
        assert after != before
        bundle = load_directory(rules)                    # raises PolicyError if the edit broke it
        assert len(bundle.documents) == len(keys)
        now = _keys(rules)
        assert {v: k for v, k in now.items() if v != latest.stem} == \
               {v: k for v, k in keys.items() if v != latest.stem}
        assert (now[latest.stem] != keys[latest.stem]) is conditions_change
        before, keys = after, now
