"""Action payloads for `check`: their shape (schemas/check.schema.json) and the `p_*` facts the
payload-stage rules read (docs/design.md, "Facts").

Shape problems (wrong type, unknown key, negative amount) raise PayloadError: the caller sent
something that is not a payload. Everything the policy forbids (an amount above the paid amount,
an empty reject reason, a reason not offered) is left to the rules and comes back as violations.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Mapping

from engine.core.errors import PayloadError
from engine.core.jsonschema_errors import JsonChecker
from engine.policy.model import Policy
from engine.core.resources import schema_path

PROPOSAL_ACTIONS = ("negotiate", "modify_negotiation")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path("check.schema.json").read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=None)
def _checker(action: str) -> JsonChecker:
    return JsonChecker({"$defs": _schema()["$defs"], "$ref": f"#/$defs/payloads/{action}"})


def validate_payload(action: str, payload: Any) -> Mapping[str, Any]:
    """`payload` itself when well-formed for `action`; else PayloadError with every problem.
    `action` must be a known action (the caller checked)."""
    problems = _checker(action).problems(payload)
    if problems:
        raise PayloadError(problems)
    checked: Mapping[str, Any] = payload
    return checked


def payload_facts(policy: Policy, ticket: Mapping[str, Any], facts: Mapping[str, Any],
                  action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The `p_*` facts of one payload (only those of its action: the others stay absent, and a
    rule naming an absent fact does not fire)."""
    if action in PROPOSAL_ACTIONS:
        return _proposal_facts(policy, ticket, facts, payload)
    if action == "reject_negotiation":
        return {"p_reject_reason_length": len((payload.get("reason") or "").strip())}
    if action == "modify_return_logistics":
        number = (payload.get("tracking_number") or "").strip()
        return {
            "p_tracking_number_length": len(number),
            "p_carrier_matched": bool(number) and match_carrier(policy, number) is not None,
            "p_carrier_given": bool((payload.get("carrier") or "").strip()),
        }
    return {}


def _proposal_facts(policy: Policy, ticket: Mapping[str, Any], facts: Mapping[str, Any],
                    payload: Mapping[str, Any]) -> dict[str, Any]:
    kind = payload["type"]
    reason_id = payload["reason"]
    reason = policy.reasons.get(reason_id)
    scenario = policy.scenarios[ticket["scenario"]]
    offered = (reason is not None and reason.negotiation_type == kind
               and reason_id in scenario.reasons.get(kind, ())
               and facts["ticket_type"] in reason.ticket_types)
    # Omitted refund type / amount mean "unchanged" (allowed for the types that change neither).
    refund_type = payload.get("refund_type", facts["ticket_type"])
    refund_amount = int(payload.get("refund_amount", facts["requested_amount"]))
    buyer_reason = payload.get("buyer_reason")
    quantity = payload.get("quantity")
    return {
        "p_type": kind,
        "p_reason": reason_id,
        "p_reason_type": reason.negotiation_type if reason else "",
        "p_reason_offered": offered,
        "p_reason_evidence_required": bool(reason and reason.evidence_required
                                           and policy.feature_enabled("merchant_evidence")),
        # the refund type the reason's text implies ("" when none, or no such reason)
        "p_reason_refund_type": (reason.refund_type or "") if reason else "",
        "p_refund_type": refund_type,
        "p_refund_amount": refund_amount,
        "p_evidence_count": int(payload.get("evidence_count", 0)),
        "p_message_length": len(payload.get("message") or ""),
        "p_reason_changed": buyer_reason is not None and buyer_reason != ticket["buyer_reason"],
        "p_quantity_changed": quantity is not None and int(quantity) != facts["quantity"],
        "p_type_changed": refund_type != facts["ticket_type"],
        "p_amount_changed": refund_amount != facts["requested_amount"],
    }


def match_carrier(policy: Policy, tracking_number: str) -> str | None:
    """The name of the first carrier whose pattern fully matches the number (四-4.2.2)."""
    for carrier in policy.carriers:
        if lua_pattern(carrier.pattern).fullmatch(tracking_number):
            return carrier.name
    return None


# Lua pattern classes (`%d`) as regex character-set bodies; the policy writes carrier patterns
# in Lua's dialect because durable_rules' `$mt` uses it, and we match them here in Python.
_LUA_CLASSES = {"a": "A-Za-z", "d": "0-9", "l": "a-z", "u": "A-Z", "w": "A-Za-z0-9",
                "x": "0-9A-Fa-f", "s": r"\s", "p": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
                "c": r"\x00-\x1f"}


@lru_cache(maxsize=256)
def lua_pattern(pattern: str) -> re.Pattern[str]:
    """Translate a Lua pattern (classes `%d %a ...`, sets, `. * + ? -`, `%x` escapes) to a regex
    for `fullmatch`. Anchors are dropped: a full match is implied."""
    out, i, in_set = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "%" and i + 1 < len(pattern):
            name = pattern[i + 1]
            body = _LUA_CLASSES.get(name.lower())
            if body is None:
                out.append(re.escape(name))
            elif in_set:
                out.append(body)  # a complemented class inside a set is not supported: rare
            else:
                out.append(f"[{'^' if name.isupper() else ''}{body}]")
            i += 2
            continue
        if in_set:
            in_set = char != "]"
            out.append(char if char not in "\\[" else "\\" + char)
        elif char == "[":
            in_set = True
            out.append("[")
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
        elif char == "-":
            out.append("*?")  # Lua's lazy star
        elif char in ".*+?":
            out.append(char)
        elif (char == "^" and i == 0) or (char == "$" and i == len(pattern) - 1):
            pass
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))
