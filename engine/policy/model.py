"""The policy as frozen values: what one version says, built from a document that already passed
the checks (engine/checks). No IO, no validation here beyond what construction needs: a document
that reaches `Policy.from_document` is valid, so a KeyError here is a bug in the checks.

The raw document is kept (`Policy.raw`) because the compiler resolves `{param: ...}` paths against
it and the diff works on it; everything the decision path reads often is a typed attribute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from engine.core.vocabulary import REFUND_TYPES


@dataclass(frozen=True)
class NegotiationType:
    id: str
    label: str
    platform_code: int | None
    changeable_fields: tuple[str, ...]
    fixed_fields: tuple[str, ...]
    buyer_may_accept: bool
    section: str


@dataclass(frozen=True)
class Reason:
    id: str
    text: str
    negotiation_type: str
    platform_code: int | None
    ticket_types: tuple[str, ...]
    evidence_required: bool
    template: str | None
    section: str
    # the refund type a proposal with this reason carries (its text implies it); None: either
    refund_type: str | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    label: str
    reasons: Mapping[str, tuple[str, ...]]  # negotiation type id -> reason ids offered
    rejection: str  # allowed | guided | negotiation_required
    buyer_reject_escalates: bool
    section: str


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    refund_types: tuple[str, ...]
    buyer_reject_escalates: bool
    section: str


@dataclass(frozen=True)
class ReceiptExtension:
    window_hours: int
    extension_hours: int
    max_per_ticket: int
    section: str


@dataclass(frozen=True)
class Timeouts:
    buyer_response_hours: int
    buyer_response_section: str
    receipt_extension: ReceiptExtension | None
    processing_after_sign_hours: int | None
    processing_after_sign_section: str | None


@dataclass(frozen=True)
class Limit:
    value: int | None  # None: the policy sets no limit
    section: str


@dataclass(frozen=True)
class Limits:
    negotiations_per_ticket: Limit
    proposal_edits: Limit
    tracking_fixes: Limit | None


@dataclass(frozen=True)
class Feature:
    enabled: bool
    section: str


@dataclass(frozen=True)
class Carrier:
    id: str
    name: str
    pattern: str


@dataclass(frozen=True)
class DeclaredChange:
    id: str
    text: str
    ref: str
    section: str
    touches: tuple[str, ...]
    affects_actions: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class Policy:
    version: str
    effective_from: datetime
    title: str
    changes: tuple[DeclaredChange, ...]
    negotiation_types: tuple[NegotiationType, ...]
    reasons: Mapping[str, Reason]
    scenarios: Mapping[str, Scenario]
    categories: Mapping[str, Category]
    goods_kinds: tuple[str, ...]
    timeouts: Timeouts
    limits: Limits
    features: Mapping[str, Feature]
    carriers: tuple[Carrier, ...]
    message_placeholders: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    # -- lookups the decision path uses -------------------------------------------------------
    def negotiation_type(self, type_id: str) -> NegotiationType | None:
        for t in self.negotiation_types:
            if t.id == type_id:
                return t
        return None

    def feature_enabled(self, name: str) -> bool:
        f = self.features.get(name)
        return bool(f and f.enabled)

    def param(self, dotted: str) -> Any:
        """Resolve a `{param: a.b.c}` path against the raw document (None when absent)."""
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Policy":
        """The typed form of a document the checks found valid (no check is repeated here)."""
        from engine.core.timeutil import parse_aware

        return cls(
            version=str(doc["version"]),
            effective_from=parse_aware(str(doc["effective_from"])),
            title=doc.get("title", ""),
            changes=tuple(_declared_change(c) for c in doc.get("changes") or ()),
            negotiation_types=tuple(_negotiation_type(t) for t in doc["negotiation_types"]),
            reasons=_frozen_index(_reason(r) for r in doc["reasons"]),
            scenarios=_frozen_index(_scenario(s) for s in doc["scenarios"]),
            categories=_frozen_index(_category(c) for c in doc["categories"]),
            goods_kinds=tuple((doc.get("goods_kinds") or {}).get("values", ("physical", "virtual"))),
            timeouts=_timeouts(doc["timeouts"]),
            limits=_limits(doc["limits"]),
            features=MappingProxyType({
                name: Feature(enabled=bool(f.get("enabled")), section=f.get("section", ""))
                for name, f in (doc.get("features") or {}).items()
            }),
            carriers=tuple(
                Carrier(id=c["id"], name=c["name"], pattern=c["pattern"]) for c in doc.get("carriers") or ()
            ),
            message_placeholders=tuple(doc.get("message_placeholders") or ()),
            raw=MappingProxyType(dict(doc)),
        )


# -- the parts of a document, each from its (valid) mapping -------------------------------------------

def _declared_change(c: Mapping[str, Any]) -> DeclaredChange:
    return DeclaredChange(
        id=c["id"], text=c["text"], ref=c.get("ref", ""), section=c.get("section", ""),
        touches=tuple(c.get("touches", ())), affects_actions=tuple(c.get("affects_actions", ())),
        note=c.get("note"),
    )


def _negotiation_type(t: Mapping[str, Any]) -> NegotiationType:
    return NegotiationType(
        id=t["id"], label=t["label"], platform_code=t.get("platform_code"),
        changeable_fields=tuple(t.get("changeable_fields", ())),
        fixed_fields=tuple(t.get("fixed_fields", ())),
        buyer_may_accept=bool(t.get("buyer_may_accept", True)), section=t["section"],
    )


def _reason(r: Mapping[str, Any]) -> Reason:
    return Reason(
        id=r["id"], text=r["text"], negotiation_type=r["negotiation_type"],
        platform_code=r.get("platform_code"),
        ticket_types=tuple(r.get("ticket_types") or REFUND_TYPES),
        evidence_required=bool(r.get("evidence_required", False)),
        template=r.get("template"), section=r["section"],
        refund_type=r.get("refund_type"),
    )


def _scenario(s: Mapping[str, Any]) -> Scenario:
    return Scenario(
        id=s["id"], label=s["label"],
        reasons=MappingProxyType({k: tuple(v or ()) for k, v in (s.get("reasons") or {}).items()}),
        rejection=s.get("rejection", "allowed"),
        buyer_reject_escalates=bool(s.get("buyer_reject_escalates", False)),
        section=s["section"],
    )


def _category(c: Mapping[str, Any]) -> Category:
    return Category(
        id=c["id"], label=c["label"], refund_types=tuple(c["refund_types"]),
        buyer_reject_escalates=bool(c.get("buyer_reject_escalates", False)),
        section=c["section"],
    )


def _timeouts(timeouts: Mapping[str, Any]) -> Timeouts:
    ext = timeouts.get("receipt_extension")
    after_sign = timeouts.get("processing_after_sign_hours")
    return Timeouts(
        buyer_response_hours=int(timeouts["buyer_response_hours"]["value"]),
        buyer_response_section=timeouts["buyer_response_hours"]["section"],
        receipt_extension=ReceiptExtension(
            window_hours=int(ext["window_hours"]), extension_hours=int(ext["extension_hours"]),
            max_per_ticket=int(ext["max_per_ticket"]), section=ext["section"],
        ) if ext else None,
        processing_after_sign_hours=int(after_sign["value"]) if after_sign else None,
        processing_after_sign_section=after_sign["section"] if after_sign else None,
    )


def _limits(limits: Mapping[str, Any]) -> Limits:
    return Limits(
        negotiations_per_ticket=_limit(limits["negotiations_per_ticket"]),
        proposal_edits=_limit(limits["proposal_edits"]),
        tracking_fixes=_limit(limits["tracking_fixes"]) if limits.get("tracking_fixes") else None,
    )


def _limit(node: Mapping[str, Any]) -> Limit:
    value = node.get("value")
    return Limit(value=None if value is None else int(value), section=node["section"])


def _frozen_index(items: Iterable[Any]) -> Mapping[str, Any]:
    return MappingProxyType({item.id: item for item in items})
