"""A JSON Schema as msgspec types, for the fast path of validating a valid ticket.

`msgspec.convert(ticket, type)` checks a ticket dict in ~2 µs where the compiled fastjsonschema
validator takes ~6 µs (bench/bench_decide.py, "ticket validation"). The types are generated from
schemas/ticket.schema.json itself, so the schema stays the one contract: `struct_type` translates
only the keywords it knows to be exact in msgspec (type, properties, required,
additionalProperties: false, enum of strings, min/maxLength, minimum/maximum, pattern, $ref) and
gives up (returns None) on anything else, and the caller then validates with the schema alone.

msgspec may only ever be stricter than the schema, never laxer: a ticket msgspec refuses is
judged by the schema validator (e.g. `1.0` where an integer is asked: JSON Schema accepts it,
msgspec does not), and only a ticket both accept skips it. tests/test_ticket.py checks that no
ticket msgspec accepts is refused by the schema, over generated and mutated tickets.
"""
from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal, Mapping, Optional, Union

import msgspec

ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$comment", "default", "examples", "$defs"})


class Unsupported(Exception):
    """The schema uses a keyword the translation is not exact for."""


def struct_type(schema: Mapping[str, Any]) -> Any | None:
    """The msgspec type accepting what `schema` accepts (or less), None when not translatable."""
    try:
        return _Translator(schema).type_of(schema, "Ticket")
    except Unsupported:
        return None


class _Translator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.defs: dict[str, Any] = {}

    def type_of(self, node: Mapping[str, Any], name: str) -> Any:
        keys = {k for k in node if not k.startswith("x-")} - ANNOTATIONS
        if "$ref" in keys:
            if keys != {"$ref"}:
                raise Unsupported("$ref beside other keywords")
            return self._ref(node["$ref"])
        if "enum" in keys:
            values = node["enum"]
            if keys - {"enum", "type"} or not values or not all(isinstance(v, str) for v in values):
                raise Unsupported("enum")
            return Literal[tuple(values)]
        kinds = node.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        if not kinds:
            raise Unsupported("no type")
        members = [self._of_kind(node, kind, keys, name) for kind in kinds]
        return members[0] if len(members) == 1 else Union[tuple(members)]

    def _of_kind(self, node: Mapping[str, Any], kind: str, keys: set[str], name: str) -> Any:
        if kind == "null":
            return None
        if kind == "boolean":
            return bool
        if kind == "string":
            self._only(keys, {"type", "minLength", "maxLength", "pattern"})
            return Annotated[str, msgspec.Meta(min_length=node.get("minLength"), max_length=node.get("maxLength"),
                                               pattern=node.get("pattern"))]
        if kind == "integer":
            self._only(keys, {"type", "minimum", "maximum"})
            return Annotated[int, msgspec.Meta(ge=node.get("minimum"), le=node.get("maximum"))]
        if kind == "object":
            return self._object(node, keys, name)
        raise Unsupported(f"type {kind}")

    def _object(self, node: Mapping[str, Any], keys: set[str], name: str) -> Any:
        self._only(keys, {"type", "properties", "required", "additionalProperties"})
        extra = node.get("additionalProperties", True)
        if extra not in (True, False):
            raise Unsupported("additionalProperties schema")
        required = set(node.get("required", ()))
        properties = node.get("properties", {})
        if required - set(properties):
            raise Unsupported("required without a property")
        fields: list[Any] = []
        for prop, sub in properties.items():
            if not prop.isidentifier() or keyword.iskeyword(prop) or prop.startswith("_"):
                raise Unsupported(f"property name {prop}")
            kind = self.type_of(sub, name + "_" + prop)
            if prop in required:
                fields.append((prop, kind))
            else:
                fields.append((prop, Union[kind, msgspec.UnsetType], msgspec.UNSET))
        fields.sort(key=len)  # required (no default) first, as msgspec wants
        return msgspec.defstruct(name, fields, forbid_unknown_fields=not extra, kw_only=True)

    def _ref(self, ref: str) -> Any:
        if not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/"):]:
            raise Unsupported(f"$ref {ref}")
        key = ref[len("#/$defs/"):]
        if key not in self.defs:
            self.defs[key] = self.type_of(self.root["$defs"][key], "Def_" + key)
        return self.defs[key]

    @staticmethod
    def _only(keys: set[str], allowed: set[str]) -> None:
        if keys - allowed:
            raise Unsupported(f"keywords {sorted(keys - allowed)}")


__all__ = ["Optional", "Unsupported", "struct_type"]
