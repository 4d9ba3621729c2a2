"""A diff grouped by the declared change that explains it: how a reviewer reads a new version.

Each computed change (engine/policy/diff/semantic.py) goes under the first declared row, among the
versions the comparison spans (newer than A, up to B), whose `touches` cover every path of the
change; what no row covers is its own group, `undeclared` (the loader refuses that between
adjacent versions, so there it means a draft that forgot to declare an edit).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from engine.policy.diff.labels import summary_text
from engine.policy.diff.semantic import Change, covered_by


@dataclass(frozen=True)
class DeclaredRow:
    """One entry of a version's `changes:` (the guide's changelog row, in its words)."""

    version: str
    id: str
    text: str
    ref: str | None
    section: str | None
    note: str | None
    touches: tuple[str, ...]
    affects_actions: tuple[str, ...]

    @classmethod
    def rows_of(cls, version: str, data: dict[str, Any]) -> list["DeclaredRow"]:
        rows = []
        for raw in data.get("changes") or []:
            if not isinstance(raw, dict):
                continue
            rows.append(cls(version, str(raw.get("id", "")), str(raw.get("text", "")), raw.get("ref"),
                            raw.get("section"), raw.get("note"),
                            tuple(t for t in raw.get("touches") or () if isinstance(t, str)),
                            tuple(a for a in raw.get("affects_actions") or () if isinstance(a, str))))
        return rows

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "id": self.id, "text": self.text, "ref": self.ref,
                "section": self.section, "note": self.note, "touches": list(self.touches),
                "affects_actions": list(self.affects_actions)}


@dataclass
class Group:
    row: DeclaredRow | None  # None: the changes no declared row covers
    changes: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"declared": self.row.to_json() if self.row else None,
                "changes": [dict(c.to_json(), before_text=None if c.before is None else summary_text(c.before),
                                 after_text=None if c.after is None else summary_text(c.after))
                            for c in self.changes]}


def group_changes(changes: Iterable[Change], rows: list[DeclaredRow]) -> list[Group]:
    """Groups in the rows' order (rows that cover nothing are kept: a declared row with no change
    is worth seeing), then the undeclared group if it is not empty."""
    groups = [Group(row) for row in rows]
    undeclared = Group(None)
    for change in changes:
        home = next((g for g in groups if g.row and g.row.touches and covered_by(change, g.row.touches)), None)
        (home or undeclared).changes.append(change)
    return groups + ([undeclared] if undeclared.changes else [])


def spanned_rows(versions: Iterable[tuple[str, float | None, dict[str, Any]]],
                 old_start: float | None, new: tuple[str, float | None, dict[str, Any]]) -> list[DeclaredRow]:
    """The declared rows that explain going from the version starting at `old_start` to `new`:
    those of every known version effective after the old one and up to the new one (a comparison
    may skip versions), with `new`'s own rows in place of the stored version of the same name (a
    draft replaces it). `versions` are (version, effective_from timestamp, data)."""
    new_version, new_start, new_data = new
    rows: list[DeclaredRow] = []
    if old_start is not None and new_start is not None:
        for version, start, data in sorted(versions, key=lambda v: (v[1] or 0.0, v[0])):
            if version != new_version and start is not None and old_start < start < new_start:
                rows += DeclaredRow.rows_of(version, data)
    return rows + DeclaredRow.rows_of(new_version, new_data)
