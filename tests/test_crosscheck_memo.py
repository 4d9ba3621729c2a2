"""A reload re-runs the cross-check (durable_rules against the plain evaluator, 500 generated facts)
only when what is compiled into the rulesets changed: an edit to a message, a comment or a reason's
text reuses the passed result, an edit to a limit a condition uses or to a condition re-runs it.
Counted by `PASSED_CROSSCHECKS.runs / .remembered` (never timed)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.api import Engine
from engine.core.errors import PolicyError
from engine.policy.memo import DocumentMemo
from engine.rules import crosscheck as crosscheck_mod
from engine.rules.compile import compile_policy
from engine.rules.crosscheck import PASSED_CROSSCHECKS, Mismatch, crosscheck_key
from engine.policy.bundle import load_directory

RULES = Path(__file__).resolve().parents[1] / "rules"
LATEST = sorted(RULES.glob("*.yaml"))[-1].name
MESSAGE = "message: 帮买家修改退货物流的机会已用完"     # a rule new in the latest version (declared)
LIMIT = re.compile(r"(  tracking_fixes: \{value: )\d+")   # the limit `merchant.modify_return_logistics.limit` compares with


def edit(path: Path, old: str | re.Pattern[str], new: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed = old.sub(new, text, count=1) if isinstance(old, re.Pattern) else text.replace(old, new, 1)
    assert changed != text
    path.write_text(changed, encoding="utf-8")


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copytree(RULES, tmp_path / "rules", ignore=shutil.ignore_patterns("tests"))
    return tmp_path / "rules"


class Reloads:
    """What the service's reload does: the memo, the engine in force reused."""

    def __init__(self, rules: Path) -> None:
        self.rules, self.memo = rules, DocumentMemo()
        self.engine = Engine(self.memo.load_directory(rules))

    def reload(self) -> tuple[int, int]:
        """(cross-checks run, cross-checks remembered) by this reload."""
        runs, remembered = PASSED_CROSSCHECKS.runs, PASSED_CROSSCHECKS.remembered
        new = Engine(self.memo.load_directory(self.rules), reuse=self.engine)
        assert new.built_versions == (Path(LATEST).stem,)   # the changed file is built again...
        self.engine.close()
        self.engine = new
        return PASSED_CROSSCHECKS.runs - runs, PASSED_CROSSCHECKS.remembered - remembered


def test_an_edit_that_changes_no_condition_does_not_rerun_the_crosscheck(rules):
    PASSED_CROSSCHECKS.forget()
    reloads = Reloads(rules)
    try:
        latest = rules / LATEST
        edit(latest, MESSAGE, MESSAGE + "（已修订）")
        assert reloads.reload() == (0, 1)          # ...but its cross-check is the one that passed
        with latest.open("a", encoding="utf-8") as out:
            out.write("\n# a comment\n")
        assert reloads.reload() == (0, 1)
        edit(latest, "note: 物流拦截 (四-4.3)", "note: 物流拦截功能 (四-4.3)")   # a change note, not a condition
        assert reloads.reload() == (0, 1)
    finally:
        reloads.engine.close()


def test_an_edit_to_a_limit_a_condition_uses_or_to_a_condition_reruns_it(rules):
    PASSED_CROSSCHECKS.forget()
    reloads = Reloads(rules)
    try:
        latest = rules / LATEST
        edit(latest, LIMIT, r"\g<1>7")
        assert reloads.reload() == (1, 0)
        edit(latest, "tracking_fixes_used: {gte: {param: limits.tracking_fixes}}",
             "tracking_fixes_used: {gt: {param: limits.tracking_fixes}}")
        assert reloads.reload() == (1, 0)
        edit(latest, LIMIT, r"\g<1>8")
        assert reloads.reload() == (1, 0)
        edit(latest, LIMIT, r"\g<1>7")               # back to conditions that passed in this process
        assert reloads.reload() == (0, 1)
    finally:
        reloads.engine.close()


def test_the_key_covers_the_conditions_and_nothing_else():
    document = next(d for d in load_directory(RULES).documents if d.path.name == LATEST)
    data = document.data
    base = crosscheck_key(compile_policy(data), 500, 0)
    assert crosscheck_key(compile_policy(data), 500, 0) == base        # ruleset names differ, key not
    reworded = _with(data, lambda d: [r for r in d["rules"] if r["id"].endswith(".limit")][0]["deny"]
                     .__setitem__("message", "另一句话"))
    assert crosscheck_key(compile_policy(reworded), 500, 0) == base
    limited = _with(data, lambda d: d["limits"]["tracking_fixes"].__setitem__("value", 9))
    assert crosscheck_key(compile_policy(limited), 500, 0) != base
    assert crosscheck_key(compile_policy(data), 2000, 0) != base        # `aftersale validate`'s larger run
    assert crosscheck_key(compile_policy(data), 500, 1) != base


def _with(data, change):
    import copy

    out = copy.deepcopy(data)
    change(out)
    return out


def test_a_disagreement_is_never_remembered(rules, monkeypatch):
    PASSED_CROSSCHECKS.forget()
    reloads = Reloads(rules)
    try:
        def disagree(compiled, count, seed):
            return [Mismatch(compiled.version, "gate", {"stage": "gate"}, ("a",), ())]

        monkeypatch.setattr(crosscheck_mod, "crosscheck_policy", disagree)
        latest = rules / LATEST
        edit(latest, LIMIT, r"\g<1>5")
        runs = PASSED_CROSSCHECKS.runs
        for _ in range(2):
            with pytest.raises(PolicyError) as refused:
                Engine(reloads.memo.load_directory(rules), reuse=reloads.engine)
            assert [d.code for d in refused.value.diagnostics] == ["engine_disagreement"]
        assert PASSED_CROSSCHECKS.runs - runs == 2
    finally:
        reloads.engine.close()
