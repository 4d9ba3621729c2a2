"""The JSON-Schema check of a policy file (`schemas/policy.schema.json`, draft 2020-12).

The errors are translated by the one translator (`engine.core.jsonschema_errors`) in the policy
team's words (YAML mappings and lists) and located at the line of the offending key or value.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator

from engine.core.jsonschema_errors import YAML_WORDS, did_you_mean, json_type, schema_problems
from engine.core.jsonschema_errors import got as _got, shown as _shown
from engine.core.problems import Diagnostic
from engine.core.resources import read_schema
from engine.policy.bundle import PolicyDocument

SCHEMA_FILE = "policy.schema.json"

# Problems about a key (or about which keys a mapping holds) point at the key, not its value.
AT_KEY_CODES = frozenset({"unknown_field", "too_many", "too_few", "one_effect", "not_allowed"})

__all__ = ["schema_diagnostics", "policy_schema", "validator", "did_you_mean", "got", "shown", "type_word"]


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(read_schema(SCHEMA_FILE))
    return schema


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


def schema_diagnostics(document: PolicyDocument) -> Iterator[Diagnostic]:
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
