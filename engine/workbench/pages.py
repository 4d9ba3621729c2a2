"""The read-only pages (Versions, Policy, Compare), answered from the engine being served."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.errors import NoVersionError
from engine.core.timeutil import iso, now as wall_clock, parse_aware
from engine.history import changelog as changelog_mod
from engine.history.versions import VersionDocument
from engine.policy.diff.grouped import group_changes, spanned_rows
from engine.policy.diff.render import to_markdown
from engine.policy.diff.semantic import diff_documents, summarize
from engine.workbench import catalog, sample


def _in_force(engine: Any, at: Any) -> str | None:
    try:
        return str(engine.version_at(at))
    except NoVersionError:
        return None


_VERSION_ROWS: dict[str, list[dict[str, Any]]] = {}  # bundle hash -> what does not depend on `at`


def versions(engine: Any, at_text: str | None) -> dict[str, Any]:
    at = parse_aware(at_text) if at_text else wall_clock()
    rows = _VERSION_ROWS.get(engine.bundle_hash)
    if rows is None:  # a changelog diffs every adjacent pair: once per bundle, not per request
        if len(_VERSION_ROWS) > 8:
            _VERSION_ROWS.clear()
        rows = _VERSION_ROWS[engine.bundle_hash] = _version_rows(engine)
    out = [dict(row, **info.to_json(at)) for row, info in zip(rows, engine.versions())]
    return {"at": iso(at), "in_force": _in_force(engine, at), "bundle_hash": engine.bundle_hash, "versions": out}


def _version_rows(engine: Any) -> list[dict[str, Any]]:
    infos = engine.versions()
    docs = [VersionDocument(version=i.version, path=Path(f"{i.version}.yaml"), data=engine.document(i.version),
                            positions=None, effective_from=i.effective_from)  # type: ignore[arg-type]
            for i in infos]
    entries = {e.version: e for e in changelog_mod.build_changelog(docs)}
    out = []
    for info in infos:
        document = engine.bundle.document(info.version)
        entry = entries[info.version]
        out.append(dict(date=entry.date_label, file=document.path.name if document else None,
                        title=engine.document(info.version).get("title"),
                        counts=catalog.counts(engine.document(info.version)),
                        previous=entry.previous,
                        changelog=[dict(row.to_json(), change_count=len(row.changes)) for row in entry.rows],
                        undeclared=[c.path for c in entry.undeclared]))
    return out


def policy(engine: Any, version: str) -> dict[str, Any]:
    policy_model = engine.policy(version)  # UnknownVersionError → 404
    return catalog.catalog(engine.bundle.document(version), policy_model)


def compare(engine: Any, bundle_hash: str, old: str, new: str) -> dict[str, Any]:
    engine.policy(old), engine.policy(new)  # unknown versions fail here, before the cache
    return _compare(engine, bundle_hash, old, new)


_CACHE: dict[tuple[str, str, str], dict[str, Any]] = {}


def _compare(engine: Any, bundle_hash: str, old: str, new: str) -> dict[str, Any]:
    key = (bundle_hash, old, new)
    if key in _CACHE:
        return _CACHE[key]
    a, b = engine.document(old), engine.document(new)
    changes = diff_documents(a, b)
    known = [(i.version, i.effective_from.timestamp(), engine.document(i.version)) for i in engine.versions()]
    rows = spanned_rows(known, engine.policy(old).effective_from.timestamp(),
                        (new, engine.policy(new).effective_from.timestamp(), b))
    groups = group_changes(changes, rows)
    result = {"from": old, "to": new, "count": len(changes), "summary": summarize(changes),
              "groups": [g.to_json() for g in groups],
              "markdown": to_markdown(changes, old, new, rows=rows),
              "decisions": sample.replay(engine, old, engine, new, sample.corpus(a))}
    if len(_CACHE) > 32:
        _CACHE.clear()
    _CACHE[key] = result
    return result
