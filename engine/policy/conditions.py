"""The policy's condition language (`when:` in docs/design.md), compiled twice from one tree:

- to a durable_rules expression (JSON-able dict) for `engine/runtime.py`, and
- to a Python expression (source text) evaluated by `engine/plain.py` and by `predicate`s.

Both sides follow one semantics, measured on durable_rules 2.0.28 (see tests/test_conditions.py):
a missing attribute makes every comparison false (`ne` included), `exists` tests presence, bool
and int compare as numbers (True == 1). Where durable is erratic (a string compared with a number:
`"" == 0` is true there) the two sides would differ, so the compiler records each fact's type
group (`str` or `num`) and `engine/runtime.py::validate_facts` refuses facts of the other group.
A `{fact: other}` operand is guarded with `$ex` on `other`: durable treats a missing right-hand
fact as *something* and fires, which no reader of the policy would expect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine.core.errors import EngineError

# ops of the language → durable comparison operator and Python operator
_ORDER_OPS = {"lt": ("$lt", "<"), "lte": ("$lte", "<="), "gt": ("$gt", ">"), "gte": ("$gte", ">=")}
_ALL_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists")
_FACT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # no dots: durable reads "a.b" as nesting
_UNITS = {"hours": 3600, "minutes": 60, "seconds": 1, "days": 86400}
# Integers beyond this are not exact in JSON consumers and durable parses 2**64 as something else.
MAX_SAFE_INT = 2 ** 53

STR, NUM = "str", "num"  # type groups: durable and Python agree within a group, not across


class CompileError(EngineError):
    """A rule or condition the compiler cannot translate; `path` locates it in the document
    (JSON-pointer-like, list indexes: `/rules/3/when/all/0`)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}")

    def to_json(self) -> dict[str, Any]:
        return {"code": "CompileError", "message": self.detail, "path": self.path}


class NeverFires(Exception):
    """Internal signal: a `{param}` operand resolved to null (no limit), so the rule never fires."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CompiledCondition:
    durable: dict[str, Any] | None          # durable expression; None = no condition (always true)
    python: str                   # Python expression over the fact dict `f`
    fact_types: dict[str, str] = field(default_factory=dict)   # fact name → STR | NUM
    boundaries: dict[str, set[Any]] = field(default_factory=dict)   # fact name → literals it is compared with
    fact_pairs: set[Any] = field(default_factory=set)               # (left, right) fact-vs-fact comparisons
    names: set[Any] = field(default_factory=set)                    # every fact the condition reads


def resolve_param(doc: Mapping[str, Any], dotted: str, path: str = "") -> Any:
    """The value at `dotted` in the policy document. Dict keys by name, list items by `id`; a
    `{value: ...}` wrapper (limits, timeouts) is unwrapped. Raises CompileError if absent."""
    if not isinstance(dotted, str) or not dotted:
        raise CompileError(path, f"param must be a dotted path string, got {dotted!r}")
    node: Any = doc
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list):
            found = [item for item in node if isinstance(item, Mapping) and item.get("id") == part]
            if not found:
                raise CompileError(path, f"param `{dotted}`: no list item with id `{part}`")
            node = found[0]
        else:
            raise CompileError(path, f"param `{dotted}` does not exist in the policy (at `{part}`)")
    if isinstance(node, Mapping) and "value" in node:
        node = node["value"]
    return node


def _check_scalar(value: Any, path: str) -> Any:
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise CompileError(path, f"integer {value} is out of range (|n| <= 2**53)")
        return value
    raise CompileError(path, f"operand must be a string, integer or boolean, got {type(value).__name__} {value!r}")


def _group(value: Any) -> str:
    return STR if isinstance(value, str) else NUM


class _Compiler:
    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.out = CompiledCondition(durable=None, python="True")

    def note_type(self, name: str, group: str, path: str) -> None:
        seen = self.out.fact_types.setdefault(name, group)
        if seen != group:
            raise CompileError(path, f"fact `{name}` is compared with both a {seen} and a {group} value")

    def fact_name(self, name: Any, path: str) -> str:
        if not isinstance(name, str) or not _FACT_NAME.match(name):
            raise CompileError(path, f"`{name}` is not a valid fact name (letters, digits, `_`)")
        self.out.names.add(name)
        return name

    # --- tree -------------------------------------------------------------------------------
    def node(self, node: Any, path: str) -> tuple[dict[str, Any], str]:
        if not isinstance(node, Mapping) or not node:
            raise CompileError(path, "a condition must be a non-empty mapping")
        if len(node) > 1:  # a bare multi-key mapping means `all`
            if "all" in node or "any" in node:
                raise CompileError(path, "`all`/`any` must be the only key of its mapping")
            return self.combine("$and", " and ", [({k: v}, f"{path}/{k}") for k, v in node.items()])
        (key, value), = node.items()
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise CompileError(f"{path}/{key}", f"`{key}` takes a non-empty list")
            items = [(item, f"{path}/{key}/{i}") for i, item in enumerate(value)]
            return self.combine("$and" if key == "all" else "$or", " and " if key == "all" else " or ", items)
        return self.leaf(self.fact_name(key, path), value, f"{path}/{key}")

    def combine(self, dop: str, pyop: str, items: list[Any]) -> tuple[dict[str, Any], str]:
        parts = [self.node(item, p) for item, p in items]
        if len(parts) == 1:
            return parts[0]
        return {dop: [d for d, _ in parts]}, "(" + pyop.join(p for _, p in parts) + ")"

    def leaf(self, name: str, spec: Any, path: str) -> tuple[dict[str, Any], str]:
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise CompileError(path, f"expected one `{{op: operand}}` with op one of {', '.join(_ALL_OPS)}")
        (op, operand), = spec.items()
        path = f"{path}/{op}"
        key = repr(name)
        if op == "exists":
            if not isinstance(operand, bool):
                raise CompileError(path, "`exists` takes true or false")
            return ({"$ex": {name: 1}}, f"({key} in f)") if operand else ({"$nex": {name: 1}}, f"({key} not in f)")
        if op in ("in", "not_in"):
            return self.membership(name, op, operand, path)
        if op not in ("eq", "ne") and op not in _ORDER_OPS:
            raise CompileError(path, f"unknown operator `{op}` (known: {', '.join(_ALL_OPS)})")
        right_d, right_py = self.operand(name, operand, path)
        if op == "eq":
            dur = {name: right_d}
            pyop = "=="
        elif op == "ne":
            dur, pyop = {"$neq": {name: right_d}}, "!="
        else:
            dop, pyop = _ORDER_OPS[op]
            dur = {dop: {name: right_d}}
        if isinstance(operand, Mapping) and "fact" in operand:
            other = operand["fact"]
            return ({"$and": [{"$ex": {other: 1}}, dur]},
                    f"({key} in f and {other!r} in f and f[{key}] {pyop} f[{other!r}])")
        return dur, f"({key} in f and f[{key}] {pyop} {right_py})"

    def operand(self, name: str, operand: Any, path: str) -> tuple[Any, str]:
        if isinstance(operand, Mapping):
            if "fact" in operand:
                if set(operand) != {"fact"}:
                    raise CompileError(path, "a `{fact: name}` operand takes no other keys")
                other = self.fact_name(operand["fact"], f"{path}/fact")
                self.out.fact_pairs.add((name, other))
                return {"$m": other}, ""
            if "param" in operand:
                extra = set(operand) - {"param", "unit"}
                if extra:
                    raise CompileError(path, f"unknown key(s) in param operand: {', '.join(sorted(extra))}")
                value = resolve_param(self.doc, operand["param"], f"{path}/param")
                if value is None:
                    raise NeverFires(f"param `{operand['param']}` is null (no limit)")
                value = _check_scalar(value, f"{path}/param")
                unit = operand.get("unit")
                if unit is not None:
                    if unit not in _UNITS or isinstance(value, (bool, str)):
                        raise CompileError(f"{path}/unit", f"unit `{unit}` needs an integer param and one of {', '.join(_UNITS)}")
                    value = value * _UNITS[unit]
                return self.literal(name, value, path)
            raise CompileError(path, "an operand mapping must be `{fact: name}` or `{param: dotted.path}`")
        return self.literal(name, _check_scalar(operand, path), path)

    def literal(self, name: str, value: Any, path: str) -> tuple[Any, str]:
        self.note_type(name, _group(value), path)
        self.out.boundaries.setdefault(name, set()).add(value)
        return value, repr(value)

    def membership(self, name: str, op: str, values: Any, path: str) -> tuple[dict[str, Any], str]:
        if not isinstance(values, list):
            raise CompileError(path, f"`{op}` takes a list of literals")
        if op == "in" and not values:
            raise CompileError(path, "`in` with an empty list never matches; remove the condition")
        literals = [self.literal(name, _check_scalar(v, f"{path}/{i}"), f"{path}/{i}")[0]
                    for i, v in enumerate(values)]
        key = repr(name)
        tup = "(" + "".join(repr(v) + ", " for v in literals) + ")"
        if op == "in":
            parts = [{name: v} for v in literals]
            return (parts[0] if len(parts) == 1 else {"$or": parts}), f"({key} in f and f[{key}] in {tup})"
        if not literals:  # `not_in []`: true whenever the fact is present, like `$and` of no `$neq`
            return {"$ex": {name: 1}}, f"({key} in f)"
        parts = [{"$neq": {name: v}} for v in literals]
        return (parts[0] if len(parts) == 1 else {"$and": parts}), f"({key} in f and f[{key}] not in {tup})"


def compile_condition(when: Any, doc: Mapping[str, Any], path: str = "/when") -> CompiledCondition:
    """Compile one `when:` (None = always) against the document `doc` (for `{param}` operands).
    Raises CompileError for a malformed condition, NeverFires if a param is null."""
    comp = _Compiler(doc)
    if when is not None:
        comp.out.durable, comp.out.python = comp.node(when, path)
    return comp.out


def anchored(expr: dict[str, Any] | None, stage: str) -> dict[str, Any]:
    """The durable rule body: every rule needs a positive anchor (a rule of only `$nex` would match
    durable's internal state fact) and is scoped to its stage."""
    parts: list[Any] = [{"$ex": {"ticket_id": 1}}, {"stage": stage}]
    if expr is not None:
        parts.append(expr)
    return {"all": [{"m": {"$and": parts}}]}


def make_predicate(python: str, stage: str, label: str = "<condition>") -> Callable[[Mapping[str, Any]], bool]:
    """A Python predicate `fn(facts) -> bool` with the anchors of `anchored` (same semantics)."""
    src = f"lambda f: ('ticket_id' in f and 'stage' in f and f['stage'] == {stage!r} and {python})"
    predicate: Callable[[Mapping[str, Any]], bool] = eval(compile(src, label, "eval"), {"__builtins__": {}})  # noqa: S307 - generated from validated names/reprs
    return predicate
