"""The facts a policy condition may name: docs/design.md "Facts", one table for every module.

`engine/facts.py` builds exactly these keys; `engine/checks/semantic.py` refuses a `when:` naming
any other fact, or comparing a fact with a literal of the wrong type or outside its word list (a
typo such as `status: {eq: awaiting_buyer_respons}` would otherwise be a rule that never fires).

`values`: the closed list of strings a str fact takes; `DOC` means "the ids of that list in the
policy document" (scenarios, categories, reasons); None: open.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core import vocabulary as v

STR, INT, BOOL = "str", "int", "bool"


@dataclass(frozen=True)
class FactSpec:
    name: str
    type: str  # str | int | bool
    values: tuple[str, ...] | str | None = None  # closed word list, "doc:<list>", or None (open)
    optional: bool = False  # may be absent from the facts (compare with `exists` first)
    stage: str | None = None  # only present in this stage (payload / outcome); None: always


def _specs(*items: FactSpec) -> dict[str, FactSpec]:
    return {item.name: item for item in items}


FACTS: dict[str, FactSpec] = _specs(
    FactSpec("ticket_id", STR),
    FactSpec("stage", STR, v.STAGES),
    FactSpec("actor", STR, v.ACTORS),
    FactSpec("now", INT),
    FactSpec("ticket_type", STR, v.REFUND_TYPES),
    FactSpec("status", STR, v.TICKET_STATUSES),
    FactSpec("scenario", STR, "doc:scenarios"),
    FactSpec("scenario_rejection", STR, v.REJECTION_MODES),
    FactSpec("escalates_on_buyer_reject", BOOL),
    FactSpec("category", STR, "doc:categories"),
    FactSpec("category_allows_return", BOOL),
    FactSpec("goods_kind", STR, v.GOODS_KINDS),
    FactSpec("paid_amount", INT),
    FactSpec("requested_amount", INT),
    FactSpec("quantity", INT),
    FactSpec("order_shipped", BOOL),
    FactSpec("negotiations_used", INT),
    FactSpec("negotiation_tried", BOOL),
    FactSpec("last_outcome", STR, v.LAST_OUTCOMES),
    FactSpec("has_pending", BOOL),
    FactSpec("pending_expired", BOOL),
    FactSpec("pending_type", STR, v.NEGOTIATION_TYPES + ("",)),
    FactSpec("pending_refund_type", STR, v.REFUND_TYPES + ("",)),
    FactSpec("pending_stage", STR, ("merchant_processing", "awaiting_merchant_receipt", "")),
    FactSpec("pending_edits", INT),
    FactSpec("buyer_response_deadline", INT, optional=True),
    FactSpec("return_uploaded", BOOL),
    FactSpec("return_signed", BOOL),
    FactSpec("receipt_deadline", INT, optional=True),
    FactSpec("receipt_seconds_left", INT, optional=True),
    FactSpec("receipt_extension_used", BOOL),
    FactSpec("tracking_fixes_used", INT),
    FactSpec("intercept_requested", BOOL),
    FactSpec("complaint_open", BOOL),
    FactSpec("aftersale_period_over", BOOL),
    FactSpec("buyer_evidence_count", INT),
    # stage payload: the action's payload
    FactSpec("p_reason", STR, "doc:reasons", stage="payload"),
    FactSpec("p_reason_type", STR, stage="payload"),
    FactSpec("p_reason_offered", BOOL, stage="payload"),
    FactSpec("p_reason_evidence_required", BOOL, stage="payload"),
    FactSpec("p_reason_refund_type", STR, v.REFUND_TYPES + ("",), stage="payload"),
    FactSpec("p_refund_amount", INT, stage="payload"),
    FactSpec("p_evidence_count", INT, stage="payload"),
    FactSpec("p_message_length", INT, stage="payload"),
    FactSpec("p_reason_changed", BOOL, stage="payload"),
    FactSpec("p_quantity_changed", BOOL, stage="payload"),
    FactSpec("p_type_changed", BOOL, stage="payload"),
    FactSpec("p_amount_changed", BOOL, stage="payload"),
    FactSpec("p_reject_reason_length", INT, stage="payload"),
    FactSpec("p_tracking_number_length", INT, stage="payload"),
    FactSpec("p_carrier_matched", BOOL, stage="payload"),
    FactSpec("p_carrier_given", BOOL, stage="payload"),
    # payload (negotiate) and outcome (the pending proposal) both carry these two
    FactSpec("p_type", STR, v.NEGOTIATION_TYPES),
    FactSpec("p_refund_type", STR, v.REFUND_TYPES),
    # stage outcome
    FactSpec("answer", STR, v.ANSWERS, stage="outcome"),
)

FACT_NAMES = frozenset(FACTS)


def fact(name: str) -> FactSpec | None:
    return FACTS.get(name)
