"""The JSON-Schema check of a policy file (`schemas/policy.schema.json`, draft 2020-12).

The errors are translated by the one translator (`engine.core.jsonschema_errors`) in the policy
team's words (YAML mappings and lists) and located at the line of the offending key or value.

Fast path (`fast=True`, what a long-lived process's reload asks for, engine/policy/memo.py): one
call of a fastjsonschema validator compiled from the same schema; only a document it refuses goes
through jsonschema's full error listing, so a bad file's diagnostics are the very same. Measured:
a changed 1000-line policy file took ~0.02 s (under a profiler ~0.08 s) in `iter_errors`, ~0.003 s
in the compiled validator. Compiling costs ~0.2 s once per process (the generated code is large),
which a one-shot `aftersale validate` of five files would not win back: it keeps the full
validator only. The fast validator may only ever be *stricter* than jsonschema (a refusal is
re-checked by the full one); tests/test_schema_fast_path.py checks that it never passes a
document jsonschema refuses, over every bundled file and hundreds of broken variants.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable, Iterator

import fastjsonschema
from jsonschema import Draft202012Validator

from engine.core.jsonschema_errors import YAML_WORDS, did_you_mean, json_type, schema_problems
from engine.core.jsonschema_errors import got as _got, shown as _shown
from engine.core.problems import Diagnostic
from engine.core.resources import read_schema
from engine.policy.bundle import PolicyDocument

SCHEMA_FILE = "policy.schema.json"

# Problems about a key (or about which keys a mapping holds) point at the key, not its value.
AT_KEY_CODES = frozenset({"unknown_field", "too_many", "too_few", "one_effect", "not_allowed"})

__all__ = ["schema_diagnostics", "policy_schema", "validator", "fast_validator", "fast_accepts", "did_you_mean", "got", "shown", "type_word"]


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(read_schema(SCHEMA_FILE))
    return schema


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


@lru_cache(maxsize=1)
def fast_validator() -> Callable[[Any], Any]:
    # use_default=False: never fill defaults into the document (the schema has none today, and a
    # check must not change what it checks)
    compiled: Callable[[Any], Any] = fastjsonschema.compile(policy_schema(), use_default=False)
    return compiled


def fast_accepts(data: Any) -> bool:
    """True if the compiled validator accepts `data`. Any failure of it (a refusal, or an
    exception the generated code raises on an odd value) means: ask the full validator."""
    try:
        fast_validator()(data)
    except Exception:  # noqa: BLE001 - whatever the fast path trips on, the full listing decides
        return False
    return True


def schema_diagnostics(document: PolicyDocument, fast: bool = False) -> Iterator[Diagnostic]:
    """Every schema problem of `document`, located. `fast`: try the compiled validator first."""
    if fast and fast_accepts(document.data):
        return
    for error in validator().iter_errors(document.data):
        for problem in schema_problems(error, YAML_WORDS):
            yield document.diagnostic(problem.code, problem.path, problem.message, hint=problem.hint,
                                      at_key=problem.code in AT_KEY_CODES)


def type_word(value: Any) -> str:
    word = json_type(value)
    return YAML_WORDS.get(word, word)


def shown(value: Any) -> str:
    return _shown(value, YAML_WORDS)


def got(value: Any) -> str:
    return _got(value, YAML_WORDS)
