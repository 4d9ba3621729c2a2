"""A request body the merchant is about to send to the platform → the engine's action and check
payload, for the three calls the guide's merchant moves are made with:

- `merchantupdateaftersale` (商家协商) → `negotiate` / `modify_negotiation` (engine/wechat/proposal.py);
- `acceptapply` (同意售后) → `agree`;
- `rejectapply` (拒绝售后) → `reject` (10021068 where a negotiation must come first, 10021051 while
  a complaint is open: both are rules of the policy, answered by `Engine.check`).

Which endpoint a body is for: `endpoint` when the caller says it, else the keys only one endpoint
has (`merchant_update_type`..., `reject_reason_type`, `accept_type` / `address_id`); a body with
none of them is read as merchantupdateaftersale, the endpoint this module first served.

Which of negotiate / modify_negotiation a merchantupdateaftersale body is: modify_negotiation only
while the pending proposal still awaits the buyer at `at`. A proposal whose window has passed
was handed back to the merchant (二-2.1-(2)): the next body is a new negotiation, exactly as
`decide` says (`pending_timed_out`). The engine itself answers that question, so the two agree.
"""
from __future__ import annotations

from typing import Any

from engine.core.errors import EngineError, InputError
from engine.core.jsonschema_errors import json_type
from engine.wechat.proposal import BODY_KEYS, proposal_from_platform
from engine.wechat.reader import Problems, Reader

ACCEPT_KEYS = {"after_sale_order_id", "address_id", "accept_type"}
REJECT_KEYS = {"after_sale_order_id", "reject_reason_type", "reject_reason"}
KEYS_BY_ENDPOINT = {"merchantupdateaftersale": BODY_KEYS, "acceptapply": ACCEPT_KEYS, "rejectapply": REJECT_KEYS}
ENDPOINTS = tuple(KEYS_BY_ENDPOINT)

# acceptapply.accept_type: 1 agrees to the return (return-refund or exchange), 2 refunds now
# (refund-only, or the returned goods were received). Absent: the platform picks from the status.
ACCEPT_TYPES = {1: "agree to the return", 2: "refund now"}


def endpoint_of(request_body: dict[str, Any], endpoint: str | None, base: str = "") -> str:
    """The endpoint a body is for (see the module docstring). Raises InputError on an unknown
    endpoint name or a body mixing keys only two different endpoints have."""
    if endpoint is not None:
        if endpoint not in KEYS_BY_ENDPOINT:
            raise InputError([{"path": "/endpoint", "code": "unknown_value",
                               "message": f"`{endpoint}` is not an endpoint this check knows (known: {', '.join(ENDPOINTS)})"}],
                             "unknown endpoint")
        return endpoint
    shared = {"after_sale_order_id"}
    hits = [name for name, keys in KEYS_BY_ENDPOINT.items() if set(request_body) & (keys - shared)]
    if len(hits) > 1:
        raise InputError([{"path": base or "/", "code": "ambiguous_endpoint",
                           "message": f"the body has keys of {' and '.join(hits)}: send one call's body, "
                                      f"or say which with `endpoint`"}], "ambiguous request body")
    return hits[0] if hits else "merchantupdateaftersale"


def request_from_platform(request_body: Any, ticket: dict[str, Any], engine: Any, *, at: Any = None,
                          version: str | None = None, endpoint: str | None = None,
                          base: str = "") -> tuple[str, dict[str, Any]]:
    """(engine action, check payload) for a request body of `endpoint` (or the one its keys name).

    `engine`: the Engine that will answer the check, asked with the same `at` and `version`, so the
    body's action is the one its decision has in mind. Raises InputError with pointers into the body."""
    if not isinstance(request_body, dict):
        raise InputError([{"path": base or "/", "code": "wrong_type",
                           "message": f"the request body must be an object, not {json_type(request_body)}"}],
                         "invalid request body")
    name = endpoint_of(request_body, endpoint, base)
    if name == "merchantupdateaftersale":
        policy = engine.policy(version or engine.version_at(at))
        return proposal_from_platform(request_body, ticket, policy, base=base,
                                      pending_live=_pending_live(engine, ticket, at, version))
    problems = Problems()
    body = Reader(request_body, base, problems)
    body.unknown_keys(KEYS_BY_ENDPOINT[name])
    ticket_id = body.string("after_sale_order_id")
    if ticket_id is not None and ticket_id != ticket.get("ticket_id"):
        problems.add(body.at("after_sale_order_id"), "wrong_ticket",
                     f"the body is for after-sale order {ticket_id}, the ticket is {ticket.get('ticket_id')}")
    if name == "acceptapply":
        body.string("address_id", required=False)
        accept_type = body.choice("accept_type", ACCEPT_TYPES, "accept_type (1 agree to the return, 2 refund now)",
                                  required=False)
        if accept_type == ACCEPT_TYPES[1] and ticket.get("type") != "return_refund":
            problems.add(body.at("accept_type"), "contradicts_type",
                         f"accept_type 1 agrees to a return; this after-sale is {ticket.get('type')}")
        problems.raise_if_any("cannot read the acceptapply body")
        return "agree", {}
    # rejectapply: the reason list (getaftersalerejectreason) is the platform's; only its shape is read
    body.integer("reject_reason_type", minimum=1)
    body.string("reject_reason", required=False)
    problems.raise_if_any("cannot read the rejectapply body")
    return "reject", {}


def _pending_live(engine: Any, ticket: dict[str, Any], at: Any, version: str | None) -> bool:
    """Does the ticket's pending proposal still await the buyer at `at`? As the engine decides it
    (the window of the version in force when the proposal was made, unless a version is pinned)."""
    if not (ticket.get("negotiation") or {}).get("pending"):
        return False
    try:
        decision = engine.decide(ticket, "merchant", at=at, version=version)
    except EngineError:
        return True  # the check that follows reports the same problem with its own pointers
    return not decision["pending_timed_out"]
