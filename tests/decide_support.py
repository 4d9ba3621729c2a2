"""Shared by tests/test_{facts,decide,check,apply}.py: the bundled latest policy (or a variant of
it), compiled once, and a builder for realistic tickets."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

from engine.decisions.prepared import PreparedVersion
from engine.decisions.situation import Situation, make_situation
from engine.rules.compile import compile_policy
from engine.policy.model import Policy
from engine.decisions.ticket import parse_time, validate_ticket

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "rules" / "2024-05-31.yaml"


@lru_cache(maxsize=1)
def latest_document() -> dict:
    return yaml.safe_load(LATEST.read_text(encoding="utf-8"))


def _prepared(doc: dict) -> PreparedVersion:
    policy = Policy.from_document(doc)
    compiled = compile_policy(policy)
    return PreparedVersion.of(policy, compiled, compiled.open())


@lru_cache(maxsize=1)
def latest() -> tuple[Policy, PreparedVersion]:
    prepared = _prepared(latest_document())
    return prepared.policy, prepared


def variant(change: Callable[[dict], None]) -> tuple[Policy, PreparedVersion]:
    """The latest policy with `change` applied to a copy of its document (compiled anew)."""
    doc = copy.deepcopy(latest_document())
    change(doc)
    prepared = _prepared(doc)
    return prepared.policy, prepared


def situation(prepared: PreparedVersion, ticket: dict, when) -> Situation:
    """A validated ticket in `prepared`'s version (pinned: its own buyer window)."""
    return make_situation(ticket, when, prepared.policy, pinned=True, validated=True)


def at(text: str):
    return parse_time(text)


def ticket(**changes: Any) -> dict:
    """A refund_only ticket in 待商家处理 on scenario not_received (negotiation_required),
    with `changes` applied: `order__paid_amount=100` sets a nested key, a value of
    `DROP` removes it."""
    base = {
        "ticket_id": "AS-T1",
        "type": "refund_only",
        "status": "merchant_processing",
        "scenario": "not_received",
        "buyer_reason": "未收到货",
        "created_at": "2024-06-01T10:00:00+08:00",
        "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical",
                  "quantity": 1, "shipped": True},
        "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
    }
    for key, value in changes.items():
        node, parts = base, key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is DROP:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return validate_ticket(base)


DROP = object()


def pending(**fields: Any) -> dict:
    """A pending modify_request proposal made 2024-06-01 12:00 (+08:00), refund 300 元."""
    proposal = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                "refund_amount": 30000, "proposed_at": "2024-06-01T12:00:00+08:00", "edits": 0,
                "evidence_count": 1, "message": "已与您沟通，退款调整为300元"}
    proposal.update(fields)
    proposal = {k: v for k, v in proposal.items() if v is not None}  # None: leave the field out
    return {"count": 1, "last_outcome": "pending", "pending": proposal}


def with_pending(count: int = 1, **fields: Any) -> dict:
    negotiation = pending(**fields)
    negotiation["count"] = count
    return ticket(status="awaiting_buyer_response", negotiation=negotiation)


def receiving(**changes: Any) -> dict:
    """A return_refund ticket awaiting the merchant's receipt, parcel shipped back, not signed;
    receipt deadline 2024-06-10 10:00 (+08:00)."""
    fields = {
        "type": "return_refund", "status": "awaiting_merchant_receipt", "scenario": "quality_issue",
        "buyer_reason": "商品质量问题",
        "return_logistics": {"tracking_number": "SF1234567890", "carrier": "顺丰速运",
                             "uploaded_at": "2024-06-03T10:00:00+08:00", "signed_at": None,
                             "receipt_deadline": "2024-06-10T10:00:00+08:00", "extension_used": False,
                             "fixes_used": 0},
    }
    fields.update(changes)
    return ticket(**fields)
