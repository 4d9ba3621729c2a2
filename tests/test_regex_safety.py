"""No catastrophic backtracking: every regular expression in schemas/ and engine/ is scanned for
the shapes that backtrack exponentially in Python's `re` (issue 11: the policy schema's `param`
pattern `(\\.[a-z0-9_.-]+)*` froze a worker for 9.4 s on 26 repeats of `aa.` and a `!`).

Python's own parser (`re._parser`) gives the pattern's tree; a pattern is refused when a repeat
that may run many times (`*`, `+`, `{2,}`) contains
- another such repeat whose characters can also start the outer repeat's next round (nested
  quantifiers with an ambiguous split: `(a+)+`, `(\\.[a-z.]+)*`; `(\\.[a-z]+)+` is fine, since
  every round starts with a `.` the inner repeat cannot eat), or
- alternatives that can start with the same character (`(a|ab)*`).
This is a conservative check of our own: the ReDoS checkers on PyPI are unmaintained
(regexploit: last release 2021) or new and unproven.
"""
from __future__ import annotations

import ast
import json
import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from server_support import REPO

try:  # Python 3.11+: the sre modules live inside `re`
    from re import _constants as sre, _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
ANY_CHAR = frozenset(range(0, 0x3000))  # a stand-in alphabet: ASCII, Latin, CJK punctuation
_CATEGORY_CHARS = {
    sre.CATEGORY_DIGIT: frozenset(range(ord("0"), ord("9") + 1)),
    sre.CATEGORY_SPACE: frozenset(map(ord, " \t\n\r\f\v")),
    sre.CATEGORY_WORD: frozenset(c for c in range(0x3000) if chr(c).isalnum() or c == ord("_")),
}


def _category(code) -> frozenset:
    for positive, chars in _CATEGORY_CHARS.items():
        if code == positive:
            return chars
    name = str(code).replace("NOT_", "")
    for positive, chars in _CATEGORY_CHARS.items():
        if str(positive) == name:
            return ANY_CHAR - chars
    return ANY_CHAR


def _charset(items) -> frozenset:
    chars: set[int] = set()
    negate = False
    for op, arg in items:
        if op == sre.NEGATE:
            negate = True
        elif op == sre.LITERAL:
            chars.add(arg)
        elif op == sre.RANGE:
            chars.update(range(arg[0], arg[1] + 1))
        elif op == sre.CATEGORY:
            chars.update(_category(arg))
        else:
            chars.update(ANY_CHAR)
    return ANY_CHAR - chars if negate else frozenset(chars)


def _first(seq) -> frozenset:
    """Characters that can start a match of the sequence (empty-able prefixes are looked through)."""
    found: set[int] = set()
    for op, arg in seq:
        chars, nullable = _first_of(op, arg)
        found |= chars
        if not nullable:
            return frozenset(found)
    return frozenset(found)


def _first_of(op, arg) -> tuple[frozenset, bool]:
    if op == sre.LITERAL:
        return frozenset({arg}), False
    if op == sre.NOT_LITERAL:
        return ANY_CHAR - {arg}, False
    if op == sre.IN:
        return _charset(arg), False
    if op == sre.ANY:
        return ANY_CHAR, False
    if op in _REPEATS:
        low, _high, sub = arg
        return _first(sub), low == 0 or _nullable(sub)
    if op == sre.SUBPATTERN:
        return _first(arg[-1]), _nullable(arg[-1])
    if op == sre.BRANCH:
        branches = arg[1]
        return frozenset().union(*(_first(b) for b in branches)), any(_nullable(b) for b in branches)
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return frozenset(), True
    return ANY_CHAR, True


def _nullable(seq) -> bool:
    return all(_first_of(op, arg)[1] for op, arg in seq)


def _chars(seq) -> frozenset:
    """Every character the sequence can consume anywhere."""
    found: set[int] = set()
    for op, arg in seq:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY):
            found |= _first_of(op, arg)[0]
        elif op in _REPEATS:
            found |= _chars(arg[2])
        elif op == sre.SUBPATTERN:
            found |= _chars(arg[-1])
        elif op == sre.BRANCH:
            for branch in arg[1]:
                found |= _chars(branch)
    return frozenset(found)


def _repeats(seq):
    for op, arg in seq:
        if op in _REPEATS:
            yield op, arg
            yield from _repeats(arg[2])
        elif op == sre.SUBPATTERN:
            yield from _repeats(arg[-1])
        elif op == sre.BRANCH:
            for branch in arg[1]:
                yield from _repeats(branch)


def _ambiguities(seq, follow: frozenset) -> list[str]:
    """Places in `seq` where the engine has two ways to go on: a variable-length part (`x+`, `x?`,
    `x{1,6}`, an optional alternative) that can eat a character which may also come right after
    it (`follow`: what follows `seq`). Once is harmless; inside a repeat, the choices multiply."""
    found = []
    for index in range(len(seq) - 1, -1, -1):
        op, arg = seq[index]
        rest = seq[index + 1:]
        after = _first(rest) | (follow if _nullable(rest) else frozenset())
        if op in _REPEATS:
            low, high, body = arg
            if high == sre.MAXREPEAT or high > low:
                if _chars(body) & after:
                    found.append("a repeat can eat what may follow it")
                found += _ambiguities(body, _first(body) | after)
            else:
                found += _ambiguities(body, _first(body) | after if high > 1 else after)
        elif op == sre.SUBPATTERN:
            found += _ambiguities(arg[-1], after)
        elif op == sre.BRANCH:
            branches = arg[1]
            firsts = [_first(b) for b in branches]
            if any(x & y for i, x in enumerate(firsts) for y in firsts[i + 1:]):
                found.append("alternatives that start alike")
            if any(_nullable(b) for b in branches) and frozenset().union(*(_chars(b) for b in branches)) & after:
                found.append("an optional alternative can eat what may follow it")
            for branch in branches:
                found += _ambiguities(branch, after)
    return found


def dangers(pattern: str) -> list[str]:
    """What in `pattern` can backtrack exponentially; empty when nothing can: an ambiguity inside
    a repeat that may run many times."""
    found = []
    for _op, (_low, high, body) in _repeats(sre_parse.parse(pattern)):
        if high != sre.MAXREPEAT and high <= 1:
            continue  # `?` runs once
        found += [f"{what}, inside a repeat ({pattern})" for what in _ambiguities(body, _first(body))]
    return found


# -- the patterns of the project ----------------------------------------------------------------------

def _schema_patterns() -> list[tuple[str, str]]:
    out = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    out.append((where, value))
                elif key == "patternProperties" and isinstance(value, dict):
                    out.extend((where, p) for p in value)
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path in sorted((REPO / "schemas").rglob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")), path.relative_to(REPO).as_posix())
    return out


_RE_CALLS = {"compile", "match", "fullmatch", "search", "sub", "subn", "findall", "finditer", "split"}


def _engine_patterns() -> list[tuple[str, str]]:
    """Literal patterns given to `re.*` in engine/, including module constants named there."""
    out = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError):
                    continue
                if isinstance(value, str):
                    constants[node.targets[0].id] = value
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _RE_CALLS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args):
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    out.append((f"{path.relative_to(REPO)}:{node.lineno}", first.value))
                elif isinstance(first, ast.Name) and first.id in constants:
                    out.append((f"{path.relative_to(REPO)}:{node.lineno}", constants[first.id]))
    return out


def _carrier_patterns() -> list[tuple[str, str]]:
    """Carrier patterns of the bundled policies, as engine.decisions.payload turns them into regexes."""
    from engine.decisions.payload import lua_pattern

    out = []
    for path in sorted((REPO / "rules").glob("*.yaml")):
        for carrier in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("carriers") or []:
            out.append((f"{path.name} carrier {carrier['id']}", lua_pattern(carrier["pattern"]).pattern))
    return out


ALL_PATTERNS = _schema_patterns() + _engine_patterns() + _carrier_patterns()


def test_the_scan_finds_the_patterns_it_should():
    where = {w for w, _ in ALL_PATTERNS}
    assert len(ALL_PATTERNS) >= 30
    assert "schemas/policy.schema.json" in where and "schemas/requests/common.schema.json" in where
    assert any(w.startswith("engine/core/jsonschema_errors.py") for w in where)  # TIME_PATTERN, a constant
    assert any("carrier" in w for w in where)


@pytest.mark.parametrize("where, pattern", ALL_PATTERNS, ids=[f"{w}:{p}"[:90] for w, p in ALL_PATTERNS])
def test_no_pattern_can_backtrack_exponentially(where, pattern):
    assert dangers(pattern) == [], where


@pytest.mark.parametrize("pattern", [
    r"^[a-z_][a-z0-9_]*(\.[a-z0-9_.-]+)*$",   # the policy schema's `param` before issue 11
    r"(a+)+$", r"^(\w+\s?)*$", r"(a|aa)*b", r"(a?a)+b", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"(x+x+)+y", r"(\d*)*x",
])
def test_the_scanner_finds_known_catastrophic_patterns(pattern):
    assert dangers(pattern)


@pytest.mark.parametrize("pattern", [
    r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$",      # every round starts with `.`, which the inner repeat cannot eat
    r"^[0-9]{4}(:[0-9]{2}(\.[0-9]{1,6})?)?$", r"^[A-Z][A-Z0-9_]*$", r"(ab|cd)*", r"^(\d+,)*\d+$",
])
def test_the_scanner_passes_safe_patterns(pattern):
    assert dangers(pattern) == []


OLD_PARAM = r"^[a-z_][a-z0-9_]*(\.[a-z0-9_.-]+)*$"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="ab_.-9Z!", max_size=10))
def test_the_rewritten_param_pattern_accepts_exactly_what_the_old_one_did(text):
    """`(\\.X+)*` with `.` in X equals `(\\.X+)?`: the same language, no ambiguous split (short
    strings only: the old pattern is exponential on long ones)."""
    params = {p for w, p in _schema_patterns() if w == "schemas/policy.schema.json" and p.startswith("^[a-z_][a-z0-9_]*(")}
    assert params == {r"^[a-z_][a-z0-9_]*(\.[a-z0-9_.-]+)?$"}
    new = params.pop()
    assert bool(re.search(OLD_PARAM, text)) == bool(re.search(new, text))
