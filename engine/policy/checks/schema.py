"""The JSON-Schema check (`schemas/policy.schema.json`, draft 2020-12), errors as Diagnostics.

jsonschema's own messages quote Python reprs (`'foo' is not one of ['a', 'b']`); a policy author
should read YAML words instead, at the line of the offending key or value. Each validator keyword
that the schema uses has a translation below; a subschema may carry `x-error` (an annotation
keyword, ignored by validators and editors) with the sentence to show when it fails.
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from engine.core.problems import Diagnostic
from engine.core.jsonschema_errors import json_type
from engine.core.resources import schema_path
from engine.policy.yamlsafe import pointer_join

SCHEMA_FILE = "policy.schema.json"
_JSON_TYPE_WORDS = {"object": "mapping", "array": "list", "string": "string", "integer": "integer",
                    "number": "number", "boolean": "boolean", "null": "null"}


@lru_cache(maxsize=1)
def policy_schema() -> dict:
    with open(schema_path(SCHEMA_FILE), encoding="utf-8") as handle:
        return json.load(handle)


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


def schema_diagnostics(document: Any) -> Iterator[Diagnostic]:
    for error in validator().iter_errors(document.data):
        yield from _translate(error, document)


# The policy team reads YAML: its words for JSON's object and array.
_YAML_WORDS = {"object": "mapping", "array": "list"}


def type_word(value: Any) -> str:
    word = json_type(value)
    return _YAML_WORDS.get(word, word)


def shown(value: Any) -> str:
    """A value as the author wrote it (YAML-ish), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (dict, list)):
        return f"a {type_word(value)}"
    else:
        text = str(value)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def got(value: Any) -> str:
    """`null`, `a list`, `string `48``: what was found, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return f"a {type_word(value)}"
    return f"{type_word(value)} {shown(value)}"


def did_you_mean(word: Any, choices: list) -> str | None:
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _translate(error: ValidationError, document: Any) -> Iterator[Diagnostic]:
    pointer = ""
    for token in error.absolute_path:
        pointer = pointer_join(pointer, token)
    schema = error.schema if isinstance(error.schema, dict) else {}
    x_error = schema.get("x-error")
    kind = error.validator
    value = error.instance

    def at(code: str, message: str, hint: str | None = None, where: str = pointer,
           at_key: bool = False) -> Diagnostic:
        return document.diagnostic(code, where, message, hint=hint, at_key=at_key)

    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        for key in value:
            if key not in known:
                hint = did_you_mean(key, known) or (f"expected one of: {', '.join(known)}" if len(known) <= 12 else None)
                yield at("unknown_key", f"unknown key `{key}`", hint, pointer_join(pointer, key), at_key=True)
    elif kind == "required" and isinstance(value, dict):
        for key in error.validator_value:
            if key not in value:
                yield at("missing_key", f"missing required key `{key}`", where=pointer_join(pointer, key))
    elif kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_JSON_TYPE_WORDS.get(t, t) for t in expected)
        hint = x_error
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "string" in expected:
            hint = hint or "quote it"
        yield at("wrong_type", f"expected {words}, got {got(value)}", hint)
    elif kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        listed = ", ".join(str(a) for a in allowed)
        yield at("unknown_value", f"{shown(value)} is not one of: {listed}", did_you_mean(value, allowed))
    elif kind == "pattern":
        yield at("bad_format", f"{x_error or 'does not have the expected format'}: got {shown(value)}")
    elif kind == "propertyNames":
        yield at("bad_key", f"{x_error or 'key has the wrong format'}: got {shown(value)}")
    elif kind == "uniqueItems" and isinstance(value, list):
        seen: list = []
        for index, item in enumerate(value):
            if item in seen:
                yield at("duplicate_item", f"{shown(item)} is listed twice", where=pointer_join(pointer, index))
                break
            seen.append(item)
    elif kind == "minItems":
        yield at("too_few", f"needs at least {error.validator_value} item(s)")
    elif kind == "minLength":
        yield at("empty", "must not be empty")
    elif kind in ("minProperties", "maxProperties"):
        yield at("key_count", x_error or f"needs {'at least' if kind == 'minProperties' else 'at most'} "
                                         f"{error.validator_value} key(s)", at_key=True)
    elif kind in ("minimum", "maximum"):
        yield at("out_of_range", f"{shown(value)} is out of range ({kind} {error.validator_value})")
    elif kind == "oneOf" and x_error and isinstance(value, dict) and _all_required_alternatives(schema):
        options = [alt["required"][0] for alt in schema["oneOf"]]
        found = [o for o in options if o in value]
        yield at("one_effect", f"{x_error}; found {', '.join(f'`{f}`' for f in found) or 'none'}", at_key=True)
    elif kind in ("oneOf", "anyOf"):
        if x_error:
            yield at("bad_value", x_error, at_key=True)
        else:
            inner = best_match(error.context) if error.context else None
            if inner is not None:
                yield from _translate(inner, document)
            else:
                yield at("bad_value", error.message)
    elif kind == "not":
        yield at("not_allowed", x_error or "this combination of keys is not allowed", at_key=True)
    else:
        yield at("schema", error.message)


def _all_required_alternatives(schema: dict) -> bool:
    alternatives = schema.get("oneOf") or []
    return bool(alternatives) and all(
        isinstance(alt, dict) and list(alt) == ["required"] and len(alt["required"]) == 1 for alt in alternatives)
