"""Validate a ticket (the facts of one 售后单) and parse its times.

The schema is `schemas/ticket.schema.json`, checked by `engine.jsoncheck.JsonChecker` (fast path
for valid tickets, every located problem for invalid ones). Past the schema, a few cross-field
checks catch tickets that cannot exist on the platform (a pending proposal while the status says
the merchant is processing, and the like): each would otherwise become a silently wrong decision.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterator, Mapping, Sequence

import msgspec

from engine.core.errors import TicketError
from engine.core.problems import Problem
from engine.core.jsonschema_errors import TIME_MESSAGES, JsonChecker, pointer, time_problem
from engine.core.resources import schema_path
from engine.decisions.schema_types import struct_type

# Where a ticket holds timestamps (key paths).
TIME_FIELDS = (
    ("created_at",),
    ("negotiation", "pending", "proposed_at"),
    ("negotiation", "pending", "respond_by"),
    ("return_logistics", "uploaded_at"),
    ("return_logistics", "signed_at"),
    ("return_logistics", "receipt_deadline"),
    ("aftersale_period_ends_at",),
)


def parse_time(text: str, field: str = "time") -> datetime:
    """Parse an ISO 8601 timestamp that carries a UTC offset; raise TicketError naming `field`
    (a JSON pointer such as `/created_at`, or a name such as `--at`)."""
    value = time_problem(text)
    if isinstance(value, datetime):
        return value
    raise TicketError([{"path": field if field.startswith("/") else "", "code": value,
                        "message": TIME_MESSAGES[value].format(field=f"`{field}`", text=text)}])


@lru_cache(maxsize=1)
def _checker() -> JsonChecker:
    return JsonChecker(json.loads(schema_path("ticket.schema.json").read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _fast_type() -> Any:
    """The ticket schema as msgspec types (engine/decisions/schema_types.py); None: not translatable."""
    return struct_type(json.loads(schema_path("ticket.schema.json").read_text(encoding="utf-8")))


def validate_ticket(obj: Any) -> dict[str, Any]:
    """Return `obj` itself when it is a valid ticket; else raise TicketError with every problem.
    A ticket the msgspec types accept is valid (they are never laxer than the schema); any other
    is judged by the schema, which lists every problem."""
    fast = _fast_type()
    try:
        if fast is None:
            raise msgspec.ValidationError
        msgspec.convert(obj, fast)
    except msgspec.MsgspecError:
        problems: Sequence[Problem | Mapping[str, Any]] = _checker().problems(obj)
        if problems:
            raise TicketError(problems) from None
    problems = list(_cross_field_problems(obj))
    if problems:
        raise TicketError(problems)
    ticket: dict[str, Any] = obj
    return ticket


def _on_the_calendar(text: str) -> bool:
    """A time the schema's pattern accepted (so it carries an offset) is also a real date and time.
    (`time_problem` would match the pattern again: measured, that doubles this check's cost.)"""
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _get(obj: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _cross_field_problems(ticket: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Combinations the schema cannot express. Few on purpose: each is a ticket the platform
    would never show, and each would otherwise turn into a silently wrong decision."""
    for parts in TIME_FIELDS:  # the pattern admits 2024-02-30; the calendar does not
        text = _get(ticket, parts)
        if text is not None and not _on_the_calendar(text):
            yield {"path": pointer(parts), "code": "bad_time",
                   "message": TIME_MESSAGES["bad_time"].format(field=f"`{parts[-1]}`", text=text)}

    status, kind = ticket["status"], ticket["type"]
    order, request = ticket["order"], ticket["request"]
    negotiation = ticket.get("negotiation") or {}
    pending = negotiation.get("pending")

    if request["refund_amount"] > order["paid_amount"]:
        yield {"path": "/request/refund_amount", "code": "amount_above_paid",
               "message": f"requested refund {request['refund_amount']} fen exceeds the paid amount {order['paid_amount']} fen"}
    if request["quantity"] > order["quantity"]:
        yield {"path": "/request/quantity", "code": "quantity_above_ordered",
               "message": f"requested quantity {request['quantity']} exceeds the ordered quantity {order['quantity']}"}
    if status in ("awaiting_buyer_return", "awaiting_merchant_receipt") and kind != "return_refund":
        yield {"path": "/status", "code": "status_type_mismatch",
               "message": f"status `{status}` exists only for return_refund tickets, this one is `{kind}`"}

    if pending is not None:
        if status != "awaiting_buyer_response":
            yield {"path": "/negotiation/pending", "code": "pending_without_status",
                   "message": f"a pending proposal requires status awaiting_buyer_response, not `{status}`"}
        if negotiation.get("last_outcome", "pending") != "pending":
            yield {"path": "/negotiation/last_outcome", "code": "outcome_mismatch",
                   "message": f"last_outcome must be `pending` while a proposal is pending, not `{negotiation['last_outcome']}`"}
        if negotiation["count"] < 1:
            yield {"path": "/negotiation/count", "code": "count_mismatch",
                   "message": "count includes the pending proposal, so it must be at least 1"}
        if pending.get("type") == "modify_request":
            for name in ("refund_type", "refund_amount"):
                if name not in pending:
                    yield {"path": f"/negotiation/pending/{name}", "code": "missing_field",
                           "message": f"`{name}` is required for a modify_request proposal"}
        if pending.get("refund_amount", 0) > order["paid_amount"]:
            yield {"path": "/negotiation/pending/refund_amount", "code": "amount_above_paid",
                   "message": f"proposed refund {pending['refund_amount']} fen exceeds the paid amount {order['paid_amount']} fen"}
        if pending.get("stage") == "awaiting_merchant_receipt" and kind != "return_refund":
            yield {"path": "/negotiation/pending/stage", "code": "status_type_mismatch",
                   "message": "a proposal at the merchant-receiving stage exists only for return_refund tickets"}
        if "stage" not in pending and kind == "return_refund":
            # the stage decides what the buyer's acceptance does (an automatic refund at the
            # receiving stage, 三-3.1.2 注意事项b; a return flow before it): never guessed
            yield {"path": "/negotiation/pending/stage", "code": "missing_field",
                   "message": "`stage` is required for a proposal on a return_refund ticket: "
                              "merchant_processing or awaiting_merchant_receipt (the status it was made in)"}
    elif status == "awaiting_buyer_response":
        yield {"path": "/negotiation/pending", "code": "missing_field",
               "message": "status awaiting_buyer_response requires the pending proposal (`negotiation.pending`)"}
    elif negotiation.get("last_outcome") == "pending":
        yield {"path": "/negotiation/last_outcome", "code": "outcome_mismatch",
               "message": "last_outcome is `pending` but there is no pending proposal"}
    elif negotiation.get("count", 0) > 0 and negotiation.get("last_outcome", "none") == "none":
        # read as "none", the buyer's platform intervention would be denied as if the merchant had
        # never answered: how the last proposal ended must be said
        yield {"path": "/negotiation/last_outcome", "code": "last_outcome_missing",
               "message": f"negotiation.count is {negotiation['count']} and nothing is pending, so "
                          f"last_outcome must say how the last proposal ended (accepted, rejected or timed_out), "
                          f"not {negotiation.get('last_outcome', 'nothing')}"}


def reference_problems(policy: Any, ticket: dict[str, Any]) -> list[dict[str, Any]]:
    """What the ticket names that the deciding policy version does not know: its scenario, its
    category, and the pending proposal's type and reason. (Versions differ: a scenario added on
    2024-03-11 is unknown to a question asked about an earlier time.)"""
    problems = []
    scenario = ticket.get("scenario")
    if scenario not in policy.scenarios:
        problems.append({"path": "/scenario", "code": "unknown_scenario",
                         "message": f"scenario `{scenario}` is not in policy {policy.version} "
                                    f"(known: {', '.join(policy.scenarios)})"})
    category = (ticket.get("order") or {}).get("category")
    if category not in policy.categories:
        problems.append({"path": "/order/category", "code": "unknown_category",
                         "message": f"category `{category}` is not in policy {policy.version} "
                                    f"(known: {', '.join(policy.categories)})"})
    pending = (ticket.get("negotiation") or {}).get("pending")
    if pending:
        if policy.negotiation_type(pending.get("type", "")) is None:
            problems.append({"path": "/negotiation/pending/type", "code": "unknown_negotiation_type",
                             "message": f"negotiation type `{pending.get('type')}` is not in policy {policy.version}"})
        if pending.get("reason") is not None and pending["reason"] not in policy.reasons:
            problems.append({"path": "/negotiation/pending/reason", "code": "unknown_reason",
                             "message": f"reason `{pending['reason']}` is not in policy {policy.version}"})
    return problems

