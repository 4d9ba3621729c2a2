"""The engine's answer, seen from the platform: the errcode the platform gives for the same refusal.

A rule may carry `platform_error` itself (the policy knows 10021068 for NEGOTIATION_REQUIRED_FIRST);
the gaps are filled from one table, `codes.PLATFORM_ERROR_BY_CODE`, and the policy's own value
always wins. Only merchant moves are API calls, so only they get platform codes: a buyer acts in
the WeChat app, where no errcode exists.

Each merchant action (decide) or the checked action (check) also gets a `platform` block:
`{"endpoint": "rejectapply" | null, "errcode": 0 | <code> | null}`: 0 when the engine allows it,
the first refusal's code, or null when the engine refuses for a reason the platform publishes no
code for (the platform may accept the call: the policy is stricter or more explicit there).
"""
from __future__ import annotations

import copy
from typing import Any

from engine.core.vocabulary import MERCHANT_ACTIONS
from engine.decisions.results import Result
from engine.wechat import codes



def platform_view(result: Result | dict[str, Any], warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A copy of a decide / check / apply result with the platform's errcodes added, and the
    mapping's `warnings` (what it read but did not understand, e.g. an unknown reason code) when any."""
    out = result.to_json() if isinstance(result, Result) else copy.deepcopy(result)
    if warnings:
        out["warnings"] = list(warnings)
    if isinstance(out.get("actions"), dict):  # a decision
        if out.get("actor") == "merchant":
            for action, entry in out["actions"].items():
                _fill(entry.get("denials") or [])
                entry["platform"] = _platform_block(action, entry.get("allowed"), entry.get("denials") or [])
    elif "violations" in out and out.get("action") in MERCHANT_ACTIONS:  # a check of a merchant move
        _fill(out["violations"])
        out["platform"] = _platform_block(out["action"], out.get("valid"), out["violations"])
    return out


def platform_error_for(code: str) -> int | None:
    return codes.PLATFORM_ERROR_BY_CODE.get(code)


def _fill(findings: list[dict[str, Any]]) -> None:
    for finding in findings:
        if finding.get("platform_error") is None:
            mapped = platform_error_for(finding.get("code", ""))
            if mapped is not None:
                finding["platform_error"] = mapped


def _platform_block(action: str, allowed: Any, findings: list[dict[str, Any]]) -> dict[str, Any]:
    if allowed:
        errcode: int | None = 0
    else:
        errcode = next((f["platform_error"] for f in findings if f.get("platform_error") is not None), None)
    block: dict[str, Any] = {"endpoint": codes.ENDPOINT_BY_ACTION.get(action), "errcode": errcode}
    if errcode:
        block["errmsg"] = codes.PLATFORM_ERROR_TEXT.get(errcode)
    return block
