"""The deadlines a ticket runs against, as ISO times (docs/design.md, "The decision")."""
from __future__ import annotations

from typing import Any, Mapping

from engine.decisions.facts import epoch
from engine.policy.model import Policy
from engine.core.timeutil import iso


def deadlines(policy: Policy, ticket: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, str | None]:
    """- buyer_response: when the pending proposal times out (null when none is pending);
    - receipt: the receiving deadline in force (the ticket's, already extended if it was);
    - receipt_if_extended: receipt + extension_hours, while an extension is still possible
      (not used yet, parcel not signed, the policy has the feature);
    - processing_after_sign: signed_at + processing_after_sign_hours when the parcel was signed
      after the merchant extended the receipt time (四-4.1.1: 签收后48小时内完成售后处理);
    - merchant_deadline: which of those governs the merchant's handling now, by name:
      `processing_after_sign` once it is set (the parcel was signed within the extension, so the
      receipt deadline no longer applies), else `receipt` while the ticket awaits the merchant's
      receipt, else null."""
    logistics = ticket.get("return_logistics") or {}
    receipt = facts.get("receipt_deadline")
    out: dict[str, str | None] = {
        "buyer_response": iso(facts.get("buyer_response_deadline")),
        "receipt": iso(receipt),
        "receipt_if_extended": None,
        "processing_after_sign": None,
    }
    extension = policy.timeouts.receipt_extension
    if (extension is not None and receipt is not None and not facts["receipt_extension_used"]
            and not facts["return_signed"]):
        out["receipt_if_extended"] = iso(receipt + extension.extension_hours * 3600)
    hours = policy.timeouts.processing_after_sign_hours
    signed_at = logistics.get("signed_at")
    if hours is not None and signed_at and facts["receipt_extension_used"]:
        out["processing_after_sign"] = iso(epoch(signed_at) + hours * 3600)
    if out["processing_after_sign"] is not None:
        out["merchant_deadline"] = "processing_after_sign"
    elif out["receipt"] is not None and facts["status"] == "awaiting_merchant_receipt":
        out["merchant_deadline"] = "receipt"
    else:
        out["merchant_deadline"] = None
    return out
