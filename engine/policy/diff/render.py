"""The three forms of a diff: JSON (for programs), Markdown (for a review or a wiki page) and a
terminal form (one change per line, its path and guide section beneath)."""
from __future__ import annotations

from typing import Any

from engine.policy.diff.semantic import Change, summarize
from engine.policy.diff.labels import value_text

KIND_MARKS = {"added": "+", "removed": "-", "changed": "~"}
KIND_WORDS = {"added": "新增", "removed": "删除", "changed": "修改"}


def to_json(changes: list[Change], old: str, new: str) -> dict[str, Any]:
    return {"from": old, "to": new, "count": len(changes), "summary": summarize(changes),
            "changes": [c.to_json() for c in changes]}


def _before_after(change: Change) -> str:
    if change.moved_from:
        return f"{change.moved_from} → {change.path}"
    if change.kind == "added":
        return value_text(change.after)
    if change.kind == "removed":
        return value_text(change.before)
    return f"{value_text(change.before)} → {value_text(change.after)}"


def to_text(changes: list[Change], old: str, new: str) -> str:
    counts = summarize(changes)
    lines = [f"{old} → {new}: {len(changes)} change{'s' if len(changes) != 1 else ''}"
             f" (+{counts['added']} -{counts['removed']} ~{counts['changed']})"]
    for change in changes:
        cite = f"  ({change.section})" if change.section else ""
        if change.moved_from:  # the label already says from where to where
            lines.append(f"  {KIND_MARKS[change.kind]} {change.label}")
            lines.append(f"      {change.moved_from} → {change.path}{cite}")
            continue
        lines.append(f"  {KIND_MARKS[change.kind]} {change.label}: {_before_after(change)}")
        lines.append(f"      {change.path}{cite}")
    if not changes:
        lines.append("  (no policy change)")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(changes: list[Change], old: str, new: str) -> str:
    lines = [f"### {old} → {new}", ""]
    if not changes:
        return "\n".join(lines + ["无政策变更。", ""])
    lines += ["| 变更 | 项目 | 之前 | 之后 | 路径 | 指南章节 |", "|---|---|---|---|---|---|"]
    for c in changes:
        if c.moved_from:
            before, after = c.moved_from, c.path
        else:
            before = "" if c.kind == "added" else value_text(c.before)
            after = "" if c.kind == "removed" else value_text(c.after)
        lines.append(f"| {KIND_WORDS[c.kind]} | {_cell(c.label)} | {_cell(before)} | {_cell(after)} "
                     f"| `{c.path}` | {_cell(c.section or '')} |")
    return "\n".join(lines) + "\n"
