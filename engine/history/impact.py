"""Impact of a policy change: replay tickets under two versions and count what moves.

For every ticket, actor and action: allowed→denied, denied→allowed, denial codes changed (denied
both times, for other reasons), advice changed, and the negotiate constraints (refund types, max
refund amount, reasons offered). Each difference is attributed to the declared changes that explain
it (engine/history/attribution.py) or counted unexplained; each kind keeps a few sample tickets; the
counts are also broken down per scenario and ticket type.

This module is the replay itself, in one process: `replay_partition` is what a Dask worker runs on
one partition (engine/history/dask_run.py spreads them), and a plain loop over it is the in-process
reference the tests compare the cluster with. A `Tally` is a pure function of its partition, and
merging is order-independent (samples: the lowest locations win), so a rerun task (a worker died)
or another scheduling gives the same summary.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Protocol

from engine.core.errors import EngineError, TicketError
from engine.core.timeutil import iso, parse_aware
from engine.decisions.ticket import validate_ticket
from engine.history.attribution import DeclaredChange, explained_by
from engine.history.corpus import latest_time
from engine.history.ticket_sources import Partition, ticket_texts
from engine.questions import EngineLike, Question, ask

ACTORS = ("merchant", "buyer")
KINDS = ("allowed_to_denied", "denied_to_allowed", "denial_codes_changed", "advice_changed",
         "refund_types_changed", "max_refund_amount_changed", "reasons_changed", "reason_terms_changed")
SAMPLES = 5
# Problems that mean "this version does not know the ticket's scenario/category/reason": the
# ticket is fine, it just cannot be decided under that version.
POLICY_REFERENCE_CODES = {"unknown_scenario", "unknown_category", "unknown_negotiation_type", "unknown_reason"}
QUESTION_DELAY = timedelta(hours=1)  # default `at`: an hour after the ticket's latest event

Sample = tuple[int, int, str]  # (source index, line or row, ticket id): sorts by location


class ImpactError(EngineError):
    """The run itself failed (not one ticket): no engine on a worker, a bundle mismatch, a lost cluster."""


class Decider(EngineLike, Protocol):
    """What the replay needs of an engine (engine.api.Engine has it): the questions, and the hash
    of the bundle it decides with (every worker's must match the client's)."""

    bundle_hash: str


@dataclass(frozen=True)
class Job:
    old: str
    new: str
    actors: tuple[str, ...] = ACTORS
    at: str | None = None  # None: each ticket's latest event + QUESTION_DELAY
    changes: tuple[DeclaredChange, ...] = ()  # declared between old and new: what explains a difference
    bundle_hash: str = ""  # the client's; every worker's engine must match it
    keep_differences: bool = False  # per-ticket difference rows for `--out`


@dataclass
class Cell:
    """One (actor, action, kind of change): how many, explained by what, samples."""

    count: int = 0
    unexplained: int = 0
    by_change: dict[str, int] = field(default_factory=dict)  # `version/id` -> differences it explains
    samples: list[Sample] = field(default_factory=list)
    unexplained_samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample, explained: tuple[str, ...]) -> None:
        self.count += 1
        _keep(self.samples, [sample])
        for key in explained:
            self.by_change[key] = self.by_change.get(key, 0) + 1
        if not explained:
            self.unexplained += 1
            _keep(self.unexplained_samples, [sample])

    def merge(self, other: "Cell") -> None:
        self.count += other.count
        self.unexplained += other.unexplained
        for key, n in other.by_change.items():
            self.by_change[key] = self.by_change.get(key, 0) + n
        _keep(self.samples, other.samples)
        _keep(self.unexplained_samples, other.unexplained_samples)


def _keep(kept: list[Sample], more: Iterable[Sample]) -> None:
    # the lowest locations win, so the samples do not depend on scheduling
    kept[:] = sorted(set(kept).union(more))[:SAMPLES]


@dataclass
class Tally:
    lines: int = 0  # corpus lines/rows holding something (blank lines are not counted)
    tickets: int = 0  # of them, valid tickets
    compared: int = 0  # (ticket, actor) pairs decided under both versions
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)  # (actor, action, kind)
    # per scenario / ticket type: "tickets", "changed" (tickets with any difference), and per kind
    by_scenario: dict[str, dict[str, int]] = field(default_factory=dict)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)  # bad lines or rows, located
    undecidable: dict[str, int] = field(default_factory=lambda: {"from": 0, "to": 0})

    def merge(self, other: "Tally") -> None:
        self.lines += other.lines
        self.tickets += other.tickets
        self.compared += other.compared
        self.problems.extend(other.problems)
        self.problems.sort(key=lambda p: (p["source"], p["number"], p["field"]))
        for side in ("from", "to"):
            self.undecidable[side] += other.undecidable[side]
        for key, cell in other.cells.items():
            self.cells.setdefault(key, Cell()).merge(cell)
        for mine, theirs in ((self.by_scenario, other.by_scenario), (self.by_type, other.by_type)):
            for name, counts in theirs.items():
                target = mine.setdefault(name, {})
                for kind, n in counts.items():
                    target[kind] = target.get(kind, 0) + n

    @property
    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """actor -> action -> kind -> differences."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (actor, action, kind), cell in sorted(self.cells.items()):
            out.setdefault(actor, {}).setdefault(action, {})[kind] = cell.count
        return out

    def summary(self) -> dict[str, Any]:
        """Everything but timings and locations' file names: equal for equal replays."""
        return {"lines": self.lines, "tickets": self.tickets, "compared": self.compared,
                "undecidable": dict(self.undecidable), "counts": self.counts,
                "cells": {"|".join(k): vars(c) for k, c in sorted(self.cells.items())},
                "by_scenario": self.by_scenario, "by_type": self.by_type,
                "problems": [(p["source"], p["number"], p["field"], p["message"]) for p in self.problems]}


@dataclass
class PartResult:
    """What one partition's replay sends back to the client."""

    index: int
    rows: int  # lines or rows read (for the progress bar)
    tally: Tally
    differences: Any = None  # a pyarrow Table (engine/history/differences.py) when the job keeps them


# -- comparing two decisions ------------------------------------------------------------------------

def _codes(items: Iterable[dict[str, Any]] | None) -> list[str]:
    return sorted({item.get("code", "") for item in items or ()})


def _reasons(constraints: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, Any]]:
    """(type, reason) offered -> its terms: evidence required, rendered suggested message."""
    return {(t.get("id", ""), r.get("id", "")): (r.get("evidence_required"), r.get("message"))
            for t in constraints.get("negotiation_types") or () for r in t.get("reasons") or ()}


def action_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
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


def decision_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    """action -> kinds of change, for every action either decision lists."""
    old_actions, new_actions = old.get("actions") or {}, new.get("actions") or {}
    out = {}
    for action in list(old_actions) + [a for a in new_actions if a not in old_actions]:
        kinds = action_changes(old_actions.get(action) or {}, new_actions.get(action) or {})
        if kinds:
            out[action] = kinds
    return out


# -- one partition ------------------------------------------------------------------------------------

def ask_decision(engine: Decider, ticket: dict[str, Any], actor: str, at: str | None, version: str) -> dict[str, Any]:
    """The one place the replay asks the engine (pinned version, fixed `at`)."""
    answer: dict[str, Any] = ask(engine, Question.decide(ticket, actor, at, version))
    return answer


def replay_partition(engine: Decider, job: Job, partition: Partition) -> PartResult:
    """Decide every ticket of one partition under both versions: what a worker runs."""
    from engine.history.differences import DifferenceRows

    tally = Tally()
    rows = DifferenceRows(partition.path) if job.keep_differences else None
    for number, text, why_not in ticket_texts(partition):
        tally.lines += 1
        ticket = _parse(text, why_not, partition, number, tally)
        if ticket is not None:
            replay_ticket(engine, job, partition, number, ticket, tally, rows)
    return PartResult(partition.index, partition.rows, tally, rows.table() if rows else None)


def _problem(partition: Partition, number: int, field_path: str, message: str) -> dict[str, Any]:
    return {"source": partition.source, "file": partition.path, "kind": partition.kind, "number": number,
            "field": field_path or "/", "message": message}


def _parse(text: str | None, why_not: str | None, partition: Partition, number: int, tally: Tally) -> dict[str, Any] | None:
    if text is None:
        tally.problems.append(_problem(partition, number, "", why_not or "unreadable"))
        return None
    try:
        ticket = json.loads(text)
    except json.JSONDecodeError as exc:
        tally.problems.append(_problem(partition, number, "", f"not JSON: column {exc.colno}: {exc.msg}"))
        return None
    if not isinstance(ticket, dict):
        tally.problems.append(_problem(partition, number, "", "a line or row must hold one ticket (a JSON object)"))
        return None
    return ticket


def _question_time(job: Job, ticket: dict[str, Any]) -> str | None:
    if job.at is not None:
        return job.at
    latest = latest_time(ticket)
    return iso(parse_aware(latest) + QUESTION_DELAY) if latest else None


def replay_ticket(engine: Decider, job: Job, partition: Partition, number: int, ticket: dict[str, Any],
                  tally: Tally, rows: Any = None) -> None:
    side = "from"
    decisions: dict[str, dict[str, dict[str, Any]]] = {"from": {}, "to": {}}
    try:
        validate_ticket(ticket)  # first, so a bad ticket is reported by field before anything reads it
        at = _question_time(job, ticket)
        for side, version in (("from", job.old), ("to", job.new)):
            for actor in job.actors:
                decisions[side][actor] = ask_decision(engine, ticket, actor, at, version)
    except TicketError as exc:
        if exc.problems and all(p.code in POLICY_REFERENCE_CODES for p in exc.problems):
            tally.tickets += 1
            tally.undecidable[side] += 1
            return
        for p in exc.problems:
            tally.problems.append(_problem(partition, number, p.path, p.message or str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - an engine bug on one ticket must not end the run
        tally.problems.append(_problem(partition, number, "", f"engine failed on this ticket: {type(exc).__name__}: {exc}"))
        return
    tally.tickets += 1
    ticket_id = str(ticket.get("ticket_id", f"#{number}"))
    scenario, kind_of_ticket = str(ticket.get("scenario", "")), str(ticket.get("type", ""))
    changed = False
    breakdown: dict[str, int] = {}
    for actor in job.actors:
        tally.compared += 1
        old, new = decisions["from"][actor], decisions["to"][actor]
        for action, kinds in decision_changes(old, new).items():
            explained = explained_by(job.changes, action, scenario)
            for kind in kinds:
                changed = True
                breakdown[kind] = breakdown.get(kind, 0) + 1
                tally.cells.setdefault((actor, action, kind), Cell()).add((partition.source, number, ticket_id), explained)
                if rows is not None:
                    rows.add(number, ticket_id, scenario, kind_of_ticket, actor, action, kind, explained,
                             (old.get("actions") or {}).get(action) or {}, (new.get("actions") or {}).get(action) or {})
    for table, name in ((tally.by_scenario, scenario), (tally.by_type, kind_of_ticket)):
        counts = table.setdefault(name, {})
        counts["tickets"] = counts.get("tickets", 0) + 1
        if changed:
            counts["changed"] = counts.get("changed", 0) + 1
        for kind, n in breakdown.items():
            counts[kind] = counts.get(kind, 0) + n


def replay_in_process(engine: Decider, job: Job, partitions: Iterable[Partition]) -> Tally:
    """The plain, one-process replay: the reference a cluster's result must equal."""
    tally = Tally()
    for partition in partitions:
        tally.merge(replay_partition(engine, job, partition).tally)
    return tally
