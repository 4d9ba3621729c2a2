"""The closed word lists of docs/design.md ("Vocabulary", "Effects", "Conditions"), one place.

`schemas/policy.schema.json` repeats them as enums (a YAML editor reads the schema, not Python);
tests/test_checks.py asserts the two agree, so a word added here must be added there too.
"""
from __future__ import annotations

ACTORS = ("merchant", "buyer")
MERCHANT_ACTIONS = ("agree", "reject", "negotiate", "modify_negotiation", "extend_receipt",
                    "modify_return_logistics", "intercept_logistics", "withdraw_negotiation")
BUYER_ACTIONS = ("accept_negotiation", "reject_negotiation", "contact_merchant", "cancel_aftersale",
                 "modify_aftersale", "request_platform_intervention",
                 "update_return_logistics")  # 修改物流信息 (三-3.2.1), the buyer's own return waybill
# `timeout` is not an action anyone takes: it names the outcome rule applied when the buyer's
# response window passes (design.md: "For `outcome` rules, `action` is ... or `timeout`").
TIMEOUT = "timeout"
OUTCOME_ACTIONS = ("accept_negotiation", "reject_negotiation", TIMEOUT)
ACTIONS = MERCHANT_ACTIONS + BUYER_ACTIONS
RULE_ACTIONS = ACTIONS + (TIMEOUT,)

REFUND_TYPES = ("refund_only", "return_refund")
NEGOTIATION_TYPES = ("modify_request", "request_evidence", "invite_cancel")
CHANGEABLE_FIELDS = ("refund_type", "refund_amount")
FIXED_FIELDS = ("buyer_reason", "quantity", "refund_type", "refund_amount")
TICKET_STATUSES = ("merchant_processing", "awaiting_buyer_response", "awaiting_buyer_return",
                   "awaiting_merchant_receipt", "platform_intervention", "merchant_rejected",
                   "refunding", "refunded", "cancelled", "closed")
ANSWERS = ("accept", "reject", "timeout")
GOODS_KINDS = ("physical", "virtual")
REJECTION_MODES = ("allowed", "guided", "negotiation_required")
LAST_OUTCOMES = ("none", "pending", "accepted", "rejected", "timed_out")

STAGES = ("gate", "payload", "outcome")
EFFECTS = ("deny", "restrict", "advise", "violation", "outcome")
# which effects a rule of each stage may carry (design.md "Effects")
EFFECTS_BY_STAGE = {"gate": ("deny", "restrict", "advise"), "payload": ("violation",),
                    "outcome": ("outcome",)}
OUTCOME_EFFECTS = ("auto_refund", "return_flow", "closed", "back_to_merchant", "platform_intervention")
OUTCOME_REFUND_AMOUNTS = ("proposal", "request")
UNLOCK_KINDS = ("time", "input", "never")

CONDITION_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists")
PARAM_UNITS = ("hours", "minutes", "seconds", "days")  # as engine/conditions.py multiplies them

FEATURES = ("modify_negotiation", "extend_receipt", "modify_return_logistics", "intercept_logistics",
            "merchant_evidence", "message_templates", "rejection_guidance")

# `{name}` placeholders a reason's `template` may use (rendered by engine/decide.py)
KNOWN_PLACEHOLDERS = ("refund_amount_yuan", "paid_amount_yuan", "refund_type_label", "scenario_label",
                      "buyer_reason")
