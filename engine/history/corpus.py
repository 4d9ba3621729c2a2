"""Deterministic synthetic tickets for impact measurement: `generate(count, seed, vocabulary)`.

The same (count, seed, policy vocabulary, window) gives byte-identical output on every run and
machine: ticket n is drawn from its own `random.Random` seeded by (seed, n), nothing reads the
clock or `hash()`; so a slice of the corpus made on a Dask worker equals the same slice made here.

The mix imitates a shop's after-sales queue (the weights are illustrative, not measured): mostly
general goods with some fresh food and plants, refund-only more common than return-refund, about
half the tickets waiting for the merchant, the rest spread over the other statuses, each with the
history that status implies (a pending proposal, a return parcel, an interception request), so
every ticket passes `schemas/ticket.schema.json` and `engine.ticket.validate_ticket`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from engine.core.timeutil import SHANGHAI, iso

DEFAULT_START = datetime(2024, 3, 1, tzinfo=SHANGHAI)
DEFAULT_END = datetime(2024, 6, 30, tzinfo=SHANGHAI)

CATEGORY_WEIGHTS = {"general": 80, "fresh_food": 12, "green_plants": 8}
SCENARIO_WEIGHTS = {"not_received": 20, "quality_issue": 20, "not_as_described": 12, "missing_items": 8,
                    "no_reason_7d": 15, "damaged": 10, "wrong_item": 6, "perished": 3,
                    "agreed_compensation": 4}
STATUS_WEIGHTS = {
    "refund_only": {"merchant_processing": 50, "awaiting_buyer_response": 18, "platform_intervention": 6,
                    "merchant_rejected": 6, "refunding": 5, "refunded": 7, "cancelled": 4, "closed": 4},
    "return_refund": {"merchant_processing": 35, "awaiting_buyer_response": 14, "awaiting_buyer_return": 14,
                      "awaiting_merchant_receipt": 18, "platform_intervention": 5, "merchant_rejected": 4,
                      "refunding": 3, "refunded": 4, "cancelled": 2, "closed": 1},
}
CARRIERS = (("SF", "顺丰速运", 12), ("YT", "圆通速递", 13), ("JD", "京东快递", 13), ("ZTO", "中通快递", 12))
RETURN_WINDOW = timedelta(days=7)  # illustrative: the guide states no merchant receipt window


@dataclass(frozen=True)
class Vocabulary:
    """What one policy version names: the ids a ticket may use, and which reasons each scenario
    offers per negotiation type (so a pending proposal carries a reason the scenario offers)."""

    scenarios: dict[str, str]  # id -> label (the buyer_reason shown)
    categories: dict[str, tuple[str, ...]]  # id -> refund types allowed
    scenario_reasons: dict[str, dict[str, list[str]]]  # scenario -> type -> reason ids

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> "Vocabulary":
        scenarios = {s["id"]: s.get("label", s["id"]) for s in data.get("scenarios", [])}
        categories = {c["id"]: tuple(c.get("refund_types") or ("refund_only", "return_refund"))
                      for c in data.get("categories", [])}
        reasons = {s["id"]: {t: list(ids) for t, ids in (s.get("reasons") or {}).items() if ids}
                   for s in data.get("scenarios", [])}
        return cls(scenarios, categories, reasons)


def _weighted(rng: random.Random, weights: dict[str, int], allowed: Iterable[str]) -> str:
    names = [n for n in allowed]
    return str(rng.choices(names, weights=[weights.get(n, 1) for n in names])[0])


def _price(rng: random.Random) -> int:
    """Prices in fen, log-normal around ~90 yuan, mostly whole yuan, often ending in 9.9."""
    yuan = max(1.0, min(rng.lognormvariate(4.5, 1.0), 20000.0))
    fen = int(yuan) * 100
    return fen - 10 if rng.random() < 0.3 and fen > 100 else fen


def _at(moment: datetime) -> str:
    return str(iso(moment))


class _TicketMaker:
    def __init__(self, rng: random.Random, vocab: Vocabulary, start: datetime, end: datetime) -> None:
        self.rng, self.vocab = rng, vocab
        self.start, self.span = start, max(1, int((end - start).total_seconds()))

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int(self.rng.uniform(low, high) * 3600))

    def make(self, ticket_id: str) -> dict[str, Any]:
        rng, vocab = self.rng, self.vocab
        category = _weighted(rng, CATEGORY_WEIGHTS, vocab.categories)
        refund_types = vocab.categories[category]
        goods_kind = "virtual" if rng.random() < 0.08 else "physical"
        can_return = "return_refund" in refund_types and goods_kind == "physical"
        kind = "return_refund" if can_return and rng.random() < 0.4 else "refund_only"
        scenario_weights = dict(SCENARIO_WEIGHTS)
        if category != "general":
            scenario_weights["perished"] = 30
        scenario = _weighted(rng, scenario_weights, vocab.scenarios)
        status = _weighted(rng, STATUS_WEIGHTS[kind], STATUS_WEIGHTS[kind])
        if status == "awaiting_buyer_response" and not vocab.scenario_reasons.get(scenario):
            status = "merchant_processing"  # no reason offered here, so no proposal can be pending
        paid = _price(rng)
        quantity = rng.choices([1, 2, 3, 5], weights=[80, 12, 5, 3])[0]
        partial = rng.randint(1, paid)
        refund = paid if rng.random() < 0.7 else max(1, partial - partial % 100)
        created = self.start + timedelta(seconds=rng.randrange(self.span))
        shipped = goods_kind == "physical" and rng.random() < (0.8 if scenario == "not_received" else 0.97)
        ticket: dict[str, Any] = {
            "ticket_id": ticket_id, "type": kind, "status": status, "scenario": scenario,
            "buyer_reason": vocab.scenarios[scenario], "created_at": _at(created),
            "order": {"paid_amount": paid, "category": category, "goods_kind": goods_kind,
                      "quantity": quantity, "shipped": shipped},
            "request": {"refund_amount": refund, "quantity": rng.randint(1, quantity),
                        "evidence_count": rng.choices([0, 1, 2, 3], weights=[40, 30, 20, 10])[0]},
        }
        moment, stage = created + self.hours(0.5, 24), "merchant_processing"
        if kind == "return_refund" and status in ("awaiting_merchant_receipt", "awaiting_buyer_response") \
                and rng.random() < (1.0 if status == "awaiting_merchant_receipt" else 0.25):
            moment, stage = self.add_return_parcel(ticket, moment), "awaiting_merchant_receipt"
        self.add_negotiation(ticket, moment, stage)
        if kind == "refund_only" and status == "merchant_processing" and shipped and rng.random() < 0.08:
            ticket["intercept"] = {"requested": True}
        return ticket

    def add_return_parcel(self, ticket: dict[str, Any], moment: datetime) -> datetime:
        rng = self.rng
        prefix, carrier, digits = rng.choice(CARRIERS)
        uploaded = moment + self.hours(2, 72)
        signed = uploaded + self.hours(24, 96) if rng.random() < 0.3 else None
        extended = rng.random() < 0.1
        deadline = uploaded + RETURN_WINDOW + (timedelta(hours=96) if extended else timedelta(0))
        ticket["return_logistics"] = {
            "tracking_number": prefix + "".join(str(rng.randrange(10)) for _ in range(digits)),
            "carrier": carrier, "uploaded_at": _at(uploaded), "signed_at": _at(signed) if signed else None,
            "receipt_deadline": _at(deadline), "extension_used": extended,
            "fixes_used": rng.choices([0, 1, 2], weights=[85, 10, 5])[0]}
        return signed or uploaded

    def add_negotiation(self, ticket: dict[str, Any], moment: datetime, stage: str) -> None:
        rng, status = self.rng, ticket["status"]
        if status == "awaiting_buyer_response":
            count = rng.choices([1, 2], weights=[70, 30])[0]
            ticket["negotiation"] = {"count": count, "last_outcome": "pending",
                                     "pending": self.proposal(ticket, moment, stage)}
        elif status in ("merchant_processing", "platform_intervention", "merchant_rejected") and rng.random() < 0.45:
            count = rng.choices([1, 2, 3], weights=[60, 35, 5])[0]
            ticket["negotiation"] = {"count": count, "last_outcome": rng.choice(["rejected", "timed_out"])}
        elif status in ("awaiting_buyer_return", "refunding", "refunded", "cancelled") and rng.random() < 0.3:
            ticket["negotiation"] = {"count": 1, "last_outcome": "accepted"}

    def proposal(self, ticket: dict[str, Any], moment: datetime, stage: str) -> dict[str, Any]:
        rng = self.rng
        offered = self.vocab.scenario_reasons.get(ticket["scenario"]) or {}
        types = [t for t in ("modify_request", "request_evidence", "invite_cancel") if offered.get(t)]
        if stage == "awaiting_merchant_receipt" and "modify_request" in types:
            types = ["modify_request"]  # at the receiving stage only the amount is negotiable
        kind = rng.choices(types, weights=[{"modify_request": 70}.get(t, 15) for t in types])[0]
        reason = rng.choice(offered[kind])
        proposal: dict[str, Any] = {"type": kind, "reason": reason,
                                    "proposed_at": _at(moment + self.hours(0.2, 6)),
                                    "edits": rng.choices([0, 1], weights=[85, 15])[0],
                                    "evidence_count": rng.choices([0, 1, 2], weights=[30, 50, 20])[0],
                                    "message": "您好，我们已与您沟通新的售后方案，请查看。"}
        if kind == "modify_request":
            allowed = self.vocab.categories[ticket["order"]["category"]]
            # at the receiving stage the type cannot change (三-3.1.2 注意事项b)
            proposal["refund_type"] = ticket["type"] if stage == "awaiting_merchant_receipt" or rng.random() < 0.7 \
                else rng.choice(allowed)
            share = rng.choice([50, 70, 80, 90, 100])
            proposal["refund_amount"] = ticket["request"]["refund_amount"] * share // 100
        if stage != "merchant_processing" or ticket["type"] == "return_refund":
            proposal["stage"] = stage  # a return-refund proposal must say its stage (ticket schema)
        return proposal


def ticket_seed(seed: int, number: int) -> int:
    """Ticket `number`'s own random stream: a ticket depends on (seed, number) alone, so any
    slice of the corpus can be generated anywhere (a Dask worker) and comes out the same."""
    return (seed << 40) + number


def generate(count: int, seed: int, vocab: Vocabulary, start: datetime = DEFAULT_START,
             end: datetime = DEFAULT_END, first: int = 1) -> Iterator[dict[str, Any]]:
    """Tickets number `first` .. `first + count - 1`, ids `SYN-<seed>-<n>`, created uniformly in [start, end)."""
    maker = _TicketMaker(random.Random(), vocab, start, end)
    for n in range(first, first + count):
        maker.rng = random.Random(ticket_seed(seed, n))
        yield maker.make(f"SYN-{seed}-{n:06d}")


def latest_time(ticket: dict[str, Any]) -> str | None:
    """The latest timestamp the ticket records: impact's default moment of the question (+1 h)."""
    from engine.decisions.ticket import TIME_FIELDS

    values = []
    for parts in TIME_FIELDS:
        node: Any = ticket
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and not parts[-1] == "receipt_deadline":
            values.append(node)
    return max(values, key=_sort_key) if values else None


def _sort_key(text: str) -> float:
    from engine.core.timeutil import parse_aware

    return parse_aware(text).timestamp()
