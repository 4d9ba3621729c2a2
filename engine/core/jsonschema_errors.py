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
from dataclasses import dataclass
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
    failure = _Failure(error, words)
    translate = _BY_KEYWORD.get(str(error.validator), _other)
    yield from translate(failure)


@dataclass(frozen=True)
class _Failure:
    """One jsonschema error, with what every translation needs."""

    error: ValidationError
    words: TypeWords

    @property
    def where(self) -> list[PathPart]:
        return list(self.error.absolute_path)

    @property
    def schema(self) -> dict[str, Any]:
        return self.error.schema if isinstance(self.error.schema, dict) else {}

    @property
    def x_error(self) -> str | None:
        text = self.schema.get("x-error")
        return str(text) if text else None

    @property
    def value(self) -> Any:
        return self.error.instance

    @property
    def limit(self) -> Any:
        return self.error.validator_value

    @property
    def field(self) -> str:
        """The key being checked; for a list item, its list."""
        return next((str(p) for p in reversed(self.where) if isinstance(p, str)), "value")

    def problem(self, code: str, message: str, hint: str | None = None, *more: PathPart) -> Problem:
        return Problem.at([*self.where, *more], code, message, hint)


def _required(f: _Failure) -> Iterator[Problem]:
    if isinstance(f.value, dict):
        for name in f.limit:
            if name not in f.value:
                yield f.problem("missing_field", f"`{name}` is required", None, name)


def _additional(f: _Failure) -> Iterator[Problem]:
    if isinstance(f.value, dict):
        known = list(f.schema.get("properties", {}))
        for name in f.value:
            if name not in known:
                yield f.problem("unknown_field", f"unknown field `{name}` (known: {', '.join(known) or 'none'})",
                                did_you_mean(name, known), name)


def _type(f: _Failure) -> Iterator[Problem]:
    expected = f.limit if isinstance(f.limit, list) else [f.limit]
    hint = f.x_error
    if isinstance(f.value, (int, float)) and not isinstance(f.value, bool) and "string" in expected:
        hint = hint or "quote it"
    names = " or ".join(f.words.get(t, t) for t in expected)
    yield f.problem("wrong_type", f"`{f.field}` must be {names}, not {got(f.value, f.words)}", hint)


def _enum(f: _Failure) -> Iterator[Problem]:
    allowed = f.limit if f.error.validator == "enum" else [f.limit]
    yield f.problem("unknown_value",
                    f"{shown(f.value, f.words)} is not a known {f.field} (known: {', '.join(map(str, allowed))})",
                    did_you_mean(f.value, allowed))


def _minimum(f: _Failure) -> Iterator[Problem]:
    code = "negative_amount" if f.field.endswith("amount") else "below_minimum"
    yield f.problem(code, f"`{f.field}` must be at least {f.limit}, not {f.value}")


def _maximum(f: _Failure) -> Iterator[Problem]:
    yield f.problem("above_maximum", f"`{f.field}` must be at most {f.limit}, not {f.value}")


def _pattern(f: _Failure) -> Iterator[Problem]:
    if isinstance(f.value, str) and _is_time_pattern(f.limit):
        parsed = time_problem(f.value)
        code = parsed if isinstance(parsed, str) else "bad_time"
        yield f.problem(code, TIME_MESSAGES[code].format(field=f"`{f.field}`", text=f.value))
    else:
        yield f.problem("bad_format", f"{f.x_error or f'`{f.field}` is not in the expected form'}: "
                                      f"got {shown(f.value, f.words)}")


def _property_names(f: _Failure) -> Iterator[Problem]:
    yield f.problem("bad_key", f"{f.x_error or 'key has the wrong format'}: got {shown(f.value, f.words)}")


def _unique_items(f: _Failure) -> Iterator[Problem]:
    seen: list[Any] = []
    for index, item in enumerate(f.value if isinstance(f.value, list) else ()):
        if item in seen:
            yield f.problem("duplicate_item", f"{shown(item, f.words)} is listed twice", None, index)
            return
        seen.append(item)


def _too_many(f: _Failure) -> Iterator[Problem]:
    yield f.problem("too_many", f.x_error or f"`{f.field}` holds more than {f.limit} entries")


def _too_few(f: _Failure) -> Iterator[Problem]:
    what = "entry" if f.limit == 1 else "entries"
    yield f.problem("too_few", f.x_error or f"`{f.field}` needs at least {f.limit} {what}")


def _min_length(f: _Failure) -> Iterator[Problem]:
    yield f.problem("empty", f"`{f.field}` must not be empty")


def _max_length(f: _Failure) -> Iterator[Problem]:
    yield f.problem("too_long", f"`{f.field}` must be at most {f.limit} characters")


def _alternatives(f: _Failure) -> Iterator[Problem]:
    if f.x_error and isinstance(f.value, dict) and f.error.validator == "oneOf" and _all_required_alternatives(f.schema):
        options = [alt["required"][0] for alt in f.schema["oneOf"]]
        found = [o for o in options if o in f.value]
        yield f.problem("one_effect", f"{f.x_error}; found {', '.join(f'`{o}`' for o in found) or 'none'}")
    elif not f.x_error and f.error.context:
        # the branch that came closest says what to fix
        yield from schema_problems(best_match(f.error.context), f.words)
    else:
        yield from _other(f)


def _not(f: _Failure) -> Iterator[Problem]:
    yield f.problem("not_allowed", f.x_error or "this combination of keys is not allowed")


def _other(f: _Failure) -> Iterator[Problem]:
    yield f.problem("invalid", f.x_error or f.error.message)


# Every keyword our schemas use (anything else: `invalid` with the validator's own message).
_BY_KEYWORD: dict[str, Callable[[_Failure], Iterator[Problem]]] = {
    "required": _required, "additionalProperties": _additional, "type": _type, "enum": _enum, "const": _enum,
    "minimum": _minimum, "maximum": _maximum, "pattern": _pattern, "propertyNames": _property_names,
    "uniqueItems": _unique_items, "maxItems": _too_many, "maxProperties": _too_many, "minItems": _too_few,
    "minProperties": _too_few, "minLength": _min_length, "maxLength": _max_length, "oneOf": _alternatives,
    "anyOf": _alternatives, "not": _not,
}


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
