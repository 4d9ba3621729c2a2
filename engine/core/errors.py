"""The exceptions the public API raises. Every one carries data a caller can act on, and a
message fit for a person; the CLI and the service print the message, never a traceback."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from engine.core.problems import Diagnostic, Problem


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1

    def to_json(self) -> dict[str, Any]:
        return {"code": type(self).__name__, "message": str(self)}


class PolicyError(EngineError):
    """The policy (one file or a bundle) failed validation; `diagnostics` holds every problem."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics) or "invalid policy")

    def to_json(self) -> dict[str, Any]:
        return {"code": "PolicyError", "message": "invalid policy",
                "problems": [d.to_json() for d in self.diagnostics]}


class InputError(EngineError):
    """Bad input from a caller; `problems` lists every `Problem` found, each once, by path."""

    def __init__(self, problems: Iterable[Problem | Mapping[str, Any]], summary: str = "invalid input") -> None:
        # A Mapping is the wire form ({path, code, message}), e.g. read back from an HTTP answer.
        # Each problem once (two checks may find the same), in the order found.
        self.problems: list[Problem] = list(dict.fromkeys(
            p if isinstance(p, Problem) else Problem.from_json(p) for p in problems))
        self.summary = summary
        lines = [p.format() for p in self.problems]
        super().__init__(summary + (":\n" + "\n".join(lines) if lines else ""))

    def under(self, parts: Sequence[str | int]) -> list[Problem]:
        """The problems as seen from a document holding this input at `parts`."""
        return [p.under(parts) for p in self.problems]

    def to_json(self) -> dict[str, Any]:
        return {"code": type(self).__name__, "message": self.summary,
                "problems": [p.to_json() for p in self.problems]}


class TicketError(InputError):
    """The ticket facts failed `schemas/ticket.schema.json` or a check past it."""

    def __init__(self, problems: Iterable[Problem | Mapping[str, Any]]) -> None:
        super().__init__(problems, "invalid ticket")


class PayloadError(InputError):
    """An action payload is malformed (not merely in violation of the policy)."""

    def __init__(self, problems: Iterable[Problem | Mapping[str, Any]]) -> None:
        super().__init__(problems, "invalid payload")


class UnknownVersionError(EngineError):
    def __init__(self, version: str, known: list[str]) -> None:
        self.version = version
        super().__init__(f"unknown policy version `{version}` (known: {', '.join(known)})")


class NoVersionError(EngineError):
    def __init__(self, at: str | None, first: str | None) -> None:
        super().__init__(f"no policy version is in force at {at}: the first takes effect {first}")


class UnknownActionError(EngineError):
    def __init__(self, what: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {what} `{name}` (known: {', '.join(known)})")
