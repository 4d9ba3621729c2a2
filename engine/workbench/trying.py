"""The Try page: decide / check / apply on the served engine, and the timeline behind the `at`
slider (which actions are allowed at each moment, across deadlines and version boundaries)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from engine.core.errors import EngineError, InputError
from engine.core.resources import REPO_ROOT
from engine.core.timeutil import iso, now as wall_clock, parse_aware
from engine.workbench.sample import example_tickets

ACTORS = ("merchant", "buyer")
ANSWERS = ("accept", "reject", "timeout")
STEPS = 96  # samples across the slider's range, plus one either side of every mark
DEFAULT_SPAN = timedelta(days=6)


def _payloads() -> dict[str, Any]:
    out = {}
    for path in sorted((REPO_ROOT / "examples" / "payloads").glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out


def examples() -> dict[str, Any]:
    return {"tickets": example_tickets(), "payloads": _payloads(), "actors": list(ACTORS), "answers": list(ANSWERS)}


def problems_json(exc: EngineError) -> list[dict[str, Any]]:
    """An engine error's problems (ticket/payload `Problem`s or policy `Diagnostic`s) as JSON."""
    found = getattr(exc, "problems", None) or getattr(exc, "diagnostics", None) or []
    return [p.to_json() if hasattr(p, "to_json") else dict(p) for p in found]


def _field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        raise InputError([{"path": f"/{name}", "code": "wrong_type",
                           "message": f"`{name}` must be a {kind.__name__}"}], f"bad `{name}`")
    return value


def _time(body: dict[str, Any], name: str) -> datetime | None:
    text = _field(body, name, str, required=False)
    if not text:
        return None
    try:
        return parse_aware(text)
    except ValueError as exc:
        raise InputError([{"path": f"/{name}", "code": "bad_time", "message": f"`{name}`: {exc}"}],
                         f"bad `{name}`") from None


def decide(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    ticket, actor = _field(body, "ticket", dict), _field(body, "actor", str)
    at = _time(body, "at") or wall_clock()
    version = _field(body, "version", str, required=False) or None
    out: dict[str, Any] = {"decision": engine.decide(ticket, actor, at=at, version=version).to_json()}
    other = _field(body, "compare_version", str, required=False)
    if other:
        try:
            out["compare"] = engine.decide(ticket, actor, at=at, version=other).to_json()
        except EngineError as exc:  # e.g. the other version does not know the scenario
            out["compare_error"] = {"message": str(exc).split("\n")[0], "problems": problems_json(exc)}
    return out


def check(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    ticket, action = _field(body, "ticket", dict), _field(body, "action", str)
    payload = _field(body, "payload", dict, required=False) or {}
    result: dict[str, Any] = engine.check(ticket, action, payload, at=_time(body, "at") or wall_clock(),
                                          version=_field(body, "version", str, required=False) or None).to_json()
    return result


def apply(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    ticket, answer = _field(body, "ticket", dict), _field(body, "answer", str)
    result: dict[str, Any] = engine.apply(ticket, answer, at=_time(body, "at") or wall_clock(),
                                          version=_field(body, "version", str, required=False) or None,
                                          reason=_field(body, "reason", str, required=False) or None).to_json()
    return result


def _marks(engine: Any, decision: dict[str, Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    marks: dict[str, dict[str, Any]] = {}
    for name, value in (decision.get("deadlines") or {}).items():
        if value:
            marks.setdefault(value, {"at": value, "kind": "deadline", "labels": []})["labels"].append(name)
    for action, verdict in (decision.get("actions") or {}).items():
        for denial in verdict.get("denials") or ():
            when = (denial.get("unlock") or {}).get("available_at")
            if when:
                marks.setdefault(when, {"at": when, "kind": "deadline", "labels": []})["labels"].append(
                    f"{action}: {denial['code']}")
    for info in engine.versions():
        when = str(iso(info.effective_from))
        if start <= info.effective_from <= end:
            marks.setdefault(when, {"at": when, "kind": "version", "labels": []})
            marks[when]["kind"] = "version"
            marks[when]["labels"].append(f"版本 {info.version} 生效")
    inside = [m for m in marks.values() if start <= parse_aware(m["at"]) <= end]
    return sorted(inside, key=lambda m: parse_aware(m["at"]).timestamp())


def timeline(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Which actions are allowed from `from` to `to` (default: the ticket's creation, six days on):
    the deadlines and version boundaries inside as marks, and the allowed set sampled evenly and
    just before and after each mark, so the strip shows every switch."""
    ticket, actor = _field(body, "ticket", dict), _field(body, "actor", str)
    created = ticket.get("created_at")
    start = _time(body, "from") or (parse_aware(created) if isinstance(created, str) else wall_clock())
    end = _time(body, "to") or start + DEFAULT_SPAN
    if end <= start:
        raise InputError([{"path": "/to", "code": "empty_window", "message": "`to` must be after `from`"}], "bad range")
    first = engine.decide(ticket, actor, at=start).to_json()
    moments = [start + (end - start) * i / STEPS for i in range(STEPS + 1)]
    union_marks = _marks(engine, first, start, end)
    for mark in union_marks:
        at = parse_aware(mark["at"])
        moments += [at - timedelta(seconds=1), at]
    samples: list[dict[str, Any]] = []
    for moment in sorted({m for m in moments if start <= m <= end}):
        try:
            decision = engine.decide(ticket, actor, at=moment).to_json()
        except EngineError as exc:  # before the first version, or a scenario a version lacks
            samples.append({"at": iso(moment), "version": None, "allowed": [], "error": str(exc).split("\n")[0]})
            continue
        samples.append({"at": iso(moment), "version": decision["policy"]["version"],
                        "allowed": [a for a, v in decision["actions"].items() if v.get("allowed")]})
    actions = list(first["actions"])
    return {"from": iso(start), "to": iso(end), "actions": actions, "marks": union_marks, "samples": samples}
