"""What the schema cannot say: references between parts of one policy document, duplicate ids,
impossible numbers, effect/stage fit, template placeholders, features without their settings.

Each check is a generator over a document that already passed the schema (so shapes are known)
and yields located Diagnostics. Condition trees (`when:`) are checked in `engine/checks/rule_conditions.py`.
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Iterator

from engine.core import vocabulary as v
from engine.policy.checks import register_document_check
from engine.policy.checks.schema import did_you_mean
from engine.core.problems import Diagnostic
from engine.policy.yamlsafe import pointer_join

ID_LISTS = ("changes", "negotiation_types", "reasons", "scenarios", "categories", "carriers", "rules")


def _items(doc: Any, list_name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from enumerate(doc.data.get(list_name) or [])


def _ids(doc: Any, list_name: str) -> set[str]:
    return {item["id"] for _, item in _items(doc, list_name)}


@register_document_check
def version_matches_file_name(doc: Any) -> Iterator[Diagnostic]:
    version = doc.data["version"]
    stem = Path(doc.path).stem
    if version != stem:
        yield doc.diagnostic("version_mismatch", "/version",
                             f"version `{version}` differs from the file name `{Path(doc.path).name}`",
                             f"rename the file to `{version}.yaml` or set version to `{stem}`")


@register_document_check
def effective_from_is_a_time(doc: Any) -> Iterator[Diagnostic]:
    moment = doc.effective_from
    text = doc.data["effective_from"]
    if moment is None:
        yield doc.diagnostic("bad_time", "/effective_from", f"`{text}` is not a valid date-time")
    elif not text.startswith(doc.data["version"]):
        yield doc.diagnostic("version_mismatch", "/effective_from",
                             f"effective_from `{text}` is not on the version's date `{doc.data['version']}`",
                             "a version is named after the date it takes effect")


@register_document_check
def duplicate_ids(doc: Any) -> Iterator[Diagnostic]:
    for list_name in ID_LISTS:
        first: dict[str, int] = {}
        for index, item in _items(doc, list_name):
            if item["id"] in first:
                line, _ = doc.locate(f"/{list_name}/{first[item['id']]}/id")
                yield doc.diagnostic("duplicate_id", f"/{list_name}/{index}/id",
                                     f"duplicate id `{item['id']}` in {list_name} (first at line {line})")
            else:
                first[item["id"]] = index


@register_document_check
def duplicate_platform_codes(doc: Any) -> Iterator[Diagnostic]:
    """The platform's codes map back to one item (engine/wechat reads `update_reason_type`)."""
    groups: dict[tuple[Any, ...], int] = {}
    for list_name in ("negotiation_types", "reasons"):
        for index, item in _items(doc, list_name):
            if "platform_code" not in item:
                continue
            scope = item.get("negotiation_type", "") if list_name == "reasons" else ""
            key = (list_name, scope, item["platform_code"])
            if key in groups:
                line, _ = doc.locate(f"/{list_name}/{groups[key]}/platform_code")
                yield doc.diagnostic("duplicate_platform_code", f"/{list_name}/{index}/platform_code",
                                     f"platform_code {item['platform_code']} is already used at line {line}")
            else:
                groups[key] = index


@register_document_check
def reason_references(doc: Any) -> Iterator[Diagnostic]:
    types = _ids(doc, "negotiation_types")
    reasons = {item["id"]: item for _, item in _items(doc, "reasons")}
    for index, reason in _items(doc, "reasons"):
        if reason["negotiation_type"] not in types:
            yield doc.diagnostic("unknown_reference", f"/reasons/{index}/negotiation_type",
                                 f"negotiation type `{reason['negotiation_type']}` is not in negotiation_types")
    for index, scenario in _items(doc, "scenarios"):
        for type_id, reason_ids in scenario["reasons"].items():
            base = f"/scenarios/{index}/reasons/{type_id}"
            if type_id not in types:
                yield doc.diagnostic("unknown_reference", base, f"negotiation type `{type_id}` is not in negotiation_types",
                                     at_key=True)
            for position, reason_id in enumerate(reason_ids):
                found = reasons.get(reason_id)
                if found is None:
                    yield doc.diagnostic("unknown_reference", f"{base}/{position}",
                                         f"reason `{reason_id}` is not defined in reasons",
                                         did_you_mean(reason_id, list(reasons)))
                elif found["negotiation_type"] != type_id:
                    yield doc.diagnostic("wrong_negotiation_type", f"{base}/{position}",
                                         f"reason `{reason_id}` belongs to `{found['negotiation_type']}`, "
                                         f"not `{type_id}`")



@register_document_check
def reason_refund_types(doc: Any) -> Iterator[Diagnostic]:
    """A reason's `refund_type` is the type every proposal with it carries (decide offers it only
    where that type is allowed; check refuses the other type). So it must be a type the reason's
    tickets can end up with: their own type, or any type when the negotiation type may change the
    refund type (modify_request). Only modify_request reasons carry one: the other types keep the
    ticket's type, whatever it is. And some category must allow it, or the reason is never offered."""
    types = {item["id"]: item for _, item in _items(doc, "negotiation_types")}
    allowed_somewhere = {kind for _, category in _items(doc, "categories") for kind in category["refund_types"]}
    for index, reason in _items(doc, "reasons"):
        refund_type = reason.get("refund_type")
        if refund_type is None:
            continue
        where = f"/reasons/{index}/refund_type"
        if reason["negotiation_type"] != "modify_request":
            yield doc.diagnostic("refund_type_misplaced", where,
                                 f"a `{reason['negotiation_type']}` reason carries no refund type "
                                 "(its proposals keep the ticket's)",
                                 "only reasons of `modify_request` name a refund type", at_key=True)
            continue
        negotiation_type = types.get("modify_request")
        changeable = negotiation_type is not None and "refund_type" in negotiation_type["changeable_fields"]
        for ticket_type in reason.get("ticket_types") or v.REFUND_TYPES:
            if ticket_type != refund_type and not changeable:
                yield doc.diagnostic("refund_type_unreachable", where,
                                     f"a `{ticket_type}` ticket cannot be proposed as `{refund_type}`: "
                                     "`modify_request` does not list refund_type in changeable_fields",
                                     "narrow ticket_types to the reason's refund type, or drop refund_type")
        if refund_type not in allowed_somewhere:
            yield doc.diagnostic("refund_type_unreachable", where,
                                 f"no category allows `{refund_type}`: the reason would never be offered")

@register_document_check
def rule_shape(doc: Any) -> Iterator[Diagnostic]:
    """Effect fits stage; actions fit actor and stage."""
    for index, rule in _items(doc, "rules"):
        base = f"/rules/{index}"
        stage = rule["stage"]
        effect = next(e for e in v.EFFECTS if e in rule)
        if effect not in v.EFFECTS_BY_STAGE[stage]:
            allowed = ", ".join(v.EFFECTS_BY_STAGE[stage])
            yield doc.diagnostic("effect_stage_mismatch", f"{base}/{effect}",
                                 f"a `{stage}` rule cannot have effect `{effect}` (allowed: {allowed})",
                                 at_key=True)
        actions = rule["action"] if isinstance(rule["action"], list) else [rule["action"]]
        action_path = f"{base}/action"
        for position, action in enumerate(actions):
            where = f"{action_path}/{position}" if isinstance(rule["action"], list) else action_path
            if stage == "outcome":
                if action not in v.OUTCOME_ACTIONS:
                    yield doc.diagnostic("action_stage_mismatch", where,
                                         f"an outcome rule's action is one of: {', '.join(v.OUTCOME_ACTIONS)}; "
                                         f"got `{action}`")
                continue
            if action == v.TIMEOUT:
                yield doc.diagnostic("action_stage_mismatch", where, "`timeout` is only an outcome rule's action")
            elif rule["actor"] == "merchant" and action not in v.MERCHANT_ACTIONS:
                yield doc.diagnostic("action_actor_mismatch", where, f"`{action}` is not a merchant action")
            elif rule["actor"] == "buyer" and action not in v.BUYER_ACTIONS:
                yield doc.diagnostic("action_actor_mismatch", where, f"`{action}` is not a buyer action")


@register_document_check
def template_placeholders(doc: Any) -> Iterator[Diagnostic]:
    declared = doc.data.get("message_placeholders")
    for index, reason in _items(doc, "reasons"):
        template = reason.get("template")
        if template is None:
            continue
        where = f"/reasons/{index}/template"
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError as exc:
            yield doc.diagnostic("bad_template", where, f"template is malformed: {exc}",
                                 "placeholders are `{name}`; write a literal brace as `{{` or `}}`")
            continue
        for name in fields:
            if name not in v.KNOWN_PLACEHOLDERS:
                yield doc.diagnostic("unknown_placeholder", where, f"placeholder `{{{name}}}` is not a known placeholder",
                                     did_you_mean(name, list(v.KNOWN_PLACEHOLDERS)) or f"known: {', '.join(v.KNOWN_PLACEHOLDERS)}")
            elif declared is None:
                yield doc.diagnostic("unknown_placeholder", where,
                                     f"placeholder `{{{name}}}` is used but the policy has no message_placeholders")
            elif name not in declared:
                yield doc.diagnostic("unknown_placeholder", where,
                                     f"placeholder `{{{name}}}` is not in message_placeholders")


@register_document_check
def impossible_numbers(doc: Any) -> Iterator[Diagnostic]:
    timeouts = doc.data["timeouts"]
    hours = [("/timeouts/buyer_response_hours/value", timeouts["buyer_response_hours"]["value"])]
    if "receipt_extension" in timeouts:
        ext = timeouts["receipt_extension"]
        hours += [("/timeouts/receipt_extension/window_hours", ext["window_hours"]),
                  ("/timeouts/receipt_extension/extension_hours", ext["extension_hours"])]
        if ext["max_per_ticket"] < 1:
            yield doc.diagnostic("impossible_number", "/timeouts/receipt_extension/max_per_ticket",
                                 f"max_per_ticket {ext['max_per_ticket']} allows no extension",
                                 "disable the extend_receipt feature instead")
    if "processing_after_sign_hours" in timeouts:
        hours.append(("/timeouts/processing_after_sign_hours/value", timeouts["processing_after_sign_hours"]["value"]))
    for where, value in hours:
        if value <= 0:
            yield doc.diagnostic("impossible_number", where, f"a window of {value} hours is closed before it opens")
    for name, limit in doc.data["limits"].items():
        where = f"/limits/{name}/value"
        if limit["value"] is None:
            if not limit.get("illustrative"):
                yield doc.diagnostic("unmarked_no_limit", where, "`null` (no limit) must be marked `illustrative: true`",
                                     "the guide states every limit it has; no limit is our reading")
        elif limit["value"] < 0:
            yield doc.diagnostic("impossible_number", where, f"a limit of {limit['value']} is impossible")


# feature -> what it needs elsewhere in the document, as (pointer, what to say)
FEATURE_NEEDS = {
    "extend_receipt": [("/timeouts/receipt_extension", "timeouts.receipt_extension")],
    "modify_return_logistics": [("/limits/tracking_fixes", "limits.tracking_fixes"), ("/carriers", "carriers")],
    "message_templates": [("/message_placeholders", "message_placeholders")],
}


@register_document_check
def features_have_their_settings(doc: Any) -> Iterator[Diagnostic]:
    features = doc.data["features"]
    for name, needs in FEATURE_NEEDS.items():
        if not features[name]["enabled"]:
            continue
        for pointer, what in needs:
            if not doc.data_at(pointer):
                yield doc.diagnostic("feature_without_settings", f"/features/{name}/enabled",
                                     f"feature `{name}` is enabled but the policy has no {what}")
    for index, reason in _items(doc, "reasons"):
        if "template" in reason and not features["message_templates"]["enabled"]:
            yield doc.diagnostic("feature_disabled", f"/reasons/{index}/template",
                                 "a template is given but feature `message_templates` is disabled", at_key=True)
        if reason.get("evidence_required") and not features["merchant_evidence"]["enabled"]:
            yield doc.diagnostic("feature_disabled", f"/reasons/{index}/evidence_required",
                                 "evidence is required but feature `merchant_evidence` is disabled")


# outcome effect -> the statuses it can lead to, and the keys only it may carry
OUTCOME_STATUSES = {"auto_refund": ("refunding",), "return_flow": ("awaiting_buyer_return",),
                    "closed": ("cancelled", "closed"), "back_to_merchant": ("merchant_processing", "awaiting_merchant_receipt"),
                    "platform_intervention": ("platform_intervention",)}
OUTCOME_ONLY_KEYS = {"refund_amount": "auto_refund", "may_reapply": "closed", "buyer_may": "back_to_merchant"}


@register_document_check
def outcome_consistency(doc: Any) -> Iterator[Diagnostic]:
    """An outcome's status, effect and extra keys must tell one story (apply reads them all)."""
    for index, rule in _items(doc, "rules"):
        outcome = rule.get("outcome")
        if not outcome:
            continue
        base = f"/rules/{index}/outcome"
        effect = outcome["effect"]
        if outcome["status"] not in OUTCOME_STATUSES[effect]:
            yield doc.diagnostic("outcome_mismatch", f"{base}/status",
                                 f"effect `{effect}` leads to status {' or '.join(OUTCOME_STATUSES[effect])}, "
                                 f"not `{outcome['status']}`")
        for key, owner in OUTCOME_ONLY_KEYS.items():
            if key in outcome and effect != owner:
                yield doc.diagnostic("outcome_mismatch", f"{base}/{key}",
                                     f"`{key}` belongs to effect `{owner}`, not `{effect}`", at_key=True)
        if effect == "auto_refund" and "refund_amount" not in outcome:
            yield doc.diagnostic("outcome_mismatch", base, "effect `auto_refund` needs `refund_amount` (proposal or request)",
                                 at_key=True)


@register_document_check
def illustrative_names_exist(doc: Any) -> Iterator[Diagnostic]:
    """`illustrative: [template]` marks fields the guide does not state; a name that is not a key
    of the item marks nothing (a stale marker after an edit)."""
    def walk(node: Any, pointer: str) -> Iterator[Diagnostic]:
        if isinstance(node, dict):
            marked = node.get("illustrative")
            if isinstance(marked, list):
                for index, name in enumerate(marked):
                    if name not in node:
                        yield doc.diagnostic("unknown_reference", f"{pointer}/illustrative/{index}",
                                             f"`{name}` is marked illustrative but the item has no such key")
            for key, value in node.items():
                yield from walk(value, pointer_join(pointer, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{pointer}/{index}")

    yield from walk(doc.data, "")
