"""The three forms of a diff: JSON (for programs), Markdown (for a review or a wiki page) and a
terminal form (one change per line, its path and guide section beneath)."""
from __future__ import annotations

from typing import Any, Callable

from engine.policy.diff.grouped import DeclaredRow, group_changes
from engine.policy.diff.semantic import Change, summarize
from engine.policy.diff.labels import summary_text, value_text

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


def _table(changes: list[Change], text: Callable[[Any], str] = value_text) -> list[str]:
    lines = ["| 变更 | 项目 | 之前 | 之后 | 路径 | 指南章节 |", "|---|---|---|---|---|---|"]
    for c in changes:
        if c.moved_from:
            before, after = c.moved_from, c.path
        else:
            before = "" if c.kind == "added" else text(c.before)
            after = "" if c.kind == "removed" else text(c.after)
        lines.append(f"| {KIND_WORDS[c.kind]} | {_cell(c.label)} | {_cell(before)} | {_cell(after)} "
                     f"| `{c.path}` | {_cell(c.section or '')} |")
    return lines


def to_markdown(changes: list[Change], old: str, new: str, rows: list[DeclaredRow] | None = None) -> str:
    """One table of every change; with `rows` (the declared changes of the versions after `old` up
    to `new`), one section per declared change: what a pull request's description should say."""
    if rows is not None:
        return to_markdown_grouped(changes, old, new, rows)
    lines = [f"### {old} → {new}", ""]
    if not changes:
        return "\n".join(lines + ["无政策变更。", ""])
    return "\n".join(lines + _table(changes)) + "\n"


def to_markdown_grouped(changes: list[Change], old: str, new: str, rows: list[DeclaredRow]) -> str:
    counts = summarize(changes)
    lines = [f"## 政策变更 {old} → {new}", ""]
    if not changes:
        return "\n".join(lines + ["无政策变更。", ""])
    groups = group_changes(changes, rows)
    declared = [g for g in groups if g.row is not None]
    lines += [f"**{len(changes)} 项语义变更**（新增 {counts['added']} · 删除 {counts['removed']} · "
              f"修改 {counts['changed']}），按 {len(declared)} 条声明的变更（`changes:`）分组。"
              "注释（`section`、`illustrative`、`note`）的改动不计。", ""]
    for number, group in enumerate(groups, 1):
        row = group.row
        if row is None:
            lines += [f"### ⚠️ 未声明的变更（{len(group.changes)}）", "",
                      "没有任何声明的变更的 `touches` 覆盖这些路径：`aftersale validate` 会拒绝它们。", ""]
        else:
            lines += [f"### {number}. {row.text}", ""]
            facts = [f"`{row.id}`", f"版本 {row.version}"]
            if row.section:
                facts.append(f"指南章节 {row.section}")
            if row.ref:
                facts.append(row.ref)
            if row.affects_actions:
                facts.append("影响的动作：" + "、".join(f"`{a}`" for a in row.affects_actions))
            lines += [" · ".join(facts), ""]
            if row.note:
                lines += [f"> {row.note}", ""]
            if not group.changes:
                lines += ["（此条声明没有对应的语义变更：只改了说明或注释。）", ""]
                continue
        lines += _table(group.changes, summary_text) + [""]
    return "\n".join(lines)
