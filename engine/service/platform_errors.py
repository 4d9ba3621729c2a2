"""Locating what the platform mapping could not read.

The platform payloads (`order`, `context`, `body` of /v1/wechat/*) are checked field by field by
engine.wechat, which reports its own problems with pointers. When a value of a shape it does not
expect still slips through and breaks the mapping or the rules runtime (an object where a status
code belongs, an epoch in milliseconds, an integer past 2**53), the client gets a 422 all the
same, located here: the body is searched for the values that explain the failure. Only when none
is found does the problem point at the part as a whole.

This runs only after a failure, so it never changes the answer to a payload the mapping reads.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator

from engine.service.errors import ApiError

logger = logging.getLogger("aftersale.service")

# The fields engine.wechat reads as one value (a code, a number, a text, a flag), never an object
# or a list; from the platform's documents (docs/wechat.md) and engine/wechat/order.py.
SCALAR_FIELDS = frozenset({
    "after_sale_order_id", "order_id", "status", "type", "sub_type", "reason", "reason_text", "complaint_id",
    "create_time", "update_time", "deadline", "count", "amount", "waybill_id", "delivery_id", "delivery_name",
    "receive_product", "merchant_update_type", "update_reason_type", "new_after_sale_type",
    "new_after_sale_amount", "old_after_sale_type", "merchant_update_desc", "errcode", "errmsg",
    "paid_amount", "category", "goods_kind", "scenario", "negotiations_used", "last_outcome",
    "proposal_edits", "pending_stage", "tracking_fixes_used", "order_shipped", "intercept_requested",
    "platform_intervention", "receipt_extension_used", "ticket_id",
})
# Epoch seconds: the platform's times. 2**32 s is the year 2106; a larger value is milliseconds.
EPOCH_FIELDS = frozenset({"create_time", "update_time", "deadline"})
EPOCH_LIMIT = 2**32
SAFE_INTEGER = 2**53  # the rules runtime compares integers as doubles: exact up to here


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


MAX_DEPTH = 64  # payloads are a few levels deep; deeper nesting is not searched (no recursion limit hit)


def shape_problems(value: Any, path: str, depth: int = 0) -> Iterator[dict[str, str]]:
    """Values under `path` the mapping cannot read, each with its JSON pointer."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}/{_escape(str(key))}"
            if key in SCALAR_FIELDS and isinstance(item, (dict, list)):
                yield {"path": where, "code": "wrong_type",
                       "message": f"`{key}` must be a single value, not {'an object' if isinstance(item, dict) else 'a list'}"}
                continue
            if key in EPOCH_FIELDS and isinstance(item, int) and not isinstance(item, bool) and not 0 <= item < EPOCH_LIMIT:
                code = "epoch_milliseconds" if EPOCH_LIMIT <= item < EPOCH_LIMIT * 1000 else "time_out_of_range"
                yield {"path": where, "code": code,
                       "message": f"`{key}` = {item} is not an epoch time in seconds"
                                  + (" (it looks like milliseconds)" if code == "epoch_milliseconds" else "")}
                continue
            yield from shape_problems(item, where, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from shape_problems(item, f"{path}/{index}", depth + 1)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > SAFE_INTEGER:
        yield {"path": path, "code": "above_maximum",
               "message": f"{value} is beyond the numbers the rules compare exactly (|n| <= 2**53)"}


def unreadable(body: dict[str, Any], parts: tuple[str, ...], exc: BaseException) -> ApiError:
    """The 422 for a payload that broke the mapping: every located value that explains it."""
    problems = [p for part in parts for p in shape_problems(body.get(part), f"/{part}")]
    if not problems:
        problems = [{"path": f"/{parts[0]}", "code": "invalid",
                     "message": f"the platform payload could not be read ({type(exc).__name__}: {exc})"}]
    # one line, no traceback: the client's payload, not the service, is at fault
    logger.info("platform payload refused at %s: %s: %s", ", ".join(p["path"] for p in problems),
                type(exc).__name__, exc)
    return ApiError(422, "invalid_platform_payload", "the platform payload has values the mapping cannot read", problems)


def unreadable_input(body: Any, exc: BaseException, base: str = "") -> ApiError:
    """The 422 for a schema-valid body whose values the rules runtime still refuses (FactError);
    `base` locates `body` in the request (`/items/3` in a batch)."""
    problems = list(shape_problems(body, base)) or [
        {"path": base, "code": "not_comparable", "message": f"a value is outside what the rules compare: {exc}"}]
    logger.info("request refused at %s: %s: %s", ", ".join(p["path"] for p in problems), type(exc).__name__, exc)
    return ApiError(422, "invalid_input", "the request has values the rules runtime cannot compare", problems)
