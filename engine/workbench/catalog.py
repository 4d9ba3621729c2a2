"""The Policy page: one version's document as tables a policy reader checks against the guide.

Every item carries its id, its guide section, whether it is illustrative (true, or the list of its
illustrative fields) and where it is written (`file:line`), read from the positions the loader
recorded, so a reader goes from a cell to the YAML line that decides it.
"""
from __future__ import annotations

from typing import Any

from engine.decisions.render import placeholder_values, render
from engine.policy.bundle import PolicyDocument
from engine.policy.model import Policy

TOP_LISTS = ("negotiation_types", "reasons", "scenarios", "categories", "carriers", "rules")


def _where(document: PolicyDocument, pointer: str) -> dict[str, Any]:
    line, _column = document.locate(pointer, at_key=True)
    return {"file": document.path.name, "line": line}


def _item(document: PolicyDocument, pointer: str, node: Any, **extra: Any) -> dict[str, Any]:
    node = node if isinstance(node, dict) else {}
    return {"id": node.get("id"), "section": node.get("section"), "illustrative": node.get("illustrative", False),
            "note": node.get("note"), "where": _where(document, pointer), **extra}


def sample_ticket(policy: Policy, scenario: str) -> dict[str, Any]:
    """The ticket the templates are rendered for: a refund-only request of 129.00 yuan on an
    ordinary order of that scenario (the README's example amounts)."""
    label = policy.scenarios[scenario].label if scenario in policy.scenarios else scenario
    return {"ticket_id": "SAMPLE", "type": "refund_only", "scenario": scenario, "buyer_reason": label,
            "order": {"paid_amount": 12900}, "request": {"refund_amount": 12900}}


def reason_table(document: PolicyDocument, policy: Policy) -> list[dict[str, Any]]:
    """scenario × negotiation type × reason, each cell the reason's terms and rendered message."""
    data = document.data
    reason_index = {r.get("id"): i for i, r in enumerate(data.get("reasons") or [])}
    type_labels = {t.id: t.label for t in policy.negotiation_types}
    rows = []
    for s_index, scenario in enumerate(data.get("scenarios") or []):
        values = placeholder_values(policy, sample_ticket(policy, scenario["id"]))
        for type_id, reason_ids in (scenario.get("reasons") or {}).items():
            for reason_id in reason_ids or []:
                r_index = reason_index.get(reason_id)
                raw = (data.get("reasons") or [])[r_index] if r_index is not None else {}
                rows.append({
                    "scenario": scenario["id"], "scenario_label": scenario.get("label"),
                    "negotiation_type": type_id, "negotiation_type_label": type_labels.get(type_id, type_id),
                    "offered_at": _where(document, f"/scenarios/{s_index}/reasons/{type_id}"),
                    "reason": _item(document, f"/reasons/{r_index}", raw,
                                    text=raw.get("text"), platform_code=raw.get("platform_code"),
                                    evidence_required=raw.get("evidence_required"),
                                    ticket_types=raw.get("ticket_types"), refund_type=raw.get("refund_type"),
                                    template=raw.get("template"),
                                    message=render(raw.get("template"), values)),
                })
    return rows


def _keyed(document: PolicyDocument, key: str) -> list[dict[str, Any]]:
    """timeouts / limits / features: a mapping of named entries, each with its section."""
    out = []
    for name, node in (document.data.get(key) or {}).items():
        entry = node if isinstance(node, dict) else {"value": node}
        values = {k: v for k, v in entry.items() if k not in ("section", "illustrative", "note")}
        out.append(dict(_item(document, f"/{key}/{name}", entry), id=name, values=values))
    return out


def catalog(document: PolicyDocument, policy: Policy) -> dict[str, Any]:
    data = document.data
    scenarios = [_item(document, f"/scenarios/{i}", s, label=s.get("label"), rejection=s.get("rejection"),
                       buyer_reject_escalates=s.get("buyer_reject_escalates"),
                       reasons={t: list(ids or []) for t, ids in (s.get("reasons") or {}).items()})
                 for i, s in enumerate(data.get("scenarios") or [])]
    categories = [_item(document, f"/categories/{i}", c, label=c.get("label"), refund_types=c.get("refund_types"),
                        buyer_reject_escalates=c.get("buyer_reject_escalates"))
                  for i, c in enumerate(data.get("categories") or [])]
    types = [_item(document, f"/negotiation_types/{i}", t, label=t.get("label"), platform_code=t.get("platform_code"),
                   changeable_fields=t.get("changeable_fields"), buyer_may_accept=t.get("buyer_may_accept"))
             for i, t in enumerate(data.get("negotiation_types") or [])]
    rules = [_item(document, f"/rules/{i}", r, stage=r.get("stage"), actor=r.get("actor"), action=r.get("action"),
                   effect=next((k for k in ("deny", "advise", "outcome", "effect") if k in r), None),
                   code=((r.get("deny") or r.get("advise") or {}) if isinstance(r.get("deny") or r.get("advise"), dict)
                         else {}).get("code"))
             for i, r in enumerate(data.get("rules") or [])]
    return {
        "version": document.version, "file": document.path.name,
        "effective_from": data.get("effective_from"), "title": data.get("title"),
        "negotiation_types": types, "scenarios": scenarios, "categories": categories,
        "reason_table": reason_table(document, policy),
        "timeouts": _keyed(document, "timeouts"), "limits": _keyed(document, "limits"),
        "features": _keyed(document, "features"),
        "carriers": [_item(document, f"/carriers/{i}", c, name=c.get("name"), pattern=c.get("pattern"))
                     for i, c in enumerate(data.get("carriers") or [])],
        "rules": rules,
    }


def counts(data: dict[str, Any]) -> dict[str, int]:
    """What the Versions page counts per version."""
    return {key: len(data.get(key) or []) for key in ("rules", "scenarios", "reasons", "negotiation_types",
                                                      "categories", "changes")}
