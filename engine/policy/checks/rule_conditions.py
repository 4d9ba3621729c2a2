"""Checks on the facts and operands rules name: `when:` trees, `unlock.at` and `outcome.deadline`.

A condition naming a fact that `engine/facts.py` never builds, comparing a boolean fact with a
string, or testing `status` against a misspelt status is a rule that silently never fires; the
compiler cannot tell, so it is refused here with the fact table of `engine/factnames.py`.
`{param: ...}` paths are resolved exactly as the compiler does (`engine.conditions.resolve_param`).
"""
from __future__ import annotations

from typing import Any, Iterator

from engine.policy.checks import register_document_check
from engine.policy.checks.schema import did_you_mean, got, shown, type_word
from engine.policy.conditions import CompileError, resolve_param
from engine.core.problems import Diagnostic
from engine.core.factnames import BOOL, FACTS, INT, STR, FactSpec
from engine.policy.yamlsafe import pointer_join

ORDER_OPS = ("lt", "lte", "gt", "gte")


class _RuleContext:
    def __init__(self, doc: Any, rule: dict[str, Any], base: str) -> None:
        self.doc = doc
        self.rule = rule
        self.base = base
        self.stage = rule["stage"]

    def spec(self, name: str, where: str, at_key: bool) -> tuple[FactSpec | None, list[Diagnostic]]:
        spec = FACTS.get(name)
        if spec is None:
            hint = did_you_mean(name, list(FACTS)) or "facts are listed in docs/design.md \"Facts\""
            return None, [self.doc.diagnostic("unknown_fact", where, f"unknown fact `{name}`", hint, at_key=at_key)]
        if spec.stage and spec.stage != self.stage:
            return spec, [self.doc.diagnostic(
                "fact_stage_mismatch", where,
                f"fact `{name}` exists only in stage `{spec.stage}`, this rule is stage `{self.stage}`", at_key=at_key)]
        return spec, []

    def literal(self, spec: FactSpec, value: Any, where: str) -> Iterator[Diagnostic]:
        expected = {BOOL: bool, INT: int, STR: str}[spec.type]
        if not isinstance(value, expected) or (spec.type == INT and isinstance(value, bool)):
            yield self.doc.diagnostic("fact_type_mismatch", where,
                                      f"fact `{spec.name}` is a {_word(spec.type)}, compared with {got(value)}")
            return
        allowed = self.allowed_values(spec)
        if allowed is not None and value not in allowed:
            listed = ", ".join(x if x else '""' for x in allowed)
            yield self.doc.diagnostic("unknown_value", where,
                                      f"`{value}` is not a value of fact `{spec.name}` (one of: {listed})",
                                      did_you_mean(value, list(allowed)))

    def allowed_values(self, spec: FactSpec) -> tuple[Any, ...] | None:
        if isinstance(spec.values, str) and spec.values.startswith("doc:"):
            return tuple(item["id"] for item in self.doc.data.get(spec.values[4:]) or [])
        return None if spec.values is None or isinstance(spec.values, str) else tuple(spec.values)

    def param(self, operand: dict[str, Any], where: str) -> tuple[Any, list[Diagnostic]]:
        """Resolve `{param: ...}`; returns (value, diagnostics)."""
        try:
            return resolve_param(self.doc.data, operand["param"], where), []
        except CompileError as exc:
            return None, [self.doc.diagnostic("unknown_param", f"{where}/param", exc.detail,
                                              "a param is a dotted path into this document, list items by id")]


def _word(fact_type: str) -> str:
    return {BOOL: "boolean", INT: "integer", STR: "string"}[fact_type]


def _walk(ctx: _RuleContext, node: dict[str, Any], where: str) -> Iterator[Diagnostic]:
    for key, value in node.items():
        child = pointer_join(where, key)
        if key in ("all", "any"):
            for index, item in enumerate(value):
                yield from _walk(ctx, item, pointer_join(child, index))
            continue
        spec, problems = ctx.spec(key, child, at_key=True)
        yield from problems
        if spec is None:
            continue
        (op, operand), = value.items()
        yield from _comparison(ctx, spec, op, operand, pointer_join(child, op))


def _comparison(ctx: _RuleContext, spec: FactSpec, op: str, operand: Any, where: str) -> Iterator[Diagnostic]:
    if op == "exists":
        return
    if op in ORDER_OPS and spec.type != INT:
        yield ctx.doc.diagnostic("fact_type_mismatch", where,
                                 f"`{op}` orders numbers; fact `{spec.name}` is a {_word(spec.type)}", at_key=True)
        return
    if op in ("in", "not_in"):
        for index, item in enumerate(operand):
            yield from ctx.literal(spec, item, pointer_join(where, index))
        return
    if not isinstance(operand, dict):
        yield from ctx.literal(spec, operand, where)
        return
    if "fact" in operand:
        other, problems = ctx.spec(operand["fact"], f"{where}/fact", at_key=False)
        yield from problems
        if other is not None and other.type != spec.type:
            yield ctx.doc.diagnostic("fact_type_mismatch", f"{where}/fact",
                                     f"fact `{spec.name}` ({_word(spec.type)}) is compared with fact "
                                     f"`{other.name}` ({_word(other.type)})")
        return
    value, problems = ctx.param(operand, where)
    yield from problems
    if problems or value is None:  # null: no limit, the compiler drops the rule
        return
    if isinstance(value, (dict, list)):
        yield ctx.doc.diagnostic("unknown_param", f"{where}/param",
                                 f"param `{operand['param']}` is a {type_word(value)}, not a value")
    elif "unit" in operand and (spec.type != INT or not isinstance(value, int) or isinstance(value, bool)):
        yield ctx.doc.diagnostic("fact_type_mismatch", f"{where}/unit",
                                 "`unit` needs an integer param and an integer fact")
    else:
        yield from (ctx.doc.diagnostic(d.code, f"{where}/param", f"param `{operand['param']}` = {shown(value)}: {d.message}")
                    for d in ctx.literal(spec, value, where))


def _time_expr(ctx: _RuleContext, expr: dict[str, Any], where: str) -> Iterator[Diagnostic]:
    spec, problems = ctx.spec(expr["fact"], f"{where}/fact", at_key=False)
    yield from problems
    if spec is not None and spec.type != INT:
        yield ctx.doc.diagnostic("fact_type_mismatch", f"{where}/fact",
                                 f"fact `{spec.name}` is a {_word(spec.type)}, not a time")
    offset = expr.get("offset_hours")
    if isinstance(offset, dict):
        value, problems = ctx.param(offset, f"{where}/offset_hours")
        yield from problems
        if not problems and (not isinstance(value, int) or isinstance(value, bool)):
            yield ctx.doc.diagnostic("unknown_param", f"{where}/offset_hours/param",
                                     f"param `{offset['param']}` is {got(value)}, not a number of hours")
    elif isinstance(offset, int) and offset < 0:
        yield ctx.doc.diagnostic("impossible_number", f"{where}/offset_hours",
                                 "offset_hours is negative", "use `sign: -1` for a time before the fact")


@register_document_check
def rule_facts(doc: Any) -> Iterator[Diagnostic]:
    for index, rule in enumerate(doc.data["rules"]):
        base = f"/rules/{index}"
        ctx = _RuleContext(doc, rule, base)
        yield from _walk(ctx, rule["when"], f"{base}/when")
        unlock = (rule.get("deny") or {}).get("unlock") or {}
        if "at" in unlock:
            yield from _time_expr(ctx, unlock["at"], f"{base}/deny/unlock/at")
        deadline = (rule.get("outcome") or {}).get("deadline")
        if deadline:
            yield from _time_expr(ctx, deadline, f"{base}/outcome/deadline")
