"""JSON Schema checking of caller input (tickets, action payloads) with located problems.

Valid input takes the fast path: one call of a fastjsonschema validator compiled once. Only when
that fails do we run `jsonschema` to collect *every* problem, each as `{path (JSON pointer),
code, message}`, so a caller fixes all of them in one go.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Iterator

import fastjsonschema
import jsonschema

TIME_MESSAGES = {
    "naive_time": "{field} has no UTC offset (`{text}`): write it as 2024-06-01T10:00:00+08:00",
    "bad_time": "{field} is not an ISO 8601 date-time (`{text}`), expected 2024-06-01T10:00:00+08:00",
    "time_out_of_range": "{field} is outside the years 1970-2999 (`{text}`)",
}


# The one spelling of a time the contract accepts: the `time` pattern of ticket.schema.json,
# requests/common.schema.json and policytest.schema.json (tests/test_ticket.py keeps them equal).
# Python's fromisoformat alone is laxer (`+08` offsets, basic format, 7-digit fractions), which
# would let the library accept times the HTTP service refuses.
# Years 1970-2999: a time near the ends of Python's datetime (9999-12-31T23:59:59+00:00 is
# year 10000 in +08:00) cannot be rendered or shifted by a deadline, and no ticket is that old.
TIME_PATTERN = (r"^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                r"(Z|z|[+-][0-9]{2}:?[0-9]{2})$")
FIRST_YEAR, LAST_YEAR = 1970, 2999
_TIME = re.compile(TIME_PATTERN)


def time_problem(text: Any) -> datetime | str:
    """The aware datetime `text` denotes, or the problem code (`naive_time` / `bad_time`)."""
    if not isinstance(text, str):
        return "bad_time"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return "bad_time"
    if value.tzinfo is None or value.utcoffset() is None:
        return "naive_time"
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return "time_out_of_range"
    if not _TIME.match(text):
        return "bad_time"
    return value


class JsonChecker:
    """One schema, compiled once for the fast path and once for the full error listing."""

    def __init__(self, schema: dict) -> None:
        self._fast = fastjsonschema.compile(schema)
        self._full = jsonschema.Draft202012Validator(schema)

    def problems(self, obj: Any) -> list[dict]:
        try:
            self._fast(obj)
            return []
        except fastjsonschema.JsonSchemaException:
            pass
        # One problem can be reached through several schema branches (a `required` repeated in an
        # allOf): report it once.
        unique = {(p["path"], p["code"], p["message"]): p
                  for error in self._full.iter_errors(obj) for p in leaf_problems(error)}
        return sorted(unique.values(), key=lambda p: p["path"])


def pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def leaf_problems(error: jsonschema.ValidationError) -> Iterator[dict]:
    """Like `translate`, but for anyOf/oneOf errors yields the branches' problems (`context`),
    which say what to fix, instead of "is not valid under any of the given schemas"."""
    if error.context:
        for sub in error.context:
            yield from leaf_problems(sub)
        return
    yield from translate(error)


def translate(error: jsonschema.ValidationError) -> Iterator[dict]:
    """One jsonschema error → problems a person can act on (one per missing / unknown key)."""
    where = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        for name in error.validator_value:
            if isinstance(error.instance, dict) and name not in error.instance:
                yield {"path": pointer(where + [name]), "code": "missing_field",
                       "message": f"`{name}` is required"}
        return
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        for name in error.instance:
            if name not in known:
                yield {"path": pointer(where + [name]), "code": "unknown_field",
                       "message": f"unknown field `{name}` (known: {', '.join(known) or 'none'})"}
        return
    path = pointer(where)
    field = where[-1] if where else "value"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        yield {"path": path, "code": "wrong_type",
               "message": f"`{field}` must be {expected}, not {json_type(error.instance)}"}
    elif kind in ("enum", "const"):
        known = error.validator_value if kind == "enum" else [error.validator_value]
        yield {"path": path, "code": "unknown_value",
               "message": f"`{_short(error.instance)}` is not a known {field} (known: {', '.join(map(str, known))})"}
    elif kind == "minimum":
        code = "negative_amount" if str(field).endswith("amount") else "below_minimum"
        yield {"path": path, "code": code,
               "message": f"`{field}` must be at least {error.validator_value}, not {error.instance}"}
    elif kind == "maximum":
        yield {"path": path, "code": "above_maximum",
               "message": f"`{field}` must be at most {error.validator_value}, not {error.instance}"}
    elif kind == "pattern" and isinstance(error.instance, str) and _is_time_pattern(error.validator_value):
        code = time_problem(error.instance)
        code = code if isinstance(code, str) else "bad_time"
        yield {"path": path, "code": code,
               "message": TIME_MESSAGES[code].format(field=f"`{field}`", text=error.instance)}
    elif kind == "pattern":
        yield {"path": path, "code": "bad_format",
               "message": f"`{field}` is not in the expected form: {_short(error.instance)}"}
    elif kind in ("maxItems", "maxProperties"):
        yield {"path": path, "code": "too_many",
               "message": f"`{field}` holds more than {error.validator_value} entries"}
    elif kind in ("minItems", "minLength"):
        yield {"path": path, "code": "empty", "message": f"`{field}` must not be empty"}
    elif kind == "maxLength":
        yield {"path": path, "code": "too_long",
               "message": f"`{field}` must be at most {error.validator_value} characters"}
    else:
        yield {"path": path, "code": "invalid", "message": error.message}


def _is_time_pattern(pattern: str) -> bool:
    # Our schemas spell an aware ISO 8601 date-time as one regex (see ticket.schema.json $defs).
    return "[T ]" in pattern and "[+-]" in pattern


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
