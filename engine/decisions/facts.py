"""Ticket (+ policy + `at`) → the flat fact dict the rules read (docs/design.md, "Facts").

This is the hot path of every question: no copies of the ticket, no schema work (the ticket was
validated before), only dict reads and a few timestamp parses. Facts are normalized the way
durable_rules needs them: ints (epoch seconds, fen), bools and strings; never None or a float.
An optional fact (a deadline the ticket does not have) is left out rather than set to a dummy.

The one piece of judgement here: a proposal whose buyer window has passed at `at` no longer
awaits the buyer. The platform has already moved the ticket back to 待商家处理 (二-2.1-(2)), so
the effective `status` is `merchant_processing` (the guide's words, at either stage the proposal
was made in), `pending_expired` is true and the negotiation
counts as tried (the buyer let it time out).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from engine.core.errors import TicketError
from engine.decisions.situation import Situation, epoch, make_situation
from engine.decisions.ticket import reference_problems
from engine.policy.model import Policy

NO_PENDING = {"pending_type": "", "pending_refund_type": "", "pending_stage": "", "pending_edits": 0}

__all__ = ["NO_PENDING", "build_facts", "epoch", "response_deadline", "situation_facts"]


def response_deadline(policy: Policy, pending: Mapping[str, Any]) -> int:
    """When the buyer's window on a proposal closes (epoch seconds), for a caller without a
    Situation: the ticket's `respond_by`, else the window of `policy` (engine/decisions/situation.py
    computes it once per question, with the version in force when the proposal was made)."""
    respond_by = pending.get("respond_by")
    if respond_by:
        return epoch(respond_by)
    return epoch(pending["proposed_at"]) + policy.timeouts.buyer_response_hours * 3600


def build_facts(policy: Policy, ticket: Mapping[str, Any], actor: str, at: datetime,
                stage: str = "gate", extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The facts of a validated ticket, without an Engine (tests, the outcome completeness proof):
    the deciding version's buyer window unless the ticket carries `respond_by`."""
    scenario = policy.scenarios.get(ticket["scenario"])
    category = policy.categories.get(ticket["order"]["category"])
    if scenario is None or category is None:  # a caller that skipped Engine's reference check
        raise TicketError(reference_problems(policy, dict(ticket)))
    situation = make_situation(ticket, at, policy, pinned=True, validated=True)
    facts = situation_facts(situation, actor, stage)
    if extra:
        facts.update(extra)
    return facts


def situation_facts(situation: Situation, actor: str, stage: str = "gate") -> dict[str, Any]:
    """The flat facts of one situation: dict reads and the times the situation already derived."""
    policy, ticket, now = situation.policy, situation.ticket, situation.now
    order = ticket["order"]
    request = ticket["request"]
    scenario = policy.scenarios[ticket["scenario"]]
    category = policy.categories[order["category"]]

    negotiation = ticket.get("negotiation") or {}
    pending = negotiation.get("pending")
    used = int(negotiation.get("count", 0))
    last_outcome = negotiation.get("last_outcome") or ("pending" if pending else "none")
    status = ticket["status"]

    facts: dict[str, Any] = {
        "ticket_id": ticket["ticket_id"],
        "stage": stage,
        "actor": actor,
        "now": now,
        "ticket_type": ticket["type"],
        "scenario": scenario.id,
        "scenario_rejection": scenario.rejection,
        "escalates_on_buyer_reject": scenario.buyer_reject_escalates or category.buyer_reject_escalates,
        "category": category.id,
        "category_allows_return": "return_refund" in category.refund_types,
        "goods_kind": order["goods_kind"],
        "paid_amount": int(order["paid_amount"]),
        "requested_amount": int(request["refund_amount"]),
        "quantity": int(request["quantity"]),
        "order_shipped": bool(order["shipped"]),
        "negotiations_used": used,
        "buyer_evidence_count": int(request.get("evidence_count", 0)),
    }

    expired = False
    if pending:
        deadline = situation.respond_by
        assert deadline is not None  # make_situation derives it for every pending proposal
        expired = deadline <= now
        if expired:
            # The buyer did not answer in time: the platform already handed the ticket back to
            # 待商家处理 (二-2.1-(2), 二-2.3-(1)), whichever stage the proposal was made in.
            status, last_outcome = "merchant_processing", "timed_out"
            facts.update(NO_PENDING)
        else:
            facts["buyer_response_deadline"] = deadline
            facts["pending_type"] = pending["type"]
            facts["pending_refund_type"] = pending.get("refund_type", ticket["type"])
            facts["pending_stage"] = pending.get("stage", "merchant_processing")
            facts["pending_edits"] = int(pending.get("edits", 0))
    else:
        facts.update(NO_PENDING)
    facts["status"] = status
    facts["last_outcome"] = last_outcome
    has_pending = bool(pending) and not expired
    facts["has_pending"] = has_pending
    facts["pending_expired"] = expired
    # Tried = some proposal ended without the buyer agreeing: rejected, timed out, or any earlier
    # proposal than the one pending now (count includes the pending one).
    facts["negotiation_tried"] = (
        expired or last_outcome in ("rejected", "timed_out") or used > (1 if has_pending else 0)
    )

    logistics = ticket.get("return_logistics") or {}
    facts["return_uploaded"] = bool(logistics.get("tracking_number") or logistics.get("uploaded_at"))
    facts["return_signed"] = logistics.get("signed_at") is not None
    receipt = situation.receipt_deadline
    if receipt is not None:
        facts["receipt_deadline"] = receipt
        facts["receipt_seconds_left"] = receipt - now
    facts["receipt_extension_used"] = bool(logistics.get("extension_used", False))
    facts["tracking_fixes_used"] = int(logistics.get("fixes_used", 0))
    facts["intercept_requested"] = bool((ticket.get("intercept") or {}).get("requested", False))
    facts["complaint_open"] = bool((ticket.get("complaint") or {}).get("open", False))
    # 二-2.3-(1) 售后期内: over only when the ticket says when the period ends (the guide gives no length)
    period_end = situation.aftersale_period_ends
    facts["aftersale_period_over"] = period_end is not None and period_end <= now
    return facts
