"""One problem type, one code list: every code the engine writes down is listed (once) in
engine/core/codes.py, docs/problems.md is that list, and re-rooting is structural."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from engine.core import codes
from engine.core.errors import TicketError
from engine.core.jsonschema_errors import YAML_WORDS, JsonChecker
from engine.core.problems import Problem

ROOT = Path(__file__).resolve().parents[1]
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
CODE_FIRST = {"Problem", "Diagnostic", "diagnostic", "_diag", "diag", "problem"}  # code is argument 0
CODE_SECOND = {"add", "at", "ApiError", "error_response"}  # code is argument 1


def _constants(node: ast.expr) -> list[str]:
    options = [node.body, node.orelse] if isinstance(node, ast.IfExp) else [node]
    return [o.value for o in options if isinstance(o, ast.Constant) and isinstance(o.value, str)]


def codes_written_in(source: str) -> set[str]:
    """Literal codes passed to the problem constructors and readers, or written as `"code": ...`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            index = 0 if name in CODE_FIRST else 1 if name in CODE_SECOND else None
            if index is not None and len(node.args) > index:
                found.update(_constants(node.args[index]))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "code":
                    found.update(_constants(value))
    return {c for c in found if SNAKE.match(c)}  # UPPER_CASE: the policy's own denial codes


def test_every_code_the_engine_writes_is_listed_once():
    listed = [c for group in codes.GROUPS.values() for c in group]
    assert len(listed) == len(set(listed)) == len(codes.PROBLEM_CODES)
    written: dict[str, set[str]] = {}
    for path in (ROOT / "engine").rglob("*.py"):
        for code in codes_written_in(path.read_text(encoding="utf-8")):
            written.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    unlisted = {c: sorted(w) for c, w in written.items()
                if c not in codes.PROBLEM_CODES and c not in codes.HTTP_ERROR_CODES}
    assert not unlisted, f"add these to engine/core/codes.py (and regenerate docs/problems.md): {unlisted}"
    assert len(written) > 60  # the scan does see the engine's codes


def test_codes_chosen_at_run_time_are_listed_too():
    from engine.core.jsonschema_errors import TIME_MESSAGES

    assert set(TIME_MESSAGES) <= set(codes.PROBLEM_CODES)  # time_problem() returns one of these


def test_the_scan_would_catch_a_new_code():
    assert codes_written_in('raise TicketError([Problem("brand_new", "x")])') == {"brand_new"}
    assert codes_written_in('p.add("/a", "also_new", "m")') == {"also_new"}


def test_drifted_spellings_are_gone():
    for old in ("missing", "missing_key", "unknown_key", "invalid_time", "out_of_range", "schema"):
        assert old not in codes.PROBLEM_CODES


def test_docs_list_exactly_the_codes():
    assert (ROOT / "docs" / "problems.md").read_text(encoding="utf-8") == codes.markdown()


def test_under_and_relative_to_are_inverse_and_escape_keys():
    problem = Problem("missing_field", "`status` is required", "/status")
    rooted = problem.under(("items", 3, "ticket"))
    assert rooted.path == "/items/3/ticket/status" and rooted.code == problem.code
    assert rooted.relative_to(("items", 3, "ticket")) == problem
    assert rooted.relative_to(("items", 4)) is None
    assert Problem.at(["a/b", "c~d"], "invalid", "m").path == "/a~1b/c~0d"


def test_one_translator_speaks_the_readers_words():
    schema = {"type": "object", "required": ["rules"], "additionalProperties": False,
              "properties": {"rules": {"type": "array"}, "version": {"type": "string"}}}
    as_json = JsonChecker(schema).problems({"rulez": {}, "version": 3})
    as_yaml = JsonChecker(schema, YAML_WORDS).problems({"rules": {}})
    assert [(p.code, p.path) for p in as_json] == [("missing_field", "/rules"), ("unknown_field", "/rulez"),
                                                   ("wrong_type", "/version")]
    assert as_json[1].hint == "did you mean `rules`?"
    assert as_yaml[0].message == "`rules` must be list, not a mapping"


@pytest.mark.parametrize("given", [Problem("bad_time", "m", "/at"), {"path": "/at", "code": "bad_time", "message": "m"}])
def test_input_errors_hold_problems_whatever_they_were_given(given):
    error = TicketError([given, given])
    assert error.problems == [Problem("bad_time", "m", "/at")]
    assert error.to_json()["problems"] == [{"path": "/at", "code": "bad_time", "message": "m"}]
