"""The public facade: load a policy bundle once, answer many questions.

    from engine import Engine
    eng = Engine.from_directory("rules")
    eng.decide(ticket, "merchant", at="2024-06-01T12:00:00+08:00")

An `Engine` is immutable once built: hot reload (the service) builds a new one beside the old and
swaps the reference, so no caller ever sees half a reload.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine.core.errors import NoVersionError, PolicyError, TicketError, UnknownActionError, UnknownVersionError
from engine.core.problems import Diagnostic, sort_diagnostics
from engine.core.resources import default_rules_dir
from engine.core.timeutil import iso
from engine.core.timeutil import now as wall_clock
from engine.decisions import apply as apply_mod
from engine.decisions import check as check_mod
from engine.decisions import decide as decide_mod
from engine.decisions.prepared import PreparedVersion
from engine.decisions.results import ApplyResult, CheckResult, Decision
from engine.decisions.situation import Situation, make_situation
from engine.decisions.ticket import parse_time
from engine.pipeline.stages import CROSSCHECK_FACTS, ENGINE_CROSSCHECK_FACTS, build_bundle, build_version
from engine.policy.bundle import Bundle, PolicyDocument, load_directory
from engine.policy.memo import DocumentMemo
from engine.policy.model import Policy
from engine.rules.compile import CompiledPolicy

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


class _Shares:
    """How many engines of this process hold each PreparedVersion. An engine built with `reuse=`
    takes the unchanged versions of an older one instead of building them again; their durable
    rulesets are this process's C state, so they are shared between engines of one process only
    (a bundle crosses processes as data and every process builds its own) and closed when the
    last engine holding them closes. A lock: engines are built in a thread while the event loop
    closes retired ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, tuple[PreparedVersion, int]] = {}

    def hold_new(self, prepared: PreparedVersion) -> None:
        with self._lock:
            self._held[id(prepared)] = (prepared, 1)

    def acquire(self, prepared: PreparedVersion) -> bool:
        """One more holder; False if it was released meanwhile (its rulesets are closed)."""
        with self._lock:
            entry = self._held.get(id(prepared))
            if entry is None or entry[0] is not prepared:
                return False
            self._held[id(prepared)] = (prepared, entry[1] + 1)
            return True

    def release(self, prepared: PreparedVersion) -> None:
        with self._lock:
            entry = self._held.get(id(prepared))
            if entry is not None and entry[0] is prepared and entry[1] > 1:
                self._held[id(prepared)] = (prepared, entry[1] - 1)
                return
            self._held.pop(id(prepared), None)
        prepared.close()  # the last holder: no one can acquire it any more (it left the table)


_SHARES = _Shares()


class Engine:
    def __init__(self, bundle: Bundle, crosscheck_facts: int = ENGINE_CROSSCHECK_FACTS,
                 reuse: "Engine | None" = None, check_outcomes: bool = True) -> None:
        """Build every version of a loaded bundle through the pipeline (engine/pipeline/stages.py:
        model, compile, open, cross-check, outcome completeness, prepare). Raises PolicyError,
        holding no engine state, if any version fails.

        `reuse`: an engine of this process (the one serving, at a hot reload) whose versions built
        from the very same file bytes (`PolicyDocument.key`), with at least this cross-check, are
        taken as they are rather than built again; only versions whose bytes changed go through
        the pipeline. What compares versions (bundle checks, the bundle hash, the version order)
        comes from `bundle`, always. `built_versions` / `reused_versions` say which was which.

        `crosscheck_facts=0, check_outcomes=False`: the bundle's bytes were proved by another build
        (a service worker: its supervisor validated them); see pipeline.stages.build_version."""
        self.bundle = bundle
        self.bundle_hash: str = bundle.content_hash
        self._prepared: dict[str, PreparedVersion] = {}
        self._keys: dict[tuple[str, str], str] = {}   # PolicyDocument.key → version
        self._crosscheck_facts = crosscheck_facts
        self._checked_outcomes = check_outcomes
        self._closed = False
        built: list[str] = []
        reused: list[str] = []
        problems: list[Diagnostic] = []
        try:
            for document in bundle.documents:
                prepared = reuse._share(document, crosscheck_facts, check_outcomes) if reuse is not None else None
                if prepared is not None:
                    reused.append(prepared.version)
                else:
                    try:
                        prepared = build_version(document, crosscheck_facts, check_outcomes)
                    except PolicyError as exc:
                        problems += exc.diagnostics
                        continue
                    _SHARES.hold_new(prepared)
                    built.append(prepared.version)
                self._prepared[prepared.version] = prepared
                if document.digest:
                    self._keys[document.key] = prepared.version
            if problems:
                raise PolicyError(sort_diagnostics(problems))
        except BaseException:
            self.close()  # the versions opened or taken so far: a failed build holds no engine state
            raise
        self.built_versions: tuple[str, ...] = tuple(built)
        self.reused_versions: tuple[str, ...] = tuple(reused)
        ordered = sorted(self._prepared.values(), key=lambda p: p.policy.effective_from)
        self._order = [p.version for p in ordered]
        self._starts = [p.policy.effective_from.timestamp() for p in ordered]
        self._windows = [p.policy.timeouts.buyer_response_hours for p in ordered]

    def _share(self, document: PolicyDocument, crosscheck_facts: int,
               check_outcomes: bool = True) -> PreparedVersion | None:
        """This engine's version built from `document`'s exact bytes, now also held by the caller;
        None if there is none, it was proved less than asked (cross-check, outcomes), or this
        engine is closed."""
        version = self._keys.get(document.key) if document.digest else None
        if version is None or self._closed or self._crosscheck_facts < crosscheck_facts:
            return None
        if check_outcomes and not self._checked_outcomes:
            return None
        prepared = self._prepared.get(version)
        if prepared is None or not _SHARES.acquire(prepared):
            return None
        return prepared

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_directory(cls, path: str | Path | None = None, reuse: "Engine | None" = None,
                       memo: DocumentMemo | None = None) -> "Engine":
        """`reuse` and `memo` (hot reload): a file whose bytes did not change since the engine /
        the memo saw it is not parsed, checked or built again (engine/policy/memo.py)."""
        directory = Path(path) if path else default_rules_dir()
        bundle = memo.load_directory(directory) if memo is not None else load_directory(directory)
        return cls(bundle, reuse=reuse)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> "Engine":
        return cls(build_bundle([Path(p) for p in paths]))

    def close(self) -> None:
        """Release the durable_rules rulesets (after the last request using this engine); a
        version another engine still holds stays open for it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for prepared in self._prepared.values():
            _SHARES.release(prepared)

    # -- versions --------------------------------------------------------------------------------
    def versions(self) -> list[VersionInfo]:
        out = []
        for i, version in enumerate(self._order):
            until = self._prepared[self._order[i + 1]].policy.effective_from if i + 1 < len(self._order) else None
            out.append(VersionInfo(version, self._prepared[version].policy.effective_from, until))
        return out

    def version_at(self, at: datetime | str | None = None) -> str:
        when = self._resolve_at(at)
        index = bisect.bisect_right(self._starts, when.timestamp()) - 1
        if index < 0:
            raise NoVersionError(iso(when), iso(self._prepared[self._order[0]].policy.effective_from))
        return self._order[index]

    def prepared(self, version: str) -> PreparedVersion:
        try:
            return self._prepared[version]
        except KeyError:
            raise UnknownVersionError(version, self._order) from None

    def policy(self, version: str) -> Policy:
        return self.prepared(version).policy

    def compiled(self, version: str) -> CompiledPolicy:
        return self.prepared(version).compiled

    def document(self, version: str) -> dict[str, Any]:
        return dict(self.policy(version).raw)

    # -- the situation: the ticket validated once ------------------------------------------------------
    def situation(self, ticket: Any, at: datetime | str | None = None, version: str | None = None) -> Situation:
        """Validate `ticket` (TicketError with every problem), resolve `at` (default: now) and the
        version (default: the one in force at `at`), derive the ticket's times. The result answers
        any number of questions (decide, check, apply) without validating again."""
        when = self._resolve_at(at)
        chosen = version if version is not None else self.version_at(when)
        policy = self.prepared(chosen).policy
        return make_situation(ticket, when, policy, pinned=version is not None, window_at=self._window_at)

    def _window_at(self, moment: datetime) -> int | None:
        """The buyer window of the version in force at `moment` (None: before the first version)."""
        index = bisect.bisect_right(self._starts, moment.timestamp()) - 1
        return self._windows[index] if index >= 0 else None

    def _situated(self, ticket: Any, at: datetime | str | None,
                  version: str | None) -> tuple[PreparedVersion, Situation]:
        if isinstance(ticket, Situation):
            if at is not None or version is not None:
                raise TypeError("a Situation carries its own `at` and version: pass neither")
            situation = ticket
        else:
            situation = self.situation(ticket, at, version)
        prepared = self.prepared(situation.version)
        if prepared.policy is not situation.policy:
            raise UnknownVersionError(situation.version, self._order)  # a situation of another engine
        return prepared, situation

    # -- the three questions -----------------------------------------------------------------------
    def decide(self, ticket: Mapping[str, Any] | Situation, actor: str, at: datetime | str | None = None,
               version: str | None = None) -> Decision:
        if actor not in ACTORS:
            raise UnknownActionError("actor", str(actor), list(ACTORS))
        prepared, situation = self._situated(ticket, at, version)
        return decide_mod.decide(prepared, situation, actor)

    def check(self, ticket: Mapping[str, Any] | Situation, action: str, payload: Mapping[str, Any] | None = None,
              at: datetime | str | None = None, version: str | None = None) -> CheckResult:
        prepared, situation = self._situated(ticket, at, version)
        return check_mod.check(prepared, situation, action, {} if payload is None else payload)

    def apply(self, ticket: Mapping[str, Any] | Situation, answer: str, at: datetime | str | None = None,
              version: str | None = None, reason: str | None = None) -> ApplyResult:
        """`reason`: the buyer's rejection reason; a rejection needs one (三-3.2.1)."""
        if answer not in ANSWERS:
            raise UnknownActionError("answer", str(answer), list(ANSWERS))
        prepared, situation = self._situated(ticket, at, version)
        return apply_mod.apply(prepared, situation, answer, reason)

    # -- helpers ---------------------------------------------------------------------------------
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
