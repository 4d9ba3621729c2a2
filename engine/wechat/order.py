"""A `getaftersaleorder` payload (+ what the platform does not keep) → ticket facts.

The platform stores the after-sale order; it keeps no negotiation count, edit count, history, paid
amount, category or scenario (see the API note). Those come in `context`, read as strictly as the
payload. Paths in errors are JSON pointers: into the payload as given (with `/after_sale_order`
when the whole response was passed), and `/context/...` for the context.

Mapping rules that are choices, not facts of the API (docs/wechat.md explains each):
- `deadline`: a value < 10**9 is seconds left, counted from `context.fetched_at` when given, else
  from `update_time`; a value >= 10**9 is an absolute epoch. It is used as the return's receipt
  deadline in MERCHANT_WAIT_RECEIPT (unless `context.receipt_deadline` says otherwise).
- the pending proposal's `proposed_at`: `context.proposed_at`, else `update_time` (the platform
  moves to USER_WAIT_CONFIRM_UPDATE when the proposal is sent).
- a proposal's stage is awaiting_merchant_receipt when a RETURN ticket already has a return
  waybill (the buyer shipped the goods back), else merchant_processing; `context.pending_stage`
  overrides.
- `complaint_id` on a non-terminal ticket means the platform has stepped in (platform_intervention);
  `context.platform_intervention` overrides (a complaint may have been closed since).
"""
from __future__ import annotations

from dataclasses import replace

from typing import Any

from engine.core.errors import InputError, TicketError
from engine.core.problems import Problem
from engine.decisions.ticket import validate_ticket
from engine.core.timeutil import iso
from engine.wechat import codes
from engine.core.jsonschema_errors import json_type
from engine.wechat.reader import Problems, Reader
from engine.wechat.reasons import reason_id_for_code

GOODS_KINDS = {"physical": "physical", "virtual": "virtual"}
LAST_OUTCOMES = {v: v for v in ("none", "pending", "accepted", "rejected", "timed_out")}
PENDING_STAGES = {v: v for v in ("merchant_processing", "awaiting_merchant_receipt")}

# What a caller may put in `context` (anything else is a typo worth reporting).
CONTEXT_KEYS = {
    "paid_amount", "category", "goods_kind", "scenario", "order_shipped",
    "negotiations_used", "last_outcome", "proposal_edits", "proposed_at", "pending_stage",
    "tracking_fixes_used", "receipt_extension_used", "return_uploaded_at", "signed_at",
    "receipt_deadline", "intercept_requested", "platform_intervention", "fetched_at",
    "aftersale_period_ends_at",
}


def unwrap_order(payload: Any, base: str = "") -> Reader:
    """The `after_sale_order` object of a response (or the bare object), as a Reader.

    Raises at once: nothing else can be read without it."""
    if not isinstance(payload, dict):
        raise InputError([Problem("wrong_type", f"the platform payload must be an object, not {json_type(payload)}", base or "/")],
                         "invalid platform payload")
    if "errcode" in payload or "after_sale_order" in payload:
        errcode = payload.get("errcode", 0)
        if errcode != 0:
            raise InputError([Problem("platform_error", f"the platform answered errcode {errcode!r} "
                                          f"({payload.get('errmsg', 'no errmsg')}): there is no after-sale order to read", f"{base}/errcode")],
                             "platform error response")
        inner = payload.get("after_sale_order")
        if not isinstance(inner, dict):
            what = "missing" if inner is None else f"{json_type(inner)}, not an object"
            raise InputError([Problem("missing_field" if inner is None else "wrong_type", f"`after_sale_order` is {what}: pass the getaftersaleorder response or its after_sale_order object", f"{base}/after_sale_order")],
                             "invalid platform payload")
        return Reader(inner, f"{base}/after_sale_order", Problems())
    if "after_sale_order_id" not in payload and "status" not in payload:
        raise InputError([Problem("missing_field", "no `after_sale_order` (and the object is not one itself: it has no "
                                      "after_sale_order_id or status)", f"{base}/after_sale_order")], "invalid platform payload")
    return Reader(payload, base, Problems())


def ticket_from_platform(order_payload: dict[str, Any], context: dict[str, Any], *, policy: Any = None,
                         base: str = "", context_base: str = "/context",
                         warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Ticket facts (schemas/ticket.schema.json) for a WeChat after-sale order.

    `policy`: a Policy, or an Engine (the version in force when the proposal was made is used);
    needed only to name a pending proposal's reason; None loads the bundled rules once.
    `base` / `context_base` prefix the JSON pointers in errors (the CLI file nests both).
    `warnings`: what was read but not understood without blocking the answer is appended here
    (`{path, code, message}`): today an `update_reason_type` the policy does not know in the pending
    proposal (the platform adds reasons before the policy does; no decision depends on the reason).
    Raises InputError listing every problem found."""
    order = unwrap_order(order_payload, base)
    problems = order.problems
    if not isinstance(context, dict):
        raise InputError([Problem("wrong_type", f"`context` must be an object, not {json_type(context)}", context_base)], "invalid context")
    ctx = Reader(context, context_base, problems)
    ctx.unknown_keys(CONTEXT_KEYS)
    stepped_in = _platform_stepped_in(order, ctx)
    status = _ticket_status(order, stepped_in)  # raises: a status without a ticket status ends the reading
    ticket_type = _ticket_type(order)

    platform_status = order.data["status"]
    update_time = order.epoch("update_time", required=False)
    product = order.child("product_info")
    refund = order.child("refund_info")
    details = order.child("details", required=False)
    returns = order.child("return_info", required=False)
    waybill = returns.string("waybill_id", required=False, default="") if returns else ""

    quantity = product.integer("count", minimum=1) if product else None
    ticket: dict[str, Any] = {
        "ticket_id": order.string("after_sale_order_id"),
        "type": ticket_type,
        "status": status,
        "scenario": ctx.string("scenario"),
        "buyer_reason": _buyer_reason(order),
        "created_at": iso(order.epoch("create_time")),
        "order": {
            "paid_amount": ctx.integer("paid_amount"),
            "category": ctx.string("category"),
            "goods_kind": ctx.choice("goods_kind", GOODS_KINDS, "goods kind", required=False, default="physical"),
            "quantity": quantity,
            "shipped": _order_shipped(ctx, details, waybill, ticket_type),
        },
        "request": {
            "refund_amount": refund.integer("amount") if refund else None,
            "quantity": quantity,
            "evidence_count": _buyer_evidence(details),
        },
    }

    has_pending = platform_status == "USER_WAIT_CONFIRM_UPDATE"
    pending = (_pending(order, ctx, policy, ticket_type, waybill, update_time,
                        [] if warnings is None else warnings) if has_pending else None)
    ticket["negotiation"] = _negotiation(ctx, pending, has_pending)
    if stepped_in:  # rejectapply answers 10021051 (存在进行中的纠纷单) while a complaint is open
        ticket["complaint"] = {"open": True}
    period_end = ctx.time("aftersale_period_ends_at", required=False)
    if period_end is not None:
        ticket["aftersale_period_ends_at"] = iso(period_end)

    deadline = _absolute_deadline(order, ctx, update_time)
    logistics = _return_logistics(ctx, returns, waybill, platform_status, deadline)
    if logistics is not None:
        ticket["return_logistics"] = logistics
    intercepting = platform_status == "WAIT_PACKAGE_INTERCEPT"
    requested = ctx.boolean("intercept_requested", required=False, default=intercepting)
    if intercepting and requested is False:
        problems.add(ctx.at("intercept_requested"), "contradicts_status",
                     "the platform status WAIT_PACKAGE_INTERCEPT says an interception is under way")
    ticket["intercept"] = {"requested": bool(requested)}

    problems.raise_if_any("cannot read the platform after-sale order")
    return _validated(ticket, order.path, context_base)


# Where each ticket field came from, so that a ticket-level problem (a refund above the paid
# amount, say) points at the payload or context field the caller has to fix.
TICKET_SOURCES = {
    "/request/refund_amount": "{order}/refund_info/amount",
    "/request/quantity": "{order}/product_info/count",
    "/order/quantity": "{order}/product_info/count",
    "/order/paid_amount": "{context}/paid_amount",
    "/negotiation/count": "{context}/negotiations_used",
    "/negotiation/pending/refund_amount": "{order}/merchant_update_detail/new_after_sale_amount",
    "/negotiation/pending/stage": "{context}/pending_stage",
    "/status": "{order}/status",
}


def _validated(ticket: dict[str, Any], order_path: str, context_base: str) -> dict[str, Any]:
    try:
        return validate_ticket(ticket)
    except TicketError as exc:
        problems = [replace(p, path=TICKET_SOURCES.get(p.path, "{order}").format(order=order_path, context=context_base),
                            message=f"{p.message} (ticket field {p.path})")
                    for p in exc.problems]
        raise InputError(problems, "the platform after-sale order makes an impossible ticket") from None


# -- status and type ---------------------------------------------------------------------------------

def _platform_stepped_in(order: Reader, ctx: Reader) -> bool:
    complaint = order.string("complaint_id", required=False, default="")
    return bool(ctx.boolean("platform_intervention", required=False, default=bool(complaint)))


def _ticket_status(order: Reader, stepped_in: bool) -> str:
    value = order.data.get("status")
    where = order.at("status")
    if value in codes.STATUS_TO_TICKET:
        status = codes.STATUS_TO_TICKET[value]
        # A complaint on an open ticket: the platform has stepped in. A pending proposal keeps its
        # status (the buyer's answer is still awaited whatever the complaint).
        if stepped_in and status not in codes.TERMINAL_TICKET_STATUSES and status != "awaiting_buyer_response":
            return "platform_intervention"
        return status
    if value == "RETURN_CLOSED" and stepped_in:
        return "platform_intervention"
    if value in codes.NOT_NEGOTIABLE:
        raise InputError([Problem("status_not_negotiable", codes.NOT_NEGOTIABLE[value], where)],
                         f"not negotiable in platform status {value}")
    message = ("`status` is required" if value is None else
               f"`{value}` is not a platform after-sale status (known: {', '.join(codes.ALL_STATUSES)})")
    raise InputError([Problem("missing_field" if value is None else "unknown_status", message, where)],
                     "unknown platform status")


def _ticket_type(order: Reader) -> str:
    value = order.data.get("type")
    where = order.at("type")
    if value in codes.ORDER_TYPE_TO_REFUND_TYPE:
        return codes.ORDER_TYPE_TO_REFUND_TYPE[value]
    if value in codes.OUT_OF_SCOPE_ORDER_TYPES:
        raise InputError([Problem("out_of_scope", codes.OUT_OF_SCOPE_ORDER_TYPES[value], where)],
                         "after-sale type out of scope")
    known = ", ".join([*codes.ORDER_TYPE_TO_REFUND_TYPE, *codes.OUT_OF_SCOPE_ORDER_TYPES])
    message = "`type` is required" if value is None else f"`{value!r}` is not a platform after-sale type (known: {known})"
    raise InputError([Problem("missing_field" if value is None else "unknown_value", message, where)],
                     "unknown after-sale type")


# -- fields ------------------------------------------------------------------------------------------

def _buyer_reason(order: Reader) -> str | None:
    text: str | None = order.string("reason_text", required=False)
    if text is None:
        text = order.string("reason", required=False)
    if text is None:
        order.problems.add(order.at("reason_text"), "missing_field", "`reason_text` (or `reason`) is required: the buyer's reason")
    return text


def _buyer_evidence(details: Reader | None) -> int:
    """Images the buyer attached. `prove_imgs` (URLs) and `media_id_list` (ids) describe the same
    uploads in two forms, so the larger count is taken rather than the sum."""
    if details is None:
        return 0
    urls = details.string_list("prove_imgs", required=False, default=[])
    ids = details.string_list("media_id_list", required=False, default=[])
    return max(len(urls), len(ids))


def _order_shipped(ctx: Reader, details: Reader | None, waybill: str, ticket_type: str) -> bool | None:
    """The after-sale order does not say whether the order shipped; a buyer who received the goods
    or sends them back proves it did. Otherwise the caller must say."""
    given: bool | None = ctx.boolean("order_shipped", required=False)
    if given is not None:
        return given
    received = details.boolean("receive_product", required=False) if details else None
    if received or waybill or ticket_type == "return_refund":
        return True
    ctx.problems.add(ctx.at("order_shipped"), "missing_field",
                     "`order_shipped` is required: the after-sale order does not show whether the order shipped "
                     "(details.receive_product is not true and there is no return)")
    return None


def _absolute_deadline(order: Reader, ctx: Reader, update_time: int | None) -> int | None:
    raw: int | None = order.integer("deadline", required=False, minimum=0)
    if raw is not None and not order.not_milliseconds("deadline", raw):
        return None
    if raw is None or raw >= codes.DEADLINE_EPOCH_THRESHOLD:
        return raw
    anchor: int | None = ctx.time("fetched_at", required=False, default=update_time)
    if anchor is None:
        order.problems.add(order.at("deadline"), "deadline_without_anchor",
                           f"`deadline` {raw} is seconds left, which needs `update_time` or `context.fetched_at` to count from")
        return None
    return anchor + raw


def _negotiation(ctx: Reader, pending: dict[str, Any] | None, has_pending: bool) -> dict[str, Any]:
    """`has_pending`: the platform status says a proposal is pending (USER_WAIT_CONFIRM_UPDATE),
    even when `merchant_update_detail` is missing (already reported: no second, spurious error)."""
    used = ctx.integer("negotiations_used")
    outcome = ctx.choice("last_outcome", LAST_OUTCOMES, "last outcome", required=False)
    if pending is None and has_pending:
        return {"count": used, "last_outcome": "pending"}
    if pending is not None:
        if outcome not in (None, "pending"):
            ctx.problems.add(ctx.at("last_outcome"), "contradicts_status",
                             f"`{outcome}` contradicts platform status USER_WAIT_CONFIRM_UPDATE (a proposal is pending)")
        if used is not None and used < 1:
            ctx.problems.add(ctx.at("negotiations_used"), "contradicts_status",
                             "a proposal is pending, so at least 1 negotiation was used (the count includes it)")
        outcome = "pending"
    elif outcome == "pending":
        ctx.problems.add(ctx.at("last_outcome"), "contradicts_status",
                         "`pending`, but the platform status is not USER_WAIT_CONFIRM_UPDATE: no proposal is pending")
    elif outcome is None:
        if used:  # the platform forgets how an earlier proposal ended; the decision depends on it
            ctx.problems.add(ctx.at("last_outcome"), "missing_field",
                             "`last_outcome` is required once a negotiation was used (accepted, rejected or timed_out)")
        outcome = "none"
    out: dict[str, Any] = {"count": used, "last_outcome": outcome}
    if pending is not None:
        out["pending"] = pending
    return out


def _pending(order: Reader, ctx: Reader, policy: Any, ticket_type: str, waybill: str,
             update_time: int | None, warnings: list[dict[str, Any]]) -> dict[str, Any] | None:
    detail = order.child("merchant_update_detail")
    if detail is None:
        return None
    proposed_at = ctx.time("proposed_at", required=False, default=update_time)
    if proposed_at is None:
        order.problems.add(order.at("update_time"), "missing_field",
                           "`update_time` (or `context.proposed_at`) is required to time the pending proposal")
    negotiation_type = detail.choice("merchant_update_type", codes.MERCHANT_UPDATE_TYPE, "merchant_update_type")
    code = detail.integer("update_reason_type")
    reason = None
    if code is not None:
        resolved = _resolve_policy(policy, proposed_at)
        found = Problems()
        reason = reason_id_for_code(resolved, code, negotiation_type=negotiation_type, ticket_type=ticket_type,
                                    where=detail.at("update_reason_type"), problems=found)
        for item in found.items:
            # A reason the platform added before the policy did: no decision reads the pending
            # proposal's reason, so decide anyway and flag it. Ambiguity stays an error.
            if item.code == "unknown_reason_code":
                warnings.append(dict(item.to_json(), message=item.message + "; decided without it"))
            else:
                order.problems.add(item.path, item.code, item.message)
    pending: dict[str, Any] = {"type": negotiation_type, "proposed_at": iso(proposed_at)}
    if reason is not None:
        pending["reason"] = reason
    modifies = negotiation_type == "modify_request"  # the only type that must name a new plan
    new_type = detail.choice("new_after_sale_type", codes.AFTER_SALE_TYPE_TO_REFUND_TYPE, "after-sale type",
                             required=modifies)
    new_amount = detail.integer("new_after_sale_amount", required=modifies)
    if new_type is not None:
        pending["refund_type"] = new_type
    if new_amount is not None:
        pending["refund_amount"] = new_amount
    old_type = detail.choice("old_after_sale_type", codes.AFTER_SALE_TYPE_TO_REFUND_TYPE, "after-sale type",
                             required=False)
    if old_type is not None and old_type != ticket_type:
        order.problems.add(detail.at("old_after_sale_type"), "contradicts_type",
                           f"the proposal says the buyer asked for {old_type}, the order's type says {ticket_type}")
    pending["edits"] = ctx.integer("proposal_edits", required=False, default=0)
    pending["evidence_count"] = len(detail.string_list("media_ids", required=False, default=[]))
    pending["message"] = detail.string("merchant_update_desc", required=False, default="")
    inferred = "awaiting_merchant_receipt" if ticket_type == "return_refund" and waybill else "merchant_processing"
    pending["stage"] = ctx.choice("pending_stage", PENDING_STAGES, "proposal stage", required=False, default=inferred)
    return pending


def _return_logistics(ctx: Reader, returns: Reader | None, waybill: str, platform_status: str,
                      deadline: int | None) -> dict[str, Any] | None:
    """Present once the buyer has shipped the goods back (a waybill), or when the caller tells us
    about the return; absent otherwise, as in a hand-written ticket."""
    carrier = returns.string("delivery_name", required=False, default="") if returns else ""
    receipt = ctx.time("receipt_deadline", required=False)
    if receipt is None and platform_status == "MERCHANT_WAIT_RECEIPT":
        receipt = deadline
    out = {
        "tracking_number": waybill or None,
        "carrier": carrier or None,
        "uploaded_at": iso(ctx.time("return_uploaded_at", required=False)),
        "signed_at": iso(ctx.time("signed_at", required=False)),
        "receipt_deadline": iso(receipt),
        "extension_used": ctx.boolean("receipt_extension_used", required=False, default=False),
        "fixes_used": ctx.integer("tracking_fixes_used", required=False, default=0),
    }
    told = any(ctx.has(k) for k in ("signed_at", "receipt_deadline", "receipt_extension_used",
                                    "tracking_fixes_used", "return_uploaded_at"))
    if not (waybill or told or platform_status == "MERCHANT_WAIT_RECEIPT"):
        return None
    return out


def _resolve_policy(policy: Any, at: int | None) -> Any:
    """A Policy from what the caller gave: a Policy, an Engine (version in force at `at`), or
    None (the bundled rules, loaded once)."""
    if policy is None:
        from engine.wechat.bundled import bundled_engine
        policy = bundled_engine()
    if hasattr(policy, "version_at"):
        from engine.core.timeutil import from_epoch
        when = from_epoch(at) if at is not None else None
        policy = policy.policy(policy.version_at(when))
    return policy
