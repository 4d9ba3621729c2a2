"""The versions of a rules directory as raw documents, for diff, changelog and versions.

These commands compare what the policy files *say*, so they read the YAML (through the safe,
positioned loader) rather than building an Engine: a diff between two files needs no compiler, and
a file path outside the bundle (a draft) can be diffed against a bundled version.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.policy.bundle import policy_files
from engine.core.problems import Diagnostic
from engine.core.errors import PolicyError, UnknownVersionError
from engine.core.resources import default_rules_dir
from engine.core.timeutil import parse_aware
from engine.pipeline.stages import load
from engine.policy.yamlsafe import Positions


@dataclass(frozen=True)
class VersionDocument:
    version: str  # the document's `version` (the file stem when the document lacks one)
    path: Path
    data: dict[str, Any]
    positions: Positions
    effective_from: datetime | None

    @property
    def changes(self) -> list[dict[str, Any]]:
        declared = self.data.get("changes")
        return [c for c in declared if isinstance(c, dict)] if isinstance(declared, list) else []


def load_version(path: Path) -> VersionDocument:
    """One policy file, parsed (cached while the file's size and mtime are unchanged: the
    positioned loader is pure Python and diff/changelog/versions read every version)."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is None:
        return _load_version(path)
    return copy.deepcopy(_load_cached(path, key))


@functools.lru_cache(maxsize=32)
def _load_cached(path: Path, key: tuple[Any, ...]) -> VersionDocument:
    return _load_version(path)


def _load_version(path: Path) -> VersionDocument:
    # the pipeline's `load` stage (safe YAML, positions, size limit), without its checks: a draft
    # being diffed may not be a valid policy yet
    read = load([path])
    if read.problems:
        raise PolicyError(read.problems)
    data, positions = read.documents[0].data, read.documents[0].positions
    if not isinstance(data, dict):
        raise PolicyError([Diagnostic("not_a_mapping", "a policy file must be a mapping", str(path), 1, 1, "")])
    version = str(data["version"]) if isinstance(data.get("version"), str) else path.stem
    effective = None
    raw = data.get("effective_from")
    if isinstance(raw, str):
        try:
            effective = parse_aware(raw)
        except ValueError as exc:
            line, column = positions.nearest("/effective_from")
            raise PolicyError([Diagnostic("bad_time", f"`effective_from`: {exc}", str(path),
                                          line, column, "/effective_from")]) from None
    return VersionDocument(version, path, data, positions, effective)


def load_versions(rules_dir: str | Path | None = None) -> list[VersionDocument]:
    """Every version of a rules directory, oldest first (by `effective_from`, then name)."""
    directory = Path(rules_dir) if rules_dir else default_rules_dir()
    if not directory.is_dir():
        raise PolicyError([Diagnostic("no_rules_dir", f"`{directory}` is not a directory", str(directory), 1, 1, "")])
    docs = [load_version(p) for p in policy_files(directory)]
    return sorted(docs, key=lambda d: (d.effective_from.timestamp() if d.effective_from else 0.0, d.version))


def resolve(name: str, rules_dir: str | Path | None = None) -> VersionDocument:
    """A version name of the rules directory (`2024-03-22`) or a path to a policy file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return load_version(candidate)
    directory = Path(rules_dir) if rules_dir else default_rules_dir()
    bundled = directory / f"{name}.yaml"
    if bundled.is_file():
        return load_version(bundled)
    known = [p.stem for p in policy_files(directory)] if directory.is_dir() else []
    raise UnknownVersionError(name, known)


def adjacent_pairs(docs: list[VersionDocument]) -> list[tuple[VersionDocument, VersionDocument]]:
    return list(zip(docs, docs[1:]))
