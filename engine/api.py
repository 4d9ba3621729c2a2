"""The public facade: load a policy bundle once, answer many questions.

    from engine import Engine
    eng = Engine.from_directory("rules")
    eng.decide(ticket, "merchant", at="2024-06-01T12:00:00+08:00")

An `Engine` is immutable once built: hot reload (the service) builds a new one beside the old and
swaps the reference, so no caller ever sees half a reload.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from engine.decisions import apply as apply_mod
from engine.decisions import check as check_mod
from engine.decisions import decide as decide_mod
from engine.policy.bundle import Bundle, load_directory, load_files
from engine.rules.compile import CompiledPolicy
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.errors import NoVersionError, PolicyError, TicketError, UnknownActionError, UnknownVersionError
from engine.policy.model import Policy
from engine.core.resources import default_rules_dir
from engine.pipeline.stages import CROSSCHECK_FACTS, ENGINE_CROSSCHECK_FACTS, compile_document, verify
from engine.decisions.ticket import parse_time, reference_problems, validate_ticket
from engine.core.timeutil import iso, now as wall_clock, parse_aware

ACTORS = ("merchant", "buyer")
ANSWERS = ("accept", "reject", "timeout")


@dataclass(frozen=True)
class VersionInfo:
    version: str
    effective_from: datetime
    effective_until: datetime | None  # the next version's effective_from; None for the newest

    def to_json(self, at: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "effective_from": iso(self.effective_from),
            "effective_until": iso(self.effective_until),
        }
        if at is not None:
            out["in_force"] = self.effective_from <= at and (self.effective_until is None or at < self.effective_until)
            out["scheduled"] = self.effective_from > at
        return out


class Engine:
    def __init__(self, bundle: Bundle, crosscheck_facts: int = ENGINE_CROSSCHECK_FACTS) -> None:
        """Build every version of a loaded bundle: compile it, create its durable rulesets, cross-
        check them against the plain evaluator and prove its outcome rules complete
        (engine/selfcheck.py). Raises PolicyError, holding no engine state, if any version fails."""
        self.bundle = bundle
        self.bundle_hash: str = bundle.content_hash
        self._policies: dict[str, Policy] = {}
        self._compiled: dict[str, CompiledPolicy] = {}
        problems = []
        try:
            for document in bundle.documents:
                policy = Policy.from_document(document.data)
                self._policies[policy.version] = policy
                # The durable rulesets are created now: a version durable_rules refuses fails the
                # build (so a reload is refused before the swap), never a live request.
                compiled = self._compiled[policy.version] = compile_document(document)
                problems += verify(document, policy, compiled, crosscheck_facts)
            if problems:
                raise PolicyError(sort_diagnostics(problems))
        except BaseException:
            self.close()  # the versions opened so far: a failed build holds no engine state
            raise
        ordered = sorted(self._policies.values(), key=lambda p: p.effective_from)
        self._order = [p.version for p in ordered]
        self._starts = [p.effective_from.timestamp() for p in ordered]

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_directory(cls, path: str | Path | None = None) -> "Engine":
        return cls(load_directory(Path(path) if path else default_rules_dir()))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> "Engine":
        return cls(load_files([Path(p) for p in paths]))

    def close(self) -> None:
        """Release the durable_rules rulesets (after the last request using this engine)."""
        for compiled in self._compiled.values():
            compiled.close()

    # -- versions --------------------------------------------------------------------------------
    def versions(self) -> list[VersionInfo]:
        out = []
        for i, version in enumerate(self._order):
            until = self._policies[self._order[i + 1]].effective_from if i + 1 < len(self._order) else None
            out.append(VersionInfo(version, self._policies[version].effective_from, until))
        return out

    def version_at(self, at: datetime | str | None = None) -> str:
        when = self._resolve_at(at)
        index = bisect.bisect_right(self._starts, when.timestamp()) - 1
        if index < 0:
            raise NoVersionError(iso(when), iso(self._policies[self._order[0]].effective_from))
        return self._order[index]

    def policy(self, version: str) -> Policy:
        try:
            return self._policies[version]
        except KeyError:
            raise UnknownVersionError(version, self._order) from None

    def compiled(self, version: str) -> CompiledPolicy:
        self.policy(version)
        return self._compiled[version]

    def document(self, version: str) -> dict[str, Any]:
        return dict(self.policy(version).raw)

    # -- the three questions -----------------------------------------------------------------------
    def decide(self, ticket: dict, actor: str, at: datetime | str | None = None,
               version: str | None = None) -> dict[str, Any]:
        if actor not in ACTORS:
            raise UnknownActionError("actor", str(actor), list(ACTORS))
        when, policy, compiled, clean = self._prepare(ticket, at, version)
        return decide_mod.decide(policy, compiled, clean, actor, when)

    def check(self, ticket: dict, action: str, payload: dict | None = None,
              at: datetime | str | None = None, version: str | None = None) -> dict[str, Any]:
        when, policy, compiled, clean = self._prepare(ticket, at, version)
        return check_mod.check(policy, compiled, clean, action, {} if payload is None else payload, when)

    def apply(self, ticket: dict, answer: str, at: datetime | str | None = None,
              version: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """`reason`: the buyer's rejection reason; a rejection needs one (三-3.2.1)."""
        if answer not in ANSWERS:
            raise UnknownActionError("answer", str(answer), list(ANSWERS))
        when, policy, compiled, clean = self._prepare(ticket, at, version)
        return apply_mod.apply(policy, compiled, clean, answer, when, reason)

    # -- helpers ---------------------------------------------------------------------------------
    def _prepare(self, ticket: dict, at, version):
        when = self._resolve_at(at)
        chosen = version if version is not None else self.version_at(when)
        policy = self.policy(chosen)
        clean = validate_ticket(ticket)
        problems = reference_problems(policy, clean)
        if problems:
            raise TicketError(problems)
        if version is None:  # a pinned version answers entirely as that version says, window included
            clean = self._with_response_deadline(clean, policy)
        return when, policy, self._compiled[chosen], clean

    def _with_response_deadline(self, ticket: dict, deciding: Policy) -> dict:
        """A pending proposal keeps the buyer window of the version in force when it was made
        (24 h before 2024-03-11, 48 h after, 二-2.1-(2)), whichever version is in force when the
        question is asked. This is an interpretation: the guide gives the windows, not what happens
        to a proposal pending across the change (docs/policy-notes.md). Returns a copy with
        `respond_by` set; the caller's ticket is untouched."""
        pending = (ticket.get("negotiation") or {}).get("pending")
        if not pending or pending.get("respond_by"):
            return ticket
        proposed_at = parse_aware(pending["proposed_at"])
        try:
            window = self.policy(self.version_at(proposed_at)).timeouts.buyer_response_hours
        except NoVersionError:  # proposed before the first version: the deciding one is all we have
            window = deciding.timeouts.buyer_response_hours
        respond_by = iso(int(proposed_at.timestamp()) + window * 3600)
        return {**ticket, "negotiation": {**ticket["negotiation"], "pending": {**pending, "respond_by": respond_by}}}

    @staticmethod
    def _resolve_at(at: datetime | str | None) -> datetime:
        if at is None:
            return wall_clock()
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise TicketError([{"path": "/at", "code": "naive_time",
                                    "message": "`at` has no UTC offset"}])
            return at
        return parse_time(at, "/at")  # the ticket's time rules: same codes as over HTTP


def engine_builds(bundle: Bundle) -> list[Diagnostic]:
    """`aftersale validate`'s check past loading: exactly what the service does before it serves a
    bundle (build an Engine), with a larger cross-check."""
    try:
        Engine(bundle, crosscheck_facts=CROSSCHECK_FACTS).close()
    except PolicyError as exc:
        return exc.diagnostics
    return []
