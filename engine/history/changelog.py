"""The changelog, generated from the policy files: the guide's table (调整时间 / 调整内容 / 备注) in
the declared words of each version's `changes`, every row traced to the computed changes (diff
against the previous version) that its `touches` prefixes cover.

A computed change that no declared row covers is listed under its version as undeclared, so the
changelog never hides an edit; `engine/checks/declared_changes.py` turns that into an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.policy.diff.semantic import Change, covered_by, diff_documents
from engine.history.versions import VersionDocument
from engine.core.timeutil import iso


@dataclass(frozen=True)
class DeclaredRow:
    id: str
    text: str
    ref: str
    section: str | None
    note: str | None
    touches: tuple[str, ...]
    affects_actions: tuple[str, ...]
    changes: tuple[Change, ...]  # the computed changes this row covers

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "ref": self.ref, "section": self.section,
                "note": self.note, "touches": list(self.touches),
                "affects_actions": list(self.affects_actions),
                "changes": [c.path for c in self.changes]}


@dataclass(frozen=True)
class VersionEntry:
    version: str
    effective_from: str | None
    previous: str | None  # None for the first version (nothing to compare with)
    rows: tuple[DeclaredRow, ...]
    undeclared: tuple[Change, ...] = field(default=())

    @property
    def date_label(self) -> str:
        """The guide's date notation: 2024年3月11日."""
        year, month, day = self.version[:10].split("-") if len(self.version) >= 10 else ("", "", "")
        if year.isdigit() and month.isdigit() and day.isdigit():
            return f"{int(year)}年{int(month)}月{int(day)}日"
        return self.version

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "date": self.date_label, "effective_from": self.effective_from,
                "previous": self.previous, "declared": [r.to_json() for r in self.rows],
                "undeclared": [c.path for c in self.undeclared]}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def build_changelog(docs: list[VersionDocument]) -> list[VersionEntry]:
    """One entry per version, oldest first (as `docs` are ordered)."""
    entries: list[VersionEntry] = []
    for index, doc in enumerate(docs):
        previous = docs[index - 1] if index else None
        computed = diff_documents(previous.data, doc.data) if previous else []
        rows = []
        for declared in doc.changes:
            touches = _strings(declared.get("touches"))
            rows.append(DeclaredRow(
                id=str(declared.get("id", "")), text=str(declared.get("text", "")),
                ref=str(declared.get("ref") or ""), section=declared.get("section"),
                note=declared.get("note"), touches=touches,
                affects_actions=_strings(declared.get("affects_actions")),
                changes=tuple(c for c in computed if covered_by(c, touches))))
        undeclared = tuple(c for c in computed if not any(covered_by(c, r.touches) for r in rows))
        entries.append(VersionEntry(doc.version, iso(doc.effective_from) if doc.effective_from else None,
                                    previous.version if previous else None, tuple(rows), undeclared))
    return entries


def ordered(entries: list[VersionEntry], order: str) -> list[VersionEntry]:
    return list(reversed(entries)) if order == "newest" else list(entries)


def to_json(entries: list[VersionEntry]) -> dict[str, Any]:
    return {"versions": [e.to_json() for e in entries],
            "declared_count": sum(len(e.rows) for e in entries),
            "undeclared_count": sum(len(e.undeclared) for e in entries)}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(entries: list[VersionEntry]) -> str:
    lines = ["| 调整时间 | 调整内容 | 备注 | 对应变更 |", "|---|---|---|---|"]
    for entry in entries:
        if entry.previous is None and not entry.rows:
            lines.append(f"| {entry.date_label} | 初始版本 | | |")
            continue
        for position, row in enumerate(entry.rows):
            date = entry.date_label if position == 0 else ""
            paths = "<br>".join(f"`{c.path}`" for c in row.changes) or "(无)"
            lines.append(f"| {date} | {_cell(row.text)} | {_cell(row.ref)} | {paths} |")
        if entry.undeclared:
            date = "" if entry.rows else entry.date_label
            paths = "<br>".join(f"`{c.path}`" for c in entry.undeclared)
            lines.append(f"| {date} | **未声明的变更** | | {paths} |")
    return "\n".join(lines) + "\n"


def to_text(entries: list[VersionEntry]) -> str:
    lines: list[str] = []
    for entry in entries:
        since = f", 生效 {entry.effective_from}" if entry.effective_from else ""
        lines.append(f"{entry.date_label}  ({entry.version}{since})")
        if entry.previous is None and not entry.rows:
            lines.append("  初始版本")
        for row in entry.rows:
            ref = f"  [{row.ref}]" if row.ref else ""
            lines.append(f"  · {row.text}{ref}")
            lines.append(f"      {row.id}: {len(row.changes)} change{'s' if len(row.changes) != 1 else ''}")
            lines.extend(f"        {c.path}" for c in row.changes)
        if entry.undeclared:
            lines.append("  ! 未声明的变更 (undeclared):")
            lines.extend(f"        {c.path}" for c in entry.undeclared)
        lines.append("")
    return "\n".join(lines)
