"""What a hot reload need not redo: the per-document half of load → check, remembered per file
content.

A reload after one policy file changed used to parse and check every file again (and the
engine build compiled and cross-checked every version again: engine/api.py `Engine(reuse=)`).
A `DocumentMemo` keeps, per (file name, sha256 of its bytes) — `PolicyDocument.key` — the parsed
document and what the document checks (schema, meaning) said about it. A file whose bytes did not
change is neither parsed nor checked again; the checks that compare versions (`check_bundle`:
duplicates, order, declared changes) always run on the whole bundle, since any version beside
them may have changed. A document checked anew here takes the schema's fast path (a compiled
validator first, the full error listing only if it refuses: engine/policy/checks/schema.py), since
a long-lived process wins back its one-time compile at the next reload. Only successes of parsing are kept (a file that does not parse is read
again next time); check results are kept whatever they say (they depend on the bytes alone).

One memo per process and per rules directory (the supervisor's, or a single worker's holder);
it keeps what the last two loads saw, so memory stays bounded however many reloads happen, and a
reload back to the version in force after a refused edit still finds it. Not thread-safe: the
service runs one reload at a time (engine/service/reload.py, generations.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from engine.core.problems import Diagnostic
from engine.policy.bundle import Bundle, PolicyDocument, load_directory

Key = tuple[str, str]


@dataclass
class MemoStats:
    """Counts of the last load (tests and logs read them): documents parsed / checked anew, and
    reused from an earlier load."""

    parsed: int = 0
    parse_reused: int = 0
    checked: int = 0
    check_reused: int = 0


class DocumentMemo:
    def __init__(self) -> None:
        self._parsed: dict[Key, PolicyDocument] = {}
        self._checked: dict[Key, tuple[str, list[Diagnostic]]] = {}   # key → (file name used, problems)
        self._seen: set[Key] = set()          # keys the load in progress met
        self._previous: set[Key] = set()      # keys the load before it met
        self.stats = MemoStats()

    def load_directory(self, path: str | os.PathLike[str]) -> Bundle:
        """`bundle.load_directory` with this memo; raises PolicyError the same way."""
        self._begin()
        try:
            return load_directory(path, memo=self)
        finally:
            self._end()

    # -- the hooks read_documents / check_documents call --------------------------------------------

    def parsed(self, path: Path, name: str, digest: str) -> PolicyDocument | None:
        key = (path.name, digest)
        self._seen.add(key)
        document = self._parsed.get(key)
        if document is None:
            return None
        self.stats.parse_reused += 1
        if (document.path, document.file) != (path, name):   # same bytes, another snapshot directory
            document = replace(document, path=path, file=name)
        return document

    def remember_parsed(self, document: PolicyDocument) -> None:
        self.stats.parsed += 1
        if document.digest:
            self._parsed[document.key] = document
            self._seen.add(document.key)

    def checked(self, document: PolicyDocument) -> list[Diagnostic]:
        from engine.policy.checks import check_document

        cached = self._checked.get(document.key) if document.digest else None
        if cached is None:
            self.stats.checked += 1
            problems = check_document(document, fast_schema=True)
            if document.digest:
                self._checked[document.key] = (document.file, problems)
            return list(problems)
        self.stats.check_reused += 1
        file, problems = cached
        if file == document.file:
            return list(problems)
        return [replace(p, file=document.file) if p.file == file else p for p in problems]

    # -- bounds -----------------------------------------------------------------------------------------

    def _begin(self) -> None:
        self.stats = MemoStats()
        self._seen = set()

    def _end(self) -> None:
        keep = self._seen | self._previous
        for table in (self._parsed, self._checked):
            for key in [k for k in table if k not in keep]:
                del table[key]
        self._previous = self._seen
