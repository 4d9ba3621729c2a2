"""Load a directory of policy versions into a validated `Bundle`, or fail with every problem.

`load_directory("rules")` reads each `*.yaml` at the top level of the directory (policy tests in
`rules/tests/` are not policies), parses it safely (`engine/yamlsafe.py`), checks it
(`engine/checks`: schema, then meaning), then checks the versions together. It collects problems
from all files before raising one `PolicyError` with the diagnostics sorted by file and line, so a
policy author fixes everything in one round.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from engine.core.problems import ERROR, Diagnostic, sort_diagnostics
from engine.core.errors import PolicyError
from engine.policy.yamlsafe import Positions, load_yaml, read_limited

if TYPE_CHECKING:
    from engine.policy.memo import DocumentMemo

POLICY_SUFFIX = ".yaml"


@dataclass(frozen=True)
class PolicyDocument:
    """One parsed policy file. `data` is the plain dict (JSON types), `positions` where each
    JSON pointer was written, `file` the name diagnostics use (the path as the caller gave it)."""

    version: str
    path: Path
    data: Any
    positions: Positions = field(repr=False)
    file: str = ""
    digest: str = field(default="", compare=False)  # sha256 (hex) of the file's bytes

    @property
    def key(self) -> tuple[str, str]:
        """(file name, sha256 of its bytes): what the reload caches key on. Two documents with the
        same key check and build the same: nothing outside the bytes matters but the file name
        (the version must match its stem), and diagnostics name the file as the caller gave it."""
        return (self.path.name, self.digest)

    @property
    def effective_from(self) -> datetime | None:
        """Parsed `effective_from`, None if absent or malformed (a check reports that)."""
        from engine.core.timeutil import parse_aware

        try:
            return parse_aware(self.data.get("effective_from"))
        except (AttributeError, ValueError, TypeError):
            return None

    def locate(self, pointer: str, at_key: bool = False) -> tuple[int, int]:
        return locate(self, pointer, at_key)

    def data_at(self, pointer: str) -> Any:
        """The value at a JSON pointer, None if there is none."""
        node = self.data
        for token in [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]:
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node

    def diagnostic(self, code: str, pointer: str, message: str, hint: str | None = None,
                   at_key: bool = False, severity: str = ERROR) -> Diagnostic:
        """A Diagnostic located at `pointer` (at its key with `at_key`; a pointer that does not
        exist is located at its closest existing ancestor)."""
        line, column = locate(self, pointer, at_key)
        return Diagnostic(code, message, self.file, line, column, pointer, hint, severity)


@dataclass(frozen=True)
class Bundle:
    """Every version, valid, sorted by effective_from; `content_hash` identifies the exact bytes."""

    documents: list[PolicyDocument]
    content_hash: str
    root: Path | None = None
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def versions(self) -> list[str]:
        return [d.version for d in self.documents]

    def document(self, version: str) -> PolicyDocument | None:
        return next((d for d in self.documents if d.version == version), None)


def locate(document: PolicyDocument, path: str, at_key: bool = False) -> tuple[int, int]:
    """(line, column), 1-based, of a JSON pointer in the document; a missing pointer resolves to
    its closest existing ancestor. `at_key`: where the mapping key was written, not its value."""
    return document.positions.nearest(path, at_key)


def policy_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The policy files of a directory: `*.yaml` at its top level, sorted by name."""
    base = Path(directory)
    return sorted((p for p in base.iterdir() if p.is_file() and p.name.endswith(POLICY_SUFFIX)),
                  key=lambda p: p.name)


def load_directory(path: str | os.PathLike[str], memo: DocumentMemo | None = None) -> Bundle:
    """Load and validate every policy version in a directory. Raises PolicyError. `memo`: see
    read_documents / check_documents."""
    base = Path(path)
    if not base.is_dir():
        raise PolicyError([Diagnostic("not_found", "no such directory", str(path), 1, 1, "")])
    files = policy_files(base)
    if not files:
        raise PolicyError([Diagnostic("no_policy_files", f"no `*{POLICY_SUFFIX}` policy files in the directory",
                                      str(path), 1, 1, "")])
    return load_files(files, root=base, memo=memo)


def load_files(paths: Iterable[str | os.PathLike[str]], root: Path | None = None,
               memo: DocumentMemo | None = None) -> Bundle:
    """Load and validate the given policy files as one bundle. Raises PolicyError with every
    diagnostic of every file (and, if all files are valid, of the bundle checks), sorted.
    The pipeline's first two stages (engine/pipeline/stages.py): `read_documents`, `check_documents`."""
    return check_documents(read_documents(paths, memo), root, memo)


@dataclass
class ReadDocuments:
    """Files parsed (safe YAML, with positions), not yet checked."""

    documents: list[PolicyDocument]
    contents: dict[str, bytes]
    problems: list[Diagnostic]


def read_documents(paths: Iterable[str | os.PathLike[str]], memo: DocumentMemo | None = None) -> ReadDocuments:
    """Stage `load`: parse each file; a file that cannot be read or parsed is a problem, not a raise.
    With a `memo` (hot reload, engine/policy/memo.py), a file whose bytes it has parsed before is
    not parsed again."""
    read = ReadDocuments([], {}, [])
    for raw_path in paths:
        path = Path(raw_path)
        name = str(raw_path)
        try:
            data_bytes = read_limited(path, name)
            digest = hashlib.sha256(data_bytes).hexdigest()
            document = memo.parsed(path, name, digest) if memo is not None else None
            if document is None:
                data, positions = load_yaml(data_bytes, name)
                version = data.get("version") if isinstance(data, dict) else None
                document = PolicyDocument(str(version) if version is not None else path.stem, path, data,
                                          positions, name, digest)
                if memo is not None:
                    memo.remember_parsed(document)
        except PolicyError as exc:
            read.problems.extend(exc.diagnostics)
            continue
        read.documents.append(document)
        read.contents[path.name] = data_bytes
    return read


def check_documents(read: ReadDocuments, root: Path | None = None, memo: DocumentMemo | None = None) -> Bundle:
    """Stage `check`: every document on its own (schema, then meaning), then the versions together.
    Raises PolicyError with every error, sorted; warnings stay on the bundle. With a `memo`, a
    document whose bytes it checked before is not checked again; the versions-together checks
    always run (they compare versions, any of which may have changed)."""
    from engine.policy.checks import check_bundle, check_document

    problems = list(read.problems)
    for document in read.documents:
        problems.extend(memo.checked(document) if memo is not None else check_document(document))
    if not read.documents and not problems:
        raise PolicyError([Diagnostic("no_policy_files", "no policy files given", str(root or "."), 1, 1, "")])

    bundle = Bundle(documents=sorted(read.documents, key=_chronological), content_hash=content_hash(read.contents),
                    root=root)
    if not _errors(problems):
        problems.extend(check_bundle(bundle))
    if _errors(problems):
        raise PolicyError(sort_diagnostics(problems))
    bundle.warnings.extend(sort_diagnostics(problems))
    return bundle


def load_document(path: str | os.PathLike[str]) -> PolicyDocument:
    """One policy file, parsed and checked on its own (no bundle checks). Raises PolicyError."""
    return load_files([path]).documents[0]


def content_hash(contents: dict[str, bytes]) -> str:
    """sha256, hex, over the files sorted by name: for each, its name, NUL, its byte length, NUL,
    its bytes. (Lengths make the framing unambiguous.)"""
    digest = hashlib.sha256()
    for name in sorted(contents):
        body = contents[name]
        digest.update(name.encode("utf-8") + b"\0" + str(len(body)).encode("ascii") + b"\0")
        digest.update(body)
    return digest.hexdigest()


def _chronological(document: PolicyDocument) -> tuple[Any, ...]:
    moment = document.effective_from
    return (moment.timestamp() if moment else float("inf"), document.path.name)


def _errors(problems: list[Diagnostic]) -> bool:
    return any(p.severity == ERROR for p in problems)
