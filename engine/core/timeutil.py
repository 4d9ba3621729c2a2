"""Times: timezone-aware in and out. The policy's own zone is Asia/Shanghai (+08:00); inside facts
times are epoch seconds so that durable_rules can compare them as integers."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


class NaiveTimeError(ValueError):
    """A timestamp without a UTC offset: ambiguous, so refused."""


def parse_aware(text: str) -> datetime:
    """Parse ISO 8601 with an offset (`Z` accepted). Raise ValueError/NaiveTimeError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(text).__name__}")
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00") if text.endswith("Z") else text.strip())
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimeError(f"`{text}` has no UTC offset (write e.g. `{text}+08:00`)")
    return value


def to_epoch(value: datetime) -> int:
    return int(value.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, SHANGHAI)


_EIGHT_HOURS = timedelta(hours=8)


def iso(value: datetime | int | None) -> str | None:
    """Render in the policy's zone (+08:00), seconds precision, for stable JSON. Called a few
    times per decision: the common cases skip the datetime conversions (measured 1.5 → 0.9 µs)."""
    if value is None:
        return None
    if isinstance(value, int):
        return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(value + 28800))
    if value.utcoffset() == _EIGHT_HOURS:
        return value.isoformat(timespec="seconds")
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


def now() -> datetime:
    """The wall clock, read only at the edges (CLI, service), never inside an evaluation."""
    return datetime.now(SHANGHAI)
