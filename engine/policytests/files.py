"""Policy test case files (`rules/tests/*.yaml`): read, check against
`schemas/policytest.schema.json`, and expand `defaults` into runnable `Case`s.

Every problem in a case file is reported where it is (`file:line:column: /cases/3/expect: message`)
and all of them at once, as `CaseFileError`, so the policy team fixes a file in one pass. Running
the cases is `engine/policytest.py`; this module never calls the engine.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine.core.errors import EngineError, PolicyError
from engine.core.jsonschema_errors import YAML_WORDS, schema_problems
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.resources import read_schema
from engine.questions import Question

SCHEMA_FILE = "policytest.schema.json"
Positions = Mapping[str, tuple[int, int]]  # JSON pointer -> (line, column), 1-based


class CaseFileError(EngineError):
    """One or more case files are malformed; `diagnostics` locates every problem."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sort_diagnostics(diagnostics)
        super().__init__("invalid test case file:\n" + "\n".join(d.format() for d in self.diagnostics))

    def to_json(self) -> dict[str, Any]:
        return {"code": "CaseFileError", "message": "invalid test case file",
                "problems": [d.to_json() for d in self.diagnostics]}


@dataclass(frozen=True)
class Case:
    """One runnable case: defaults already merged in."""

    name: str
    file: str
    pointer: str  # `/cases/<i>` in its file
    kind: str  # decide | check | apply
    at: str
    ticket: dict[str, Any]
    expect: dict[str, Any]
    actor: str | None = None
    version: str | None = None  # None: the version in force at `at`
    action: str | None = None
    payload: dict[str, Any] | None = None
    answer: str | None = None
    reason: str | None = None  # apply: the buyer's rejection reason
    covers: tuple[str, ...] = ()
    known_issue: str | None = None  # the engine or policy is known to disagree with this case
    positions: Positions = field(default_factory=dict, repr=False, compare=False)

    def line(self, *keys: str) -> int:
        """Line of `expect/<keys...>` (or of the nearest enclosing item that has one)."""
        parts = [self.pointer, *keys]
        while parts:
            pointer = "/".join(parts)
            if pointer in self.positions:
                return self.positions[pointer][0]
            parts.pop()
        return 1

    def question(self) -> Question:
        """What this case asks the engine (under its own `version`, None: the one in force)."""
        if self.kind == "check":
            return Question.check(self.ticket, str(self.action), self.payload or {}, self.at, self.version)
        if self.kind == "apply":
            return Question.apply(self.ticket, str(self.answer), self.at, self.version, self.reason)
        return Question.decide(self.ticket, str(self.actor), self.at, self.version)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line()}"


# -- reading --------------------------------------------------------------------------------------

def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their `*.yaml`/`*.yml` files (sorted); keep files as given."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            out.append(path)
    return out


def load_cases(paths: Iterable[str | Path]) -> list[Case]:
    """Read every case file; return the cases in file order or raise `CaseFileError` with all problems."""
    problems: list[Diagnostic] = []
    cases: list[Case] = []
    for path in case_files(paths):
        file_cases, file_problems = _load_file(path)
        cases.extend(file_cases)
        problems.extend(file_problems)
    seen: dict[str, Case] = {}
    for case in cases:
        first = seen.setdefault(case.name, case)
        if first is not case:
            problems.append(_diag("duplicate_case_name", f"case name `{case.name}` is already used at {first.location}",
                                  case.file, case.positions, case.pointer + "/name"))
    if problems:
        raise CaseFileError(problems)
    return cases


def _load_file(path: Path) -> tuple[list[Case], list[Diagnostic]]:
    name = _shown(path)
    try:
        data, positions = _read_positioned(path)
    except PolicyError as exc:  # yamlsafe's located problems (syntax, size, duplicate keys...)
        return [], list(exc.diagnostics)
    errors = list(_validator().iter_errors(data))
    problems = [_diag(p.code, p.message, name, positions, p.path, p.hint)
                for err in errors for p in schema_problems(err, YAML_WORDS)]
    # Cases the schema found fine are still checked further, so one run reports everything;
    # a problem outside `cases` (defaults, the top level) stops here: no case could be built.
    broken = {err.absolute_path[1] for err in errors if len(err.absolute_path) >= 2 and err.absolute_path[0] == "cases"}
    if any(len(err.absolute_path) < 2 or err.absolute_path[0] != "cases" for err in errors):
        return [], problems
    defaults = data.get("defaults") or {}
    cases: list[Case] = []
    for index, raw in enumerate(data["cases"]):
        if index in broken:
            continue
        pointer = f"/cases/{index}"
        case, problem = _build_case(raw, defaults, name, pointer, positions)
        if case is not None:
            cases.append(case)
        if problem is not None:
            problems.append(problem)
    return (cases if not problems else []), problems


def _build_case(raw: dict[str, Any], defaults: dict[str, Any], file: str, pointer: str,
                positions: Positions) -> tuple[Case, None] | tuple[None, Diagnostic]:
    ticket = deep_merge(defaults.get("ticket") or {}, raw.get("ticket") or {})
    at = raw.get("at", defaults.get("at"))
    if at is None:
        return None, _diag("missing_at", "the case has no `at` (and the file no `defaults.at`)", file, positions, pointer)
    kind = "check" if "check" in raw else "apply" if "apply" in raw else "decide"
    if kind != "decide" and "actor" in raw:
        return None, _diag("actor_not_allowed", f"a {kind} case has no `actor` (the action or answer implies it)",
                           file, positions, pointer + "/actor")
    actor = raw.get("actor", defaults.get("actor")) if kind == "decide" else None
    if kind == "decide" and actor is None:
        return None, _diag("missing_actor", "a decision case needs `actor` (or `defaults.actor`)", file, positions, pointer)
    version = raw["version"] if "version" in raw else defaults.get("version")
    check = raw.get("check") or {}
    case = Case(
        name=raw["name"], file=file, pointer=pointer, kind=kind, at=at, ticket=ticket,
        expect=raw["expect"], actor=actor, version=version,
        action=check.get("action"), payload=check.get("payload", {}) if kind == "check" else None,
        answer=(raw.get("apply") or {}).get("answer"), reason=(raw.get("apply") or {}).get("reason"), covers=tuple(raw.get("covers", ())),
        known_issue=raw.get("known_issue"),
        positions={k: v for k, v in positions.items() if k == pointer or k.startswith(pointer + "/")},
    )
    return case, None


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; a null in `override` deletes the key; anything else replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _shown(path: Path) -> str:
    """The path as people wrote it, or relative to the working directory when it lies below it."""
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- YAML with positions ----------------------------------------------------------------------------

def _read_positioned(path: Path) -> tuple[Any, Positions]:
    """The document and a JSON pointer -> (line, column) map, read by the policy loader's
    `engine.yamlsafe` (size limit, alias bound, duplicate keys refused, dates kept as strings)."""
    from engine.policy.yamlsafe import load_yaml

    data, positions = load_yaml(path, _shown(path))
    # Point at the key (`denied:`), not at its value, when there is one: that is where people look.
    located = dict(positions)
    located.update(getattr(positions, "key_marks", {}))
    return data, located


# -- schema ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(read_schema(SCHEMA_FILE)))


def _diag(code: str, message: str, file: str, positions: Positions, pointer: str,
          hint: str | None = None) -> Diagnostic:
    probe = pointer
    while probe and probe not in positions:
        probe = probe.rsplit("/", 1)[0]
    line, column = positions.get(probe, (1, 1))
    return Diagnostic(code, message, file, line, column, pointer, hint)
