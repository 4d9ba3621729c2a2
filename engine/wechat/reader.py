"""Typed reads out of a platform JSON object, each problem recorded with its JSON pointer.

Platform payloads are read, never coerced: an amount sent as the string "40000" is an error at
its pointer, not 40000 fen, because a caller that stringifies amounts may also round them.
Problems are collected so that one call reports every bad field; `Problems.raise_if_any` raises
one `InputError` at the boundary.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from engine.core.errors import InputError
from engine.core.jsonschema_errors import json_type
from engine.core.problems import Problem, unique
from engine.core.timeutil import NaiveTimeError, iso, parse_aware, to_epoch

MISSING: Any = object()

# Epoch values from here on are milliseconds, not seconds: 10**11 s is the year 5138, while
# 10**11 ms is 1973-03-03, so no real value of either kind is ambiguous.
EPOCH_MILLISECONDS_FROM = 10**11


def pointer(base: str, *parts: Any) -> str:
    return base + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Problems:
    """The problems found so far in one platform object."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.items.append(Problem(code, message, path))

    def raise_if_any(self, summary: str) -> None:
        if self.items:
            raise InputError(unique(self.items), summary)


class Reader:
    """One JSON object at `path`. Every getter returns the value, or `default` after recording a
    problem (so the caller can carry on and collect the next one)."""

    def __init__(self, data: dict[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems

    def at(self, key: str) -> str:
        return pointer(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _raw(self, key: str, required: bool) -> Any:
        value = self.data.get(key, MISSING)
        if value is MISSING or value is None:
            if required:
                self.problems.add(self.at(key), "missing_field", f"`{key}` is required")
            return MISSING
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> None:
        self.problems.add(self.at(key), "wrong_type",
                          f"`{key}` must be {expected}, not {json_type(value)} `{json.dumps(value, ensure_ascii=False)}`"
                          + (" (amounts are integer fen; strings are not converted)"
                             if isinstance(value, str) and expected.startswith("an integer") else ""))

    def child(self, key: str, required: bool = True) -> "Reader | None":
        value = self._raw(key, required)
        if value is MISSING:
            return None
        if not isinstance(value, dict):
            self._wrong(key, "an object", value)
            return None
        return Reader(value, self.at(key), self.problems)

    def integer(self, key: str, required: bool = True, default: Any = None, minimum: int | None = 0) -> Any:
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "an integer", value)
            return default
        if minimum is not None and value < minimum:
            self.problems.add(self.at(key), "below_minimum", f"`{key}` must be at least {minimum}, not {value}")
            return default
        return value

    def string(self, key: str, required: bool = True, default: Any = None) -> Any:
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self._wrong(key, "a string", value)
            return default
        return value

    def boolean(self, key: str, required: bool = True, default: Any = None) -> Any:
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
            return default
        return value

    def string_list(self, key: str, required: bool = True, default: Any = None) -> Any:
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._wrong(key, "an array of strings", value)
            return default
        return value

    def choice(self, key: str, table: Mapping[Any, Any], what: str, required: bool = True, default: Any = None) -> Any:
        """A value that must be a key of `table` (ints stay ints, strings stay strings)."""
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if isinstance(value, bool) or value not in table:
            known = ", ".join(repr(k) if isinstance(k, str) else str(k) for k in table)
            self.problems.add(self.at(key), "unknown_value",
                              f"`{value!r}` is not a known {what} (known: {known})")
            return default
        return table[value]

    def epoch(self, key: str, required: bool = True, default: Any = None) -> Any:
        """Epoch seconds (the platform's time format); must be positive, and not milliseconds."""
        value = self.integer(key, required, default, minimum=1)
        if value is not default and not self.not_milliseconds(key, value):
            return default
        return value

    def not_milliseconds(self, key: str, value: int) -> bool:
        """False, after recording a located problem, when `value` can only be epoch milliseconds.

        The platform sends epoch seconds. Milliseconds are a common integration slip; read as
        seconds they fall in the year 57781 (and crash every date function), so they are refused
        with the value the caller meant, rather than guessed: a caller that slipped here may have
        slipped elsewhere too (docs/wechat.md, "Mapping rules")."""
        if value < EPOCH_MILLISECONDS_FROM:
            return True
        meant = iso(value // 1000) if value // 1000 < EPOCH_MILLISECONDS_FROM else "out of range"
        self.problems.add(self.at(key), "epoch_milliseconds",
                          f"`{key}` {value} is epoch milliseconds ({meant}); the platform's times are epoch "
                          f"seconds: send {value // 1000}")
        return False

    def time(self, key: str, required: bool = True, default: Any = None) -> Any:
        """A time given by a caller (context): epoch seconds, or ISO 8601 with an offset → epoch."""
        value = self._raw(key, required)
        if value is MISSING:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                self.problems.add(self.at(key), "below_minimum", f"`{key}` must be a positive epoch, not {value}")
                return default
            return value if self.not_milliseconds(key, value) else default
        if isinstance(value, str):
            try:
                return to_epoch(parse_aware(value))
            except NaiveTimeError:
                self.problems.add(self.at(key), "naive_time",
                                  f"`{key}` has no UTC offset (`{value}`): write e.g. 2024-06-01T10:00:00+08:00")
                return default
            except ValueError:
                pass
        self.problems.add(self.at(key), "bad_time",
                          f"`{key}` must be epoch seconds or ISO 8601 with an offset, not {json_type(value)} `{json.dumps(value, ensure_ascii=False)}`")
        return default

    def unknown_keys(self, known: set[str] | dict[str, Any]) -> None:
        for key in self.data:
            if key not in known:
                self.problems.add(self.at(key), "unknown_field",
                                  f"unknown field `{key}` (known: {', '.join(sorted(known))})")
