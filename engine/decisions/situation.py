"""The situation a question is asked in: one validated ticket, the moment `at`, the policy version
in force (or pinned), and the times derived from them, computed once.

A `Situation` is built at the boundary (`Engine.situation`) and is immutable: decide, check and
apply of the same request all read it, so a service validates a ticket once per request however
many questions it asks. The ticket itself is the caller's dict, validated, never copied or changed.

The buyer's answer deadline (`respond_by`) is the one derived time that needs judgement: a pending
proposal keeps the buyer window of the version in force when it was made (24 h before 2024-03-11,
48 h after, 二-2.1-(2)), whichever version decides; the platform fixed it then. This is an interpretation: the guide
gives the windows, not what happens to a proposal pending across the change
(docs/policy-notes.md). A ticket that
carries `respond_by` is taken at its word; a pinned version answers entirely as that version says.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

import msgspec

from engine.core.errors import TicketError
from engine.decisions.ticket import reference_problems, validate_ticket
from engine.policy.model import Policy


def epoch(text: str) -> int:
    """Epoch seconds of a validated ISO timestamp (the schema guaranteed the offset)."""
    return int(datetime.fromisoformat(text).timestamp())


class Situation(msgspec.Struct, frozen=True):
    ticket: Mapping[str, Any]       # validated; read-only by contract
    at: datetime
    now: int                        # `at` in epoch seconds
    policy: Policy                  # the version that answers
    pinned: bool                    # the caller chose the version (else: the one in force at `at`)
    respond_by: int | None          # when the pending proposal's buyer window closes; None: none pending
    receipt_deadline: int | None    # return_logistics.receipt_deadline
    signed_at: int | None           # return_logistics.signed_at
    aftersale_period_ends: int | None  # aftersale_period_ends_at (二-2.3-(1) 售后期)

    @property
    def version(self) -> str:
        return self.policy.version

    @property
    def pending(self) -> Mapping[str, Any] | None:
        negotiation = self.ticket.get("negotiation")
        return negotiation.get("pending") if negotiation else None


# (proposed_at as datetime) → buyer_response_hours of the version in force then (None: none was)
WindowAt = Callable[[datetime], "int | None"]


def make_situation(ticket: Any, at: datetime, policy: Policy, pinned: bool = False,
                   window_at: WindowAt | None = None, validated: bool = False) -> Situation:
    """Validate `ticket` and check what it names against `policy` (both skipped with `validated`:
    the caller did), then derive its times. Raises TicketError with every problem."""
    clean = ticket if validated else validate_ticket(ticket)
    if not validated:
        problems = reference_problems(policy, clean)
        if problems:
            raise TicketError(problems)
    negotiation = clean.get("negotiation")
    pending = negotiation.get("pending") if negotiation else None
    respond_by = None
    if pending:
        if pending.get("respond_by"):
            respond_by = epoch(pending["respond_by"])
        else:
            proposed_at = datetime.fromisoformat(pending["proposed_at"])
            window = None if pinned or window_at is None else window_at(proposed_at)
            if window is None:  # pinned, or proposed before the first version: the deciding one's
                window = policy.timeouts.buyer_response_hours
            respond_by = int(proposed_at.timestamp()) + window * 3600
    logistics = clean.get("return_logistics")
    receipt = signed = None
    if logistics:
        if logistics.get("receipt_deadline"):
            receipt = epoch(logistics["receipt_deadline"])
        if logistics.get("signed_at"):
            signed = epoch(logistics["signed_at"])
    period = clean.get("aftersale_period_ends_at")
    return Situation(clean, at, int(at.timestamp()), policy, pinned, respond_by, receipt, signed,
                     epoch(period) if period else None)
