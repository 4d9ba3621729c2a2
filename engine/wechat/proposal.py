"""A `merchantupdateaftersale` request body (商家协商) → the engine's action and check payload.

Only the shape is judged here. Whether the proposal is allowed (amount above paid, reason not
offered, images missing where the reason needs them, ...) is the policy's question, answered by
`Engine.check`: missing `media_ids` therefore maps to `evidence_count: 0`, which check reports as
EVIDENCE_REQUIRED when the reason needs images, exactly as the platform refuses it.
"""
from __future__ import annotations

from typing import Any

from engine.core.errors import InputError
from engine.core.problems import Problem
from engine.wechat import codes
from engine.core.jsonschema_errors import json_type
from engine.wechat.reader import Problems, Reader
from engine.wechat.reasons import reason_id_for_code

BODY_KEYS = {"after_sale_order_id", "merchant_update_type", "type", "amount", "update_reason_type",
             "merchant_update_desc", "media_ids"}


def proposal_from_platform(request_body: dict[str, Any], ticket: dict[str, Any], policy: Any, *, base: str = "",
                           pending_live: bool | None = None) -> tuple[str, dict[str, Any]]:
    """(`negotiate` or `modify_negotiation`, check payload) for a merchantupdateaftersale body.

    `modify_negotiation` when the ticket has a pending proposal that still awaits the buyer (the
    platform uses one endpoint for both). `pending_live`: whether it does at the moment asked;
    None means "the ticket's pending proposal, if any, is live" (a caller without a clock).
    engine/wechat/calls.py asks the engine, so a timed-out proposal makes the body a new
    negotiation, as `decide` says. `policy` is the Policy version the request is judged by: it
    maps `update_reason_type` to a reason id. Raises InputError with pointers into the body."""
    if not isinstance(request_body, dict):
        raise InputError([Problem("wrong_type", f"the request body must be an object, not {json_type(request_body)}", base or "/")],
                         "invalid merchantupdateaftersale body")
    problems = Problems()
    body = Reader(request_body, base, problems)
    body.unknown_keys(BODY_KEYS)

    ticket_id = body.string("after_sale_order_id", required=False)
    if ticket_id is not None and ticket_id != ticket.get("ticket_id"):
        problems.add(body.at("after_sale_order_id"), "wrong_ticket",
                     f"the body is for after-sale order {ticket_id}, the ticket is {ticket.get('ticket_id')}")

    negotiation_type = body.choice("merchant_update_type", codes.MERCHANT_UPDATE_TYPE, "merchant_update_type")
    modifies = negotiation_type == "modify_request"  # the other types change neither type nor amount
    payload: dict[str, Any] = {"type": negotiation_type}

    code = body.integer("update_reason_type")
    if code is not None:
        payload["reason"] = reason_id_for_code(policy, code, negotiation_type=negotiation_type,
                                               ticket_type=ticket.get("type"),
                                               where=body.at("update_reason_type"), problems=problems)
    refund_type = body.choice("type", codes.AFTER_SALE_TYPE_TO_REFUND_TYPE, "after-sale type (1 refund-only, 2 return-refund)",
                              required=modifies)
    amount = body.integer("amount", required=modifies)
    if refund_type is not None:
        payload["refund_type"] = refund_type
    if amount is not None:
        payload["refund_amount"] = amount
    payload["message"] = body.string("merchant_update_desc", required=False, default="")
    payload["evidence_count"] = len(body.string_list("media_ids", required=False, default=[]))

    problems.raise_if_any("cannot read the merchantupdateaftersale body")
    live = bool((ticket.get("negotiation") or {}).get("pending")) if pending_live is None else pending_live
    return ("modify_negotiation" if live else "negotiate"), payload
