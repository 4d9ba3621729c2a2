"""Declared vs computed changes, across the versions of a bundle.

For each pair of adjacent versions (by `effective_from`), the newer file's `changes` must account
for the diff exactly:
- every computed change (engine/diff.py) is covered by a `touches` prefix of one of the newer
  version's declared changes, else `undeclared_change`, located at that node in the newer file
  (a removal: at its nearest surviving ancestor);
- every declared change covers at least one computed change, else `declared_change_unmatched`,
  located at the declared item.

A bundle check: it needs every version at once, so it runs after each file passed on its own.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable

from engine.core import idpaths
from engine.policy.checks import register_bundle_check
from engine.core.problems import WARNING, Diagnostic
from engine.policy.diff.semantic import covered_by, diff_documents
from engine.core.timeutil import parse_aware


# Documents are engine.bundle.PolicyDocument (validation) or engine.history.VersionDocument (diff,
# tests): both carry `data`, `positions` and `path`; the bundle's also a display name, `file`.
def _data(document: Any) -> dict[str, Any]:
    data: dict[str, Any] = document.data
    return data


def _filename(document: Any) -> str:
    return getattr(document, "file", None) or str(document.path)


def _position(document: Any, pointer: str) -> tuple[int, int]:
    line, column = document.positions.nearest(pointer, at_key=True)
    return int(line), int(column)


def _effective(document: Any) -> float:
    raw = _data(document).get("effective_from")
    try:
        return parse_aware(raw).timestamp() if isinstance(raw, str) else 0.0
    except ValueError:
        return 0.0


def _declared(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    changes = data.get("changes")
    if not isinstance(changes, list):
        return []
    return [(i, c) for i, c in enumerate(changes) if isinstance(c, dict)]


def _touches(declared: dict[str, Any]) -> tuple[str, ...]:
    value = declared.get("touches")
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def check_pair(older: Any, newer: Any) -> list[Diagnostic]:
    """Diagnostics for `newer`'s declared changes against the diff from `older`."""
    old_data, new_data = _data(older), _data(newer)
    computed = diff_documents(old_data, new_data)
    declared = _declared(new_data)
    file = _filename(newer)
    version = new_data.get("version", file)
    previous = old_data.get("version", _filename(older))
    out: list[Diagnostic] = []
    for change in computed:
        if any(covered_by(change, _touches(item)) for _, item in declared):
            continue
        uncovered = [p for p in change.paths()
                     if not any(idpaths.covers(t, p) for _, item in declared for t in _touches(item))]
        path = uncovered[0] if uncovered else change.path
        pointer, _ = idpaths.pointer_of(new_data, path)
        line, column = _position(newer, pointer)
        out.append(Diagnostic(
            "undeclared_change", f"undeclared change at `{path}` ({change.kind}, since {previous})",
            file, line, column, pointer,
            f"declare it: add a `touches` prefix covering `{path}` to an item of `changes` in {version}"))
    annotated = diff_documents(old_data, new_data, include_annotations=True)
    for index, item in declared:
        touches = _touches(item)
        out.extend(_unused_prefixes(newer, file, index, item, annotated))
        if any(covered_by(change, touches) for change in computed):
            continue
        pointer = f"/changes/{index}"
        line, column = _position(newer, pointer)
        out.append(Diagnostic(
            "declared_change_unmatched",
            f"declared change `{item.get('id', index)}` matches no computed change (since {previous})",
            file, line, column, pointer,
            "its `touches` prefixes cover nothing that differs from the previous version: "
            "fix the prefixes or drop the declaration"))
    return out


def _unused_prefixes(newer: Any, file: str, index: int, item: dict[str, Any], changes: list[Any]) -> list[Diagnostic]:
    """A `touches` prefix that covers nothing that changed (annotations included) is stale or
    misspelt: a warning, because the declaration may still be right as a whole."""
    out = []
    for position, prefix in enumerate(item.get("touches") or ()):
        if not isinstance(prefix, str):
            continue
        if any(idpaths.covers(prefix, path) for change in changes for path in change.paths()):
            continue
        pointer = f"/changes/{index}/touches/{position}"
        line, column = _position(newer, pointer)
        out.append(Diagnostic(
            "touches_unused", f"`touches` prefix `{prefix}` of `{item.get('id', index)}` covers no change",
            file, line, column, pointer, "a misspelt path, or a change that was reverted", WARNING))
    return out


def check_bundle(documents: Iterable[Any]) -> list[Diagnostic]:
    """All versions of a bundle: each needs `data` (the dict), `positions` (JSON pointer →
    (line, column), as engine/yamlsafe.py gives) and `file`/`path` (its name)."""
    ordered = sorted(documents, key=lambda d: (_effective(d), str(_data(d).get("version", ""))))
    out: list[Diagnostic] = []
    for older, newer in zip(ordered, ordered[1:]):
        out.extend(_remembered_pair(older, newer))
    return out


# A hot reload after one file changed re-checks the bundle; of its adjacent pairs only the one or
# two next to the changed file can say anything new. A pair's diagnostics depend on the two
# documents' bytes and names alone, so they are remembered per (PolicyDocument.key, key) — only for
# documents read from files (a `digest`); a few recent pairs, enough for a reload's bundle.
_PAIRS: dict[tuple[Any, Any], tuple[str, list[Diagnostic]]] = {}
_PAIRS_KEPT = 64


def _remembered_pair(older: Any, newer: Any) -> list[Diagnostic]:
    if not (getattr(older, "digest", "") and getattr(newer, "digest", "")):
        return check_pair(older, newer)
    key = (older.key, newer.key)
    file = _filename(newer)
    found = _PAIRS.get(key)
    if found is None:
        if len(_PAIRS) >= _PAIRS_KEPT:
            _PAIRS.clear()
        found = _PAIRS[key] = (file, check_pair(older, newer))
    was, problems = found
    return [replace(p, file=file) if p.file == was else p for p in problems] if was != file else list(problems)



@register_bundle_check
def declared_changes(bundle: Any) -> list[Diagnostic]:
    """The registry's entry point: a `engine.bundle.Bundle` (documents sorted, all valid)."""
    return check_bundle(bundle.documents)
