"""The one translator from JSON Schema errors to `Problem`s, and the checker of caller input.

jsonschema's own messages quote Python reprs (`'foo' is not one of ['a', 'b']`) and its
`required` error names no path for the missing key; a caller, or a policy author reading YAML,
should read their own words at the place to fix. Every JSON Schema keyword our schemas use has a
translation in `schema_problems`; a subschema may carry `x-error` (an annotation keyword, ignored
by validators and editors) with the sentence to show when it fails. Tickets, payloads, request
bodies, policy files and policy test-case files all go through it; only the words for types
differ (`TypeWords`: a policy author writes YAML mappings and lists, a caller JSON objects and
arrays).

Valid input takes the fast path (`JsonChecker`): one call of a fastjsonschema validator compiled
once. Only when that fails do we run `jsonschema` to collect *every* problem, so a caller fixes
all of them in one go.
"""
from __future__ import annotations

import difflib
import json
import re
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from engine.core.problems import PathPart, Problem, pointer, unique

__all__ = ["JsonChecker", "schema_problems", "pointer", "time_problem", "TIME_MESSAGES", "TIME_PATTERN",
           "JSON_WORDS", "YAML_WORDS", "json_type", "type_word", "shown", "got", "did_you_mean"]

TypeWords = Mapping[str, str]
JSON_WORDS: TypeWords = {}
YAML_WORDS: TypeWords = {"object": "mapping", "array": "list"}  # the policy team reads YAML

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

    def __init__(self, schema: dict[str, Any], words: TypeWords = JSON_WORDS) -> None:
        self._fast: Callable[[Any], Any] = fastjsonschema.compile(schema)
        self._full = jsonschema.Draft202012Validator(schema)
        self._words = words

    def problems(self, obj: Any) -> list[Problem]:
        try:
            self._fast(obj)
            return []
        except fastjsonschema.JsonSchemaException:
            pass
        # One problem can be reached through several schema branches (a `required` repeated in an
        # allOf): report it once.
        return unique(p for error in self._full.iter_errors(obj) for p in schema_problems(error, self._words))


def schema_problems(error: ValidationError, words: TypeWords = JSON_WORDS) -> Iterator[Problem]:
    """One jsonschema error → the problems a person can act on (one per missing / unknown key)."""
    where: list[PathPart] = list(error.absolute_path)
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    x_error = schema.get("x-error")
    kind = error.validator
    value = error.instance
    field = next((str(p) for p in reversed(where) if isinstance(p, str)), "value")  # a list item: its list

    def problem(code: str, message: str, hint: str | None = None, parts: list[PathPart] = where) -> Problem:
        return Problem.at(parts, code, message, hint)

    if kind == "required" and isinstance(value, dict):
        for name in error.validator_value:
            if name not in value:
                yield problem("missing_field", f"`{name}` is required", parts=where + [name])
    elif kind == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        for name in value:
            if name not in known:
                yield problem("unknown_field", f"unknown field `{name}` (known: {', '.join(known) or 'none'})",
                              did_you_mean(name, known), where + [name])
    elif kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        hint = x_error
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "string" in expected:
            hint = hint or "quote it"
        shown_types = " or ".join(words.get(t, t) for t in expected)
        yield problem("wrong_type", f"`{field}` must be {shown_types}, not {got(value, words)}", hint)
    elif kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        yield problem("unknown_value",
                      f"{shown(value, words)} is not a known {field} (known: {', '.join(map(str, allowed))})",
                      did_you_mean(value, allowed))
    elif kind == "minimum":
        code = "negative_amount" if field.endswith("amount") else "below_minimum"
        yield problem(code, f"`{field}` must be at least {error.validator_value}, not {value}")
    elif kind == "maximum":
        yield problem("above_maximum", f"`{field}` must be at most {error.validator_value}, not {value}")
    elif kind == "pattern" and isinstance(value, str) and _is_time_pattern(error.validator_value):
        parsed = time_problem(value)
        code = parsed if isinstance(parsed, str) else "bad_time"
        yield problem(code, TIME_MESSAGES[code].format(field=f"`{field}`", text=value))
    elif kind == "pattern":
        yield problem("bad_format", f"{x_error or f'`{field}` is not in the expected form'}: got {shown(value, words)}")
    elif kind == "propertyNames":
        yield problem("bad_key", f"{x_error or 'key has the wrong format'}: got {shown(value, words)}")
    elif kind == "uniqueItems" and isinstance(value, list):
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                yield problem("duplicate_item", f"{shown(item, words)} is listed twice", parts=where + [index])
                break
            seen.append(item)
    elif kind in ("maxItems", "maxProperties"):
        yield problem("too_many", x_error or f"`{field}` holds more than {error.validator_value} entries")
    elif kind in ("minItems", "minProperties"):
        what = "entry" if error.validator_value == 1 else "entries"
        yield problem("too_few", x_error or f"`{field}` needs at least {error.validator_value} {what}")
    elif kind == "minLength":
        yield problem("empty", f"`{field}` must not be empty")
    elif kind == "maxLength":
        yield problem("too_long", f"`{field}` must be at most {error.validator_value} characters")
    elif kind == "oneOf" and x_error and isinstance(value, dict) and _all_required_alternatives(schema):
        options = [alt["required"][0] for alt in schema["oneOf"]]
        found = [o for o in options if o in value]
        yield problem("one_effect", f"{x_error}; found {', '.join(f'`{f}`' for f in found) or 'none'}")
    elif kind in ("oneOf", "anyOf") and not x_error and error.context:
        inner = best_match(error.context)  # the branch that came closest says what to fix
        yield from schema_problems(inner, words)
    elif kind == "not":
        yield problem("not_allowed", x_error or "this combination of keys is not allowed")
    else:
        yield problem("invalid", x_error or error.message)


def _all_required_alternatives(schema: dict[str, Any]) -> bool:
    alternatives = schema.get("oneOf") or []
    return bool(alternatives) and all(
        isinstance(alt, dict) and list(alt) == ["required"] and len(alt["required"]) == 1 for alt in alternatives)


def _is_time_pattern(pattern: str) -> bool:
    # Our schemas spell an aware ISO 8601 date-time as one regex (see ticket.schema.json $defs).
    return "[T ]" in pattern and "[+-]" in pattern


def did_you_mean(word: Any, choices: list[Any]) -> str | None:
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def type_word(value: Any, words: TypeWords = JSON_WORDS) -> str:
    word = json_type(value)
    return words.get(word, word)


def shown(value: Any, words: TypeWords = JSON_WORDS) -> str:
    """A value as the author wrote it, shortened; a container by its kind."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (dict, list)):
        return f"a {type_word(value, words)}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def got(value: Any, words: TypeWords = JSON_WORDS) -> str:
    """`null`, `a list`, `string `48``: what was found, for "must be X, not Y"."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return f"a {type_word(value, words)}"
    return f"{type_word(value, words)} {shown(value, words)}"
