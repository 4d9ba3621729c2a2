"""One way to ask a case: a `Question` (decide / check / apply, with its ticket, time and version)
and `ask(engine, question)`, for any `EngineLike`.

`EngineLike` is the surface every front end relies on: the in-process `engine.api.Engine` and the
HTTP client `engine.policytests.http.HttpEngine` both provide it (mypy checks both in
`engine.policytests.runner`), so one corpus of cases runs in process, from the CLI and against a
running service alike. The policy-test runner, the regression check and the impact replay all ask
through `ask`; none calls `decide`/`check`/`apply` on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Mapping, Protocol, Sequence, runtime_checkable

from engine.decisions.results import as_json

Kind = Literal["decide", "check", "apply"]
When = datetime | str | None
Answer = Any  # what the engine answers: a typed result in process (engine/decisions/results.py), its JSON over HTTP


@runtime_checkable
class EngineLike(Protocol):
    """The three questions and the versions they can be asked under."""

    def decide(self, ticket: dict[str, Any], actor: str, at: When = None,
               version: str | None = None) -> Answer: ...

    def check(self, ticket: dict[str, Any], action: str, payload: dict[str, Any] | None = None,
              at: When = None, version: str | None = None) -> Answer: ...

    def apply(self, ticket: dict[str, Any], answer: str, at: When = None,
              version: str | None = None, reason: str | None = None) -> Answer: ...

    def versions(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Question:
    """One question to the engine. `version` None: the version in force at `at`."""

    kind: Kind
    ticket: Mapping[str, Any] = field(repr=False)
    at: When = None
    version: str | None = None
    actor: str | None = None  # decide
    action: str | None = None  # check
    payload: Mapping[str, Any] | None = field(default=None, repr=False)  # check
    answer: str | None = None  # apply: accept | reject | timeout
    reason: str | None = None  # apply: the buyer's rejection reason (三-3.2.1)

    @classmethod
    def decide(cls, ticket: Mapping[str, Any], actor: str, at: When = None,
               version: str | None = None) -> "Question":
        return cls("decide", ticket, at, version, actor=actor)

    @classmethod
    def check(cls, ticket: Mapping[str, Any], action: str, payload: Mapping[str, Any] | None = None,
              at: When = None, version: str | None = None) -> "Question":
        return cls("check", ticket, at, version, action=action, payload=payload)

    @classmethod
    def apply(cls, ticket: Mapping[str, Any], answer: str, at: When = None,
              version: str | None = None, reason: str | None = None) -> "Question":
        return cls("apply", ticket, at, version, answer=answer, reason=reason)

    def under(self, version: str | None) -> "Question":
        """The same question pinned to another version (None: the one in force)."""
        return replace(self, version=version)


def ask(engine: EngineLike, question: Question) -> Answer:
    """The engine's answer to `question`; raises what the engine raises (EngineError on bad input).

    The ticket and payload are passed as they are, not copied: an engine never changes its inputs
    (tests/test_questions.py holds `Engine` to that), so one question can be asked many times,
    under several versions, and the impact replay pays nothing for asking through here (a deep
    copy costs ~8% of a decision: 37 µs against 440 µs, measured on the pending-proposal example)."""
    ticket = question.ticket if isinstance(question.ticket, dict) else dict(question.ticket)
    if question.kind == "check":
        payload = question.payload if isinstance(question.payload, dict) else dict(question.payload or {})
        answer = engine.check(ticket, str(question.action), payload, at=question.at, version=question.version)
    elif question.kind == "apply":
        answer = engine.apply(ticket, str(question.answer), at=question.at, version=question.version,
                              reason=question.reason)
    else:
        answer = engine.decide(ticket, str(question.actor), at=question.at, version=question.version)
    return as_json(answer)  # the in-process engine's typed result as the JSON the HTTP client gets
