"""Semantic diff of two policy documents (the raw dicts of `rules/<version>.yaml`).

One `Change` per thing a policy reader would call one change:
- lists of items with `id` are matched by id (reordering is not a change, except for
  `negotiation_types`, whose order is the display order);
- lists of plain ids (a scenario's offered reasons) are compared as sets, element by element, and an
  element that left one list and joined another of the same kind (a reason moved between
  scenarios, or between negotiation types of one scenario) is one `changed` line;
- a condition tree (`when`) and any list of unnamed mappings is compared as a whole;
- everything else is compared leaf by leaf: a template's wording, a limit from null to 2, a timeout
  from 24 to 48, a scenario's rejection mode each give one line.

Not compared: the version metadata (`version`, `effective_from`, `changes`) and, unless asked,
annotations (`section`, `illustrative`, `note`), which cite the guide but do not change a decision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.core import idpaths
from engine.policy.diff.labels import id_names, label_for

METADATA_KEYS = frozenset({"version", "effective_from", "changes"})
ANNOTATION_KEYS = frozenset({"section", "illustrative", "note"})
ATOMIC_KEYS = frozenset({"when"})  # condition trees: structure, not fields
ORDERED_LISTS = frozenset({"negotiation_types"})  # "order is display order" (design.md)
KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | changed
    path: str  # id path (design.md "Paths"); for a move, where the element is now
    label: str  # Chinese, for people
    before: Any  # None when added (and for a move: the id path of the list it left)
    after: Any  # None when removed (and for a move: the id path of the list it joined)
    section: str | None  # the guide section of the innermost enclosing item
    moved_from: str | None = None  # a move only: the element's old id path

    def paths(self) -> tuple[str, ...]:
        """Every path this change touches: a move touches both its lists."""
        return (self.path, self.moved_from) if self.moved_from else (self.path,)

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "path": self.path, "label": self.label,
               "before": self.before, "after": self.after, "section": self.section}
        if self.moved_from:
            out["moved_from"] = self.moved_from
        return out


@dataclass
class _Raw:
    kind: str
    path: str
    before: Any = None
    after: Any = None
    element: Any = None  # set for an element of a list of plain ids
    moved_from: str | None = None
    label_suffix: str = ""


def diff_documents(a: dict[str, Any], b: dict[str, Any], *, include_annotations: bool = False) -> list[Change]:
    """The changes that turn policy document `a` (older) into `b` (newer), in `b`'s order."""
    walker = _Walker(include_annotations)
    walker.mapping(a or {}, b or {}, "", top=True)
    raws = _pair_moves(walker.out)
    names = id_names(b or {}, a or {})
    return [_finish(raw, a or {}, b or {}, names) for raw in raws]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _same(x: Any, y: Any) -> bool:
    # `1 == True` in Python, but a policy that turns a count into a flag has changed.
    return type(x) is type(y) and _canonical(x) == _canonical(y)


def _is_id_list(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    ids = [item.get("id") for item in value if isinstance(item, dict)]
    return len(ids) == len(value) and None not in ids and len(set(map(str, ids))) == len(ids)


def _is_scalar_set(value: Any) -> bool:
    if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
        return False
    return len(set(map(str, value))) == len(value)


class _Walker:
    def __init__(self, include_annotations: bool) -> None:
        self.include_annotations = include_annotations
        self.out: list[_Raw] = []

    def value(self, x: Any, y: Any, path: str) -> None:
        last = idpaths.split(path)[-1] if path else ""
        if last in ATOMIC_KEYS:
            if not _same(x, y):
                self.out.append(_Raw("changed", path, x, y))
        elif isinstance(x, dict) and isinstance(y, dict):
            self.mapping(x, y, path)
        elif _is_id_list(x) and _is_id_list(y):
            self.id_list(x, y, path)
        elif _is_scalar_set(x) and _is_scalar_set(y):
            self.scalar_set(x, y, path)
        elif not _same(x, y):
            self.out.append(_Raw("changed", path, x, y))

    def mapping(self, x: dict[str, Any], y: dict[str, Any], path: str, top: bool = False) -> None:
        for key in list(y) + [k for k in x if k not in y]:
            if top and key in METADATA_KEYS:
                continue
            if key in ANNOTATION_KEYS and not self.include_annotations:
                continue
            child = idpaths.join(path, str(key))
            if key not in x:
                self.out.append(_Raw("added", child, None, y[key]))
            elif key not in y:
                self.out.append(_Raw("removed", child, x[key], None))
            else:
                self.value(x[key], y[key], child)

    def id_list(self, x: list[Any], y: list[Any], path: str) -> None:
        old = {str(item["id"]): item for item in x}
        new = {str(item["id"]): item for item in y}
        if idpaths.split(path)[-1] in ORDERED_LISTS:
            common_old = [i for i in old if i in new]
            common_new = [i for i in new if i in old]
            if common_old != common_new:
                self.out.append(_Raw("changed", path, common_old, common_new, label_suffix=" · 顺序"))
        for item_id, item in new.items():
            child = idpaths.join(path, item_id)
            if item_id in old:
                self.value(old[item_id], item, child)
            else:
                self.out.append(_Raw("added", child, None, item))
        for item_id, item in old.items():
            if item_id not in new:
                self.out.append(_Raw("removed", idpaths.join(path, item_id), item, None))

    def scalar_set(self, x: list[Any], y: list[Any], path: str) -> None:
        old, new = {str(v) for v in x}, {str(v) for v in y}
        for v in y:
            if str(v) not in old:
                self.out.append(_Raw("added", idpaths.join(path, str(v)), None, v, element=v))
        for v in x:
            if str(v) not in new:
                self.out.append(_Raw("removed", idpaths.join(path, str(v)), v, None, element=v))


def _list_path(path: str) -> str:
    return "/".join(idpaths.split(path)[:-1])


def _move_key(raw: _Raw) -> tuple[Any, ...]:
    segments = idpaths.split(raw.path)
    return (str(raw.element), segments[0], len(segments))


def _pair_moves(raws: list[_Raw]) -> list[_Raw]:
    """Fold `removed x from list P` + `added x to list Q` (same kind of list) into one move.

    Lists are "the same kind" when they sit under the same top-level key at the same depth
    (`scenarios/*/reasons/*`). When several pairings are possible, the one whose list paths
    share the most segments wins (a reason changing type inside one scenario pairs with itself)."""
    removed = [r for r in raws if r.kind == "removed" and r.element is not None]
    added = [r for r in raws if r.kind == "added" and r.element is not None]
    used_removed: set[int] = set()
    moves: dict[int, _Raw] = {}
    for add in added:
        best, best_score = None, -1
        for r_index, rem in enumerate(removed):
            if r_index in used_removed or _move_key(rem) != _move_key(add):
                continue
            score = sum(p == q for p, q in zip(idpaths.split(rem.path), idpaths.split(add.path)))
            if score > best_score:
                best, best_score = r_index, score
        if best is not None:
            used_removed.add(best)
            rem = removed[best]
            moves[id(add)] = _Raw("changed", add.path, _list_path(rem.path), _list_path(add.path),
                                  element=add.element, moved_from=rem.path)
    dropped = {id(removed[i]) for i in used_removed}
    return [moves.get(id(r), r) for r in raws if id(r) not in dropped]


def _finish(raw: _Raw, a: dict[str, Any], b: dict[str, Any], names: dict[str, str]) -> Change:
    where, other = (a, b) if raw.kind == "removed" else (b, a)
    section = idpaths.enclosing_section(where, raw.path) or idpaths.enclosing_section(other, raw.path)
    if raw.moved_from:
        element = names.get(str(raw.element), str(raw.element))
        label = (f"「{element}」从 {label_for(raw.before, names)} "
                 f"移至 {label_for(raw.after, names)}")
    else:
        label = label_for(raw.path, names) + raw.label_suffix
    return Change(raw.kind, raw.path, label, raw.before, raw.after, section, raw.moved_from)


def summarize(changes: list[Change]) -> dict[str, int]:
    counts = {kind: 0 for kind in KINDS}
    for change in changes:
        counts[change.kind] += 1
    return counts


def covered_by(change: Change, touches: tuple[str, ...]) -> bool:
    """Every path of the change (both ends of a move) starts with one of the prefixes."""
    return all(any(idpaths.covers(prefix, path) for prefix in touches) for path in change.paths())
