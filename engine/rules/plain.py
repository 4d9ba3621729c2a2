"""Plain-Python evaluator over the same compiled conditions as durable_rules: one generated
function per stage (one `if` per rule; ~10x faster than calling a closure per rule), used as the
cross-check of the durable path and as a fallback a caller may choose."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence


class PlainStage:
    """Evaluates the live (not dropped) rules of one stage, in rule order."""

    def __init__(self, stage: str, rules: Sequence[tuple[str, str]]) -> None:
        """`rules`: (rule id, Python condition expression over `f`) in rule order."""
        self.stage = stage
        self.rule_ids = tuple(rid for rid, _ in rules)
        lines = ["def _fired(f):", "    out = []",
                 # the anchors every durable rule carries (compile.anchored)
                 f"    if 'ticket_id' not in f or f.get('stage') != {stage!r}:", "        return out"]
        for i, (_, expr) in enumerate(rules):
            lines.append(f"    if {expr}:")
            lines.append(f"        out.append(_ids[{i}])")
        lines.append("    return out")
        namespace: dict[str, Any] = {"_ids": self.rule_ids, "__builtins__": {}}
        exec(compile("\n".join(lines), f"<plain {stage}>", "exec"), namespace)  # noqa: S102 - generated from validated names/reprs
        self._fn: Callable[[Mapping[str, Any]], list[str]] = namespace["_fired"]

    def fired(self, facts: Mapping[str, Any]) -> list[str]:
        """Ids of the rules whose condition holds, in rule order (each at most once)."""
        return self._fn(facts)
