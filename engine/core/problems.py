"""One finding about a policy file: what is wrong, where (file, line, column, document path), and
optionally how to fix it. Every loader and check reports through this type, so a caller can collect
problems from all stages, sort them by location and show them in one run (like a compiler does).

Paths are JSON pointers with list indexes (`/rules/3/when/all/0`), because the document may be
invalid and its items may lack ids; lines and columns are 1-based.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    code: str  # stable, snake_case: `yaml_syntax`, `unknown_key`, `unknown_reference`, ...
    message: str  # lowercase, no final period, user input in backticks
    file: str
    line: int
    column: int
    path: str  # JSON pointer into the document; "" is the whole document
    hint: str | None = None
    severity: str = ERROR

    def format(self) -> str:
        """`file:line:column: path: message` (plus ` (hint: ...)`), one line."""
        text = f"{self.file}:{self.line}:{self.column}: {self.path or '/'}: {self.message}"
        if self.severity != ERROR:
            text = f"{self.file}:{self.line}:{self.column}: {self.path or '/'}: {self.severity}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def to_json(self) -> dict:
        return asdict(self)

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.path, self.code, self.message)

    def __lt__(self, other: "Diagnostic") -> bool:
        if not isinstance(other, Diagnostic):
            return NotImplemented
        return self.sort_key() < other.sort_key()


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by (file, line, column), duplicates (same code, place and message) dropped."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == ERROR for d in diagnostics)


# The exception that carries diagnostics lives with the other engine errors; re-exported here
# because docs/design.md lists it with the Diagnostic type.
from engine.core.errors import PolicyError  # noqa: E402

__all__ = ["Diagnostic", "PolicyError", "ERROR", "WARNING", "sort_diagnostics", "has_errors"]
