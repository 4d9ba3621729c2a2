"""Id paths (docs/design.md "Paths"): `/`-separated, list items named by their `id`.

`scenarios/not_received/rejection`, `reasons/contact_failed/template`. In a list of plain ids
(a scenario's offered reasons) an element is named by its own value:
`scenarios/not_received/reasons/request_evidence/contact_failed`.

The diff speaks id paths because they survive reordering; the loader's positions are keyed by
JSON pointers with list indexes. `walk` bridges the two against one concrete document.
"""
from __future__ import annotations

from typing import Any


def join(*segments: str) -> str:
    return "/".join(s for s in segments if s != "")


def split(path: str) -> list[str]:
    return [s for s in path.split("/") if s != ""]


def _escape_pointer(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _child(node: Any, segment: str) -> tuple[str, Any] | None:
    """The child of `node` named `segment`: (pointer segment, child) or None if absent."""
    if isinstance(node, dict):
        if segment in node:
            return _escape_pointer(segment), node[segment]
        return None
    if isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict) and str(item.get("id")) == segment:
                return str(index), item
        for index, item in enumerate(node):
            if not isinstance(item, (dict, list)) and str(item) == segment:
                return str(index), item
    return None


def walk(document: Any, path: str) -> list[tuple[str, Any]]:
    """The nodes along `path` in `document`, outermost first, each with its JSON pointer.

    Stops at the deepest node that exists: a path into something removed yields its nearest
    surviving ancestor last (the root, pointer "", is always first)."""
    trail: list[tuple[str, Any]] = [("", document)]
    pointer, node = "", document
    for segment in split(path):
        found = _child(node, segment)
        if found is None:
            break
        step, node = found
        pointer = f"{pointer}/{step}"
        trail.append((pointer, node))
    return trail


def pointer_of(document: Any, path: str) -> tuple[str, bool]:
    """JSON pointer of the deepest existing node on `path`, and whether the whole path exists."""
    trail = walk(document, path)
    return trail[-1][0], len(trail) == len(split(path)) + 1


def enclosing_section(document: Any, path: str) -> str | None:
    """The guide section cited by the innermost mapping on `path` that carries `section`."""
    for _pointer, node in reversed(walk(document, path)):
        if isinstance(node, dict) and isinstance(node.get("section"), str):
            return str(node["section"])
    return None


def covers(prefix: str, path: str) -> bool:
    """A declared `touches` entry covers every path that starts with it (plain string prefix, so
    `rules/merchant.extend_receipt.` covers every rule id with that prefix)."""
    return path.startswith(prefix)
