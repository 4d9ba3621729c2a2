"""Impact of a policy change: replay a ticket corpus under two versions and count what moves.

For every ticket, actor and action: allowed→denied, denied→allowed, denial codes changed (denied
both times, for other reasons), advice changed, and the negotiate constraints (refund types, max
refund amount, reasons offered). Each kind keeps a few sample ticket ids.

Work is spread over processes started with the `spawn` method: each builds its own `Engine`
after it starts, because durable_rules keeps C state (rulesets, sessions) that must not be
inherited through a fork. Lines travel to workers as text; a worker parses and validates them,
so a bad line costs one entry in `problems` (line number + field), never the run.
"""
from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from engine.history.corpus import latest_time
from engine.core.errors import EngineError, InputError, TicketError
from engine.decisions.ticket import validate_ticket
from engine.core.timeutil import iso, parse_aware
from engine.decisions.results import as_json

ACTORS = ("merchant", "buyer")
KINDS = ("allowed_to_denied", "denied_to_allowed", "denial_codes_changed", "advice_changed",
         "refund_types_changed", "max_refund_amount_changed", "reasons_changed", "reason_terms_changed")
SAMPLES = 5
CHUNK = 250
# Problems that mean "this version does not know the ticket's scenario/category/reason": the
# ticket is fine, it just cannot be decided under that version.
POLICY_REFERENCE_CODES = {"unknown_scenario", "unknown_category", "unknown_negotiation_type", "unknown_reason"}
QUESTION_DELAY = timedelta(hours=1)  # default `at`: an hour after the ticket's latest event


class ImpactError(EngineError):
    """The run itself failed (not one ticket): a worker process died."""


@dataclass
class Tally:
    lines: int = 0  # corpus lines read
    tickets: int = 0  # lines holding a valid ticket
    compared: int = 0  # (ticket, actor) pairs decided under both versions
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # actor -> action -> kind -> n
    samples: dict[str, dict[str, dict[str, list[tuple[int, str]]]]] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)  # bad lines
    undecidable: dict[str, int] = field(default_factory=lambda: {"from": 0, "to": 0})

    def record(self, actor: str, action: str, kind: str, line: int, ticket_id: str) -> None:
        by_kind = self.counts.setdefault(actor, {}).setdefault(action, {})
        by_kind[kind] = by_kind.get(kind, 0) + 1
        kept = self.samples.setdefault(actor, {}).setdefault(action, {}).setdefault(kind, [])
        if len(kept) < SAMPLES:
            kept.append((line, ticket_id))

    def merge(self, other: "Tally") -> None:
        self.lines += other.lines
        self.tickets += other.tickets
        self.compared += other.compared
        self.problems.extend(other.problems)
        for side in ("from", "to"):
            self.undecidable[side] += other.undecidable[side]
        for actor, actions in other.counts.items():
            for action, kinds in actions.items():
                for kind, n in kinds.items():
                    mine = self.counts.setdefault(actor, {}).setdefault(action, {})
                    mine[kind] = mine.get(kind, 0) + n
                    kept = self.samples.setdefault(actor, {}).setdefault(action, {}).setdefault(kind, [])
                    # the lowest line numbers win, so the samples do not depend on scheduling
                    kept[:] = sorted(kept + other.samples[actor][action][kind])[:SAMPLES]


# -- comparing two decisions ------------------------------------------------------------------------

def _codes(items: Iterable[dict]) -> list[str]:
    return sorted({item.get("code", "") for item in items or ()})


def _reasons(constraints: dict) -> dict[tuple[str, str], tuple]:
    """(type, reason) offered -> its terms: evidence required, rendered suggested message."""
    return {(t.get("id", ""), r.get("id", "")): (r.get("evidence_required"), r.get("message"))
            for t in constraints.get("negotiation_types") or () for r in t.get("reasons") or ()}


def action_changes(old: dict, new: dict) -> list[str]:
    """The kinds of change between two decisions of one action (empty: the same)."""
    kinds = []
    if old.get("allowed") and not new.get("allowed"):
        kinds.append("allowed_to_denied")
    elif not old.get("allowed") and new.get("allowed"):
        kinds.append("denied_to_allowed")
    elif not old.get("allowed") and _codes(old.get("denials")) != _codes(new.get("denials")):
        kinds.append("denial_codes_changed")
    if _codes(old.get("advice")) != _codes(new.get("advice")):
        kinds.append("advice_changed")
    before, after = old.get("constraints") or {}, new.get("constraints") or {}
    if before or after:
        if sorted(before.get("refund_types") or ()) != sorted(after.get("refund_types") or ()):
            kinds.append("refund_types_changed")
        if before.get("max_refund_amount") != after.get("max_refund_amount"):
            kinds.append("max_refund_amount_changed")
        old_reasons, new_reasons = _reasons(before), _reasons(after)
        if sorted(old_reasons) != sorted(new_reasons):
            kinds.append("reasons_changed")
        elif old_reasons != new_reasons:  # same reasons offered, different evidence rule or wording
            kinds.append("reason_terms_changed")
    return kinds


def decision_changes(old: dict, new: dict) -> dict[str, list[str]]:
    """action -> kinds of change, for every action either decision lists."""
    old_actions, new_actions = old.get("actions") or {}, new.get("actions") or {}
    out = {}
    for action in list(old_actions) + [a for a in new_actions if a not in old_actions]:
        kinds = action_changes(old_actions.get(action) or {}, new_actions.get(action) or {})
        if kinds:
            out[action] = kinds
    return out


# -- one worker's share -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    rules_dir: str | None
    old: str
    new: str
    actors: tuple[str, ...]
    at: str | None  # None: each ticket's latest event + QUESTION_DELAY


_ENGINES: dict[str | None, Any] = {}  # per process, built after the process started (never inherited)


def _engine(rules_dir: str | None):
    if rules_dir not in _ENGINES:
        from engine.api import Engine

        _ENGINES[rules_dir] = Engine.from_directory(rules_dir)
    return _ENGINES[rules_dir]


def _problem(line: int, field_path: str, message: str) -> dict[str, Any]:
    return {"line": line, "field": field_path or "/", "message": message}


def replay_lines(job: Job, lines: list[tuple[int, str | None]]) -> Tally:
    engine = _engine(job.rules_dir)
    tally = Tally(lines=len(lines))
    for number, text in lines:
        if text is None:
            tally.problems.append(_problem(number, "", "the line is not UTF-8"))
            continue
        try:
            ticket = json.loads(text)
        except json.JSONDecodeError as exc:
            tally.problems.append(_problem(number, "", f"not JSON: column {exc.colno}: {exc.msg}"))
            continue
        if not isinstance(ticket, dict):
            tally.problems.append(_problem(number, "", "a line must hold one ticket (a JSON object)"))
            continue
        _replay_ticket(engine, job, number, ticket, tally)
    return tally


def _replay_ticket(engine, job: Job, number: int, ticket: dict, tally: Tally) -> None:
    at, side = job.at, "from"
    try:
        validate_ticket(ticket)  # first, so a bad line is reported by field before anything reads it
        if at is None:
            latest = latest_time(ticket)
            at = iso(parse_aware(latest) + QUESTION_DELAY) if latest else None
        decisions: dict[str, dict[str, dict]] = {"from": {}, "to": {}}
        for side, version in (("from", job.old), ("to", job.new)):
            for actor in job.actors:
                decisions[side][actor] = as_json(engine.decide(ticket, actor, at=at, version=version))
    except TicketError as exc:
        if exc.problems and all(p.code in POLICY_REFERENCE_CODES for p in exc.problems):
            tally.tickets += 1
            tally.undecidable[side] += 1
            return
        for p in exc.problems:
            tally.problems.append(_problem(number, p.path, p.message or str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - an engine bug on one ticket must not end the run
        tally.problems.append(_problem(number, "", f"engine failed on this ticket: {type(exc).__name__}: {exc}"))
        return
    tally.tickets += 1
    ticket_id = str(ticket.get("ticket_id", f"line {number}"))
    for actor in job.actors:
        tally.compared += 1
        for action, kinds in decision_changes(decisions["from"][actor], decisions["to"][actor]).items():
            for kind in kinds:
                tally.record(actor, action, kind, number, ticket_id)


# -- the whole run ---------------------------------------------------------------------------------

def _open_corpus(path: str | Path):
    try:
        return open(path, "rb")  # bytes: one undecodable line is that line's problem, not the run's
    except OSError as exc:
        raise InputError([{"path": "", "code": "unreadable",
                           "message": f"cannot read corpus `{path}`: {exc.strerror or exc}"}],
                         "cannot read corpus") from None


def count_tickets(path: str | Path) -> int:
    """Non-blank lines of the corpus; InputError if it cannot be read or holds none."""
    with _open_corpus(path) as handle:
        total = sum(1 for raw in handle if raw.strip())
    if not total:
        raise InputError([{"path": "", "code": "empty_corpus",
                           "message": f"corpus `{path}` holds no tickets (one JSON ticket per line expected)"}],
                         "empty corpus")
    return total


def corpus_chunks(path: str | Path, size: int = CHUNK) -> Iterator[list[tuple[int, str | None]]]:
    """Non-blank lines as (1-based number, text), `size` at a time, read lazily (a corpus may be
    larger than memory); text is None for a line that is not UTF-8."""
    chunk: list[tuple[int, str | None]] = []
    with _open_corpus(path) as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                chunk.append((number, raw.decode("utf-8")))
            except UnicodeDecodeError:
                chunk.append((number, None))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def run_impact(job: Job, source: str | Path, workers: int = 2,
               progress: Callable[[int, int], None] | None = None, chunk_size: int = CHUNK) -> Tally:
    """Replay the corpus file under `job.old` and `job.new`; `progress(done, total)` after each
    chunk. At most two chunks per worker are in flight, so memory stays flat on any corpus size."""
    total, done, tally = count_tickets(source), 0, Tally()
    if workers <= 1 or total <= chunk_size:
        for chunk in corpus_chunks(source, chunk_size):
            tally.merge(replay_lines(job, chunk))
            done += len(chunk)
            if progress:
                progress(done, total)
        return tally
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited C state
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: set = set()
            for chunk in corpus_chunks(source, chunk_size):
                pending.add(pool.submit(replay_lines, job, chunk))
                if len(pending) >= 2 * workers:
                    done = _collect(pending, tally, done, total, progress, FIRST_COMPLETED)
            _collect(pending, tally, done, total, progress, ALL_COMPLETED)
    except BrokenProcessPool as exc:  # a worker died (killed, or a crash in the C extension)
        raise ImpactError(f"a worker process died: {exc}; rerun with --workers 1 to see the ticket") from None
    tally.problems.sort(key=lambda p: (p["line"], p["field"]))
    return tally


def _collect(pending: set, tally: Tally, done: int, total: int,
             progress: Callable[[int, int], None] | None, return_when: str) -> int:
    finished, still = wait(pending, return_when=return_when)
    pending.intersection_update(still)
    for future in finished:
        part = future.result()
        tally.merge(part)
        done += part.lines
        if progress:
            progress(done, total)
    return done


def stderr_progress(enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled:
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-9)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rimpact: {done}/{total} tickets ({rate:,.0f}/s){end}")
        sys.stderr.flush()
    return show


def check_versions(rules_dir: str | None, names: Iterable[str]) -> None:
    """Fail early, in the parent: an invalid bundle (PolicyError with every diagnostic) or an
    unknown version. Loading validates without compiling, so no durable_rules state is made here."""
    from engine.policy.bundle import load_directory
    from engine.core.errors import UnknownVersionError
    from engine.core.resources import default_rules_dir

    known = load_directory(Path(rules_dir) if rules_dir else default_rules_dir()).versions
    for name in names:
        if name not in known:
            raise UnknownVersionError(name, known)

