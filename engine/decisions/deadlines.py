"""The deadlines a ticket runs against, as ISO times (docs/design.md, "The decision")."""
from __future__ import annotations

from typing import Any, Mapping

from engine.core.timeutil import iso
from engine.decisions.results import Deadlines
from engine.decisions.situation import Situation


def deadlines(situation: Situation, facts: Mapping[str, Any]) -> Deadlines:
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
    policy = situation.policy
    receipt = facts.get("receipt_deadline")
    extension = policy.timeouts.receipt_extension
    if_extended = None
    if (extension is not None and receipt is not None and not facts["receipt_extension_used"]
            and not facts["return_signed"]):
        if_extended = iso(receipt + extension.extension_hours * 3600)
    after_sign = None
    hours = policy.timeouts.processing_after_sign_hours
    if hours is not None and situation.signed_at is not None and facts["receipt_extension_used"]:
        after_sign = iso(situation.signed_at + hours * 3600)
    if after_sign is not None:
        governing: str | None = "processing_after_sign"
    elif receipt is not None and facts["status"] == "awaiting_merchant_receipt":
        governing = "receipt"
    else:
        governing = None
    return Deadlines(iso(facts.get("buyer_response_deadline")), iso(receipt), if_extended, after_sign, governing)
