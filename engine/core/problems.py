"""The one type for everything a caller or the policy team can get wrong.

`Problem(code, message, path, hint)` is a finding about some input: a ticket, an action payload, a
request body, a policy or test-case file. `Diagnostic` is a Problem located in a file (file, line,
column) with a severity: what the policy loaders and checks report, so a caller can collect the
problems of all stages, sort them by location and show them in one run (like a compiler does).

Every `code` is listed once, with what it means, in `engine.core.codes` (docs/problems.md is
that list for people). Paths are JSON pointers with list indexes (`/rules/3/when/all/0`), because
the input may be invalid and its items may lack ids; lines and columns are 1-based. A problem
found inside a part of a larger document is re-rooted with `problem.under(("ticket",))`, never by
editing the pointer text.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

ERROR = "error"
WARNING = "warning"

PathPart = str | int


def pointer(parts: Iterable[PathPart]) -> str:
    """The JSON pointer (RFC 6901) of a sequence of keys and list indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True, order=True)
class Problem:
    code: str  # stable, snake_case, listed in engine.core.codes
    message: str  # lowercase, no final period, user input in backticks
    path: str = ""  # JSON pointer into the input; "" is the whole input
    hint: str | None = None  # how to fix it, when we can tell

    @classmethod
    def at(cls, parts: Iterable[PathPart], code: str, message: str, hint: str | None = None) -> "Problem":
        return cls(code, message, pointer(parts), hint)

    def under(self, parts: Sequence[PathPart]) -> "Problem":
        """The same problem seen from a document that holds this input at `parts`."""
        return replace(self, path=pointer(parts) + self.path)

    def relative_to(self, parts: Sequence[PathPart]) -> "Problem | None":
        """The inverse of `under`: this problem as seen from the input at `parts`, or None when
        it lies outside it."""
        prefix = pointer(parts)
        if self.path == prefix or self.path.startswith(prefix + "/"):
            return replace(self, path=self.path[len(prefix):])
        return None

    def located(self, file: str, line: int, column: int, severity: str = ERROR) -> "Diagnostic":
        return Diagnostic(self.code, self.message, file, line, column, self.path, self.hint, severity)

    def format(self) -> str:
        """`path: message` (the message alone for the whole input), plus ` (hint: ...)`."""
        text = f"{self.path}: {self.message}" if self.path else self.message
        return text + (f" (hint: {self.hint})" if self.hint else "")

    def to_json(self) -> dict[str, Any]:
        """The wire form: {path, code, message} and `hint` when there is one."""
        out: dict[str, Any] = {"path": self.path, "code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Problem":
        """Read the wire form back (an HTTP error body's `problems`)."""
        hint = data.get("hint")
        return cls(str(data.get("code") or "invalid"), str(data.get("message") or ""),
                   str(data.get("path") or ""), str(hint) if hint else None)


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """Sorted by path, each problem once (one problem found by two checks is one problem)."""
    return sorted(set(problems), key=lambda p: (p.path, p.code, p.message, p.hint or ""))


@dataclass(frozen=True)
class Diagnostic:
    """A Problem in a file: the policy loaders' and checks' finding, with where to look."""

    code: str
    message: str
    file: str
    line: int
    column: int
    path: str  # JSON pointer into the document; "" is the whole document
    hint: str | None = None
    severity: str = ERROR

    @property
    def problem(self) -> Problem:
        return Problem(self.code, self.message, self.path, self.hint)

    def format(self) -> str:
        """`file:line:column: path: message` (plus ` (hint: ...)`), one line."""
        text = f"{self.file}:{self.line}:{self.column}: {self.path or '/'}: {self.message}"
        if self.severity != ERROR:
            text = f"{self.file}:{self.line}:{self.column}: {self.path or '/'}: {self.severity}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "file": self.file, "line": self.line,
                "column": self.column, "path": self.path, "hint": self.hint, "severity": self.severity}

    def sort_key(self) -> tuple[str, int, int, str, str, str]:
        return (self.file, self.line, self.column, self.path, self.code, self.message)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Diagnostic):
            return NotImplemented
        return self.sort_key() < other.sort_key()


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by (file, line, column), duplicates (same code, place and message) dropped."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == ERROR for d in diagnostics)


__all__ = ["Problem", "Diagnostic", "ERROR", "WARNING", "pointer", "unique", "sort_diagnostics", "has_errors"]
