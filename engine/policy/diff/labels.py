"""Chinese labels for id paths: `scenarios/not_received/rejection` → 售后场景「未收到货」· 拒绝方式.

Item names come from the documents themselves (a scenario's `label`, a reason's `text`, ...), so
a label never goes stale when the policy renames something; only the policy's keys (which are
fixed by the schema) are named here. An unknown key is shown as itself rather than guessed.
"""
from __future__ import annotations

from typing import Any

from engine.core import idpaths

SECTION_LABELS = {
    "title": "标题",
    "negotiation_types": "协商类型",
    "reasons": "协商原因",
    "scenarios": "售后场景",
    "categories": "商品类目",
    "goods_kinds": "商品类型",
    "timeouts": "时效",
    "limits": "次数上限",
    "features": "功能",
    "carriers": "快递公司",
    "message_placeholders": "文案占位符",
    "rules": "规则",
}

# Keys of the mappings under timeouts / limits / features.
ENTRY_LABELS = {
    "buyer_response_hours": "用户处理协商时效",
    "receipt_extension": "延长收货时间",
    "processing_after_sign_hours": "签收后商家处理时效",
    "negotiations_per_ticket": "每单发起协商次数",
    "proposal_edits": "修改协商次数",
    "tracking_fixes": "修改退货物流次数",
    "modify_negotiation": "修改协商",
    "extend_receipt": "延长收货时间",
    "modify_return_logistics": "修改退货物流",
    "intercept_logistics": "物流拦截",
    "withdraw_negotiation": "撤回协商",
    "merchant_evidence": "商家上传凭证",
    "message_templates": "平台建议文案",
    "rejection_guidance": "拒绝前引导协商",
}

FIELD_LABELS = {
    "rejection": "拒绝方式",
    "label": "名称",
    "text": "文案",
    "template": "建议文案",
    "reasons": "协商原因",
    "buyer_reject_escalates": "用户拒绝协商后平台介入",
    "value": "取值",
    "enabled": "启用",
    "evidence_required": "需商家上传凭证",
    "negotiation_type": "所属协商类型",
    "platform_code": "平台编码",
    "ticket_types": "适用售后类型",
    "refund_types": "支持的售后类型",
    "refund_type": "对应售后类型",
    "changeable_fields": "可修改字段",
    "fixed_fields": "不可修改字段",
    "buyer_may_accept": "用户可直接同意",
    "window_hours": "可延长窗口(小时)",
    "extension_hours": "延长时长(小时)",
    "max_per_ticket": "每单上限",
    "values": "取值",
    "name": "名称",
    "pattern": "单号规则",
    "when": "条件",
    "deny": "拒绝",
    "restrict": "限制",
    "advise": "提示",
    "violation": "校验",
    "outcome": "结果",
    "code": "代码",
    "message": "提示文案",
    "unlock": "解锁条件",
    "stage": "阶段",
    "actor": "角色",
    "action": "动作",
    "platform_error": "平台错误码",
    "section": "指南章节",
    "illustrative": "示例性标记",
    "note": "说明",
}

# The key that names an item of each id list, for display.
_NAME_KEYS = ("label", "text", "name")


def _item_name(item: dict[str, Any]) -> str:
    for key in _NAME_KEYS:
        if isinstance(item.get(key), str):
            return str(item[key])
    return str(item.get("id"))


def id_names(*documents: dict[str, Any]) -> dict[str, str]:
    """id → display name over every top-level id list; the first document given wins a clash."""
    names: dict[str, str] = {}
    for document in reversed(documents):
        for value in (document or {}).values():
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and "id" in item:
                        names[str(item["id"])] = _item_name(item)
    return names


def label_for(path: str, names: dict[str, str]) -> str:
    segments = idpaths.split(path)
    if not segments:
        return "(整个文件)"
    head, rest = segments[0], segments[1:]
    first = SECTION_LABELS.get(head, head)
    parts: list[str] = []
    if rest and (rest[0] in ENTRY_LABELS or rest[0] in names or rest[0] not in FIELD_LABELS):
        key = rest.pop(0)  # an item or entry of the section: 售后场景「未收到货」
        shown = ENTRY_LABELS.get(key) or names.get(key, key)
        first = f"{first}「{shown}」"
    parts.append(first)
    for segment in rest:
        if segment in FIELD_LABELS:
            parts.append(FIELD_LABELS[segment])
        elif segment in names:
            parts.append(f"「{names[segment]}」")
        else:
            parts.append(segment)
    # `售后场景「未收到货」· 拒绝方式`: no space between a closing bracket and the separator.
    return " · ".join(parts).replace("」 · ", "」· ")


def value_text(value: Any, limit: int = 60) -> str:
    """A value as one short line for the terminal and Markdown forms."""
    import json

    if value is None:
        return "null"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_ANNOTATIONS = ("id", "section", "illustrative", "note")


def summary_text(value: Any, limit: int = 160) -> str:
    """A value as a reviewer reads it: an added or removed item without its id and annotations
    (the label and the section column carry those), a rule as `stage actor action: deny CODE
    message`, anything else as `value_text`."""
    if isinstance(value, dict) and "stage" in value and "when" in value:
        actions = value.get("action")
        action = ",".join(actions) if isinstance(actions, list) else str(actions or "")
        effect = next((k for k in ("deny", "advise", "outcome", "effect") if k in value), "")
        body = value.get(effect)
        detail = (f"{body.get('code', '')} {body.get('message', '')}".strip() if isinstance(body, dict)
                  else value_text(body, 60))
        return value_text(f"{value.get('stage')} {value.get('actor', '')} {action}: {effect} {detail}", limit)
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if k not in _ANNOTATIONS}
        return value_text("; ".join(f"{k}: {value_text(v, 40)}" for k, v in kept.items()), limit)
    if isinstance(value, list) and value and all(isinstance(v, dict) and "id" in v for v in value):
        return value_text(", ".join(str(v["id"]) for v in value), limit)
    return value_text(value, limit)
