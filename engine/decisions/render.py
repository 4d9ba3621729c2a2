"""Message templates: the platform's suggested text (平台建议文案, 三-3.1.2-(2)) for a reason,
filled in for one ticket.

Templates name placeholders in braces, `{refund_amount_yuan}`; the policy lists the names it may
use (`message_placeholders`) and the loader checks templates against that list. Rendering is
forgiving on purpose: a placeholder we cannot fill stays as written, so a merchant sees `{x}`
rather than a request failing over wording.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from engine.policy.model import Policy

REFUND_TYPE_LABELS = {"refund_only": "仅退款", "return_refund": "退货退款"}
_PLACEHOLDER = re.compile(r"\{\{?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}?\}")


def yuan(fen: int) -> str:
    """40000 → "400.00", 12345 → "123.45" (exact: no floats touch money)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def placeholder_values(policy: Policy, ticket: Mapping[str, Any], refund_amount: int | None = None,
                       refund_type: str | None = None) -> dict[str, str]:
    """Values for one ticket. `refund_amount` / `refund_type` default to what the buyer asked
    for (decide: no proposal yet); check passes the proposal's own values."""
    scenario = policy.scenarios.get(ticket["scenario"])
    amount = ticket["request"]["refund_amount"] if refund_amount is None else refund_amount
    kind = refund_type or ticket["type"]
    return {
        "refund_amount_yuan": yuan(amount),
        "paid_amount_yuan": yuan(ticket["order"]["paid_amount"]),
        "refund_type_label": REFUND_TYPE_LABELS.get(kind, kind),
        "scenario_label": scenario.label if scenario else ticket["scenario"],
        "buyer_reason": ticket.get("buyer_reason", ""),
    }


def render(template: str | None, values: Mapping[str, str]) -> str | None:
    if template is None:
        return None
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
