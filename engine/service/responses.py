"""JSON bodies out: compact UTF-8 (Chinese stays readable), datetimes as ISO 8601."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from starlette.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)
    return Response(body.encode("utf-8"), status_code=status, headers=headers, media_type="application/json")
