"""The OpenAPI 3.1 document, generated from the route table (routes.py) and the JSON Schema files
(the contract), never written by hand. Change a schema file or a route and /openapi.json follows.

Built for client generators and offline validators:
- every schema a route uses is a component, and so is every definition those schemas reference
  (`ticket.proposal` is `$defs/proposal` of `schemas/ticket.schema.json`): definitions are hoisted
  to `#/components/schemas/<name>` instead of being reached by `#/components/schemas/x/$defs/y`,
  which generators such as openapi-python-client cannot follow;
- every `$ref` is local (`#/components/schemas/...`): no `$id` is kept, so nothing names a host a
  validator would try to fetch;
- each operation has an `operationId` (the generated function's name) and a tag.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from engine.service.routes import ROUTES, Schema
from engine.service.validation import SchemaStore

STATUS_TEXT = {400: "malformed JSON", 401: "missing or wrong admin token", 404: "unknown version or route",
               409: "a reload would drop a version in force that `remove` does not declare", 413: "body over the size limit", 422: "the body, ticket or payload is invalid (every problem, located)",
               500: "internal error (no internals shown; the server log names the incident)", 503: "not ready"}

ERROR = "requests/error"
COMPONENTS = "#/components/schemas/"
# keys that only annotate: a schema made of `$ref` and these is an alias of its target
_ANNOTATIONS = {"title", "description", "$comment", "examples"}


class _Hoister:
    """Turns (schema file, JSON pointer) targets into named components, following `$ref`s."""

    def __init__(self, store: SchemaStore) -> None:
        self.store = store
        self.components: dict[str, Any] = {}
        self._names: dict[tuple[str, str], str] = {}   # (document uri, fragment) → component name

    def name_of(self, uri: str, fragment: str) -> str:
        key = (uri, fragment)
        if key not in self._names:
            stem = self.store.file_of[uri].as_posix().removesuffix(".schema.json").replace("/", ".")
            parts = [p for p in fragment.strip("/").split("/") if p and p != "$defs"]
            name = ".".join([stem, *parts])
            if name in self._names.values():
                raise ValueError(f"two schema locations would share the component name `{name}`")
            self._names[key] = name
            self.components[name] = None  # reserved: a cycle back here stays a reference
            self.components[name] = _named_by_component(self._rewrite(self._resolve(uri, fragment), uri))
        return self._names[key]

    def named(self, reference: str) -> str:
        """`decision` or `check#/$defs/result` (relative to the schemas directory) → component name."""
        path, _, fragment = reference.partition("#")
        uri = next(u for u, f in self.store.file_of.items() if f.as_posix() == f"{path}.schema.json")
        return self.name_of(uri, fragment)

    def _resolve(self, uri: str, fragment: str) -> Any:
        node: Any = self.store.by_id[uri]
        for part in (p for p in fragment.strip("/").split("/") if p):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return copy.deepcopy(node)

    def _rewrite(self, node: Any, base: str) -> Any:
        if isinstance(node, list):
            return [self._rewrite(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$id", "$schema", "$defs"):
                continue  # no re-basing, one dialect for the document, definitions hoisted on use
            if key == "$ref" and isinstance(value, str):
                document, _, fragment = urljoin(base, value).partition("#")
                if document not in self.store.by_id:
                    raise ValueError(f"`$ref` {value!r} in {self.store.file_of[base]} names no schema file")
                out[key] = COMPONENTS + self.name_of(document, fragment)
                continue
            out[key] = self._rewrite(value, base)
        return out


def _named_by_component(schema: Any) -> Any:
    """Generators name a model after its `title` when there is one ("DecideWhatMayThisActorDo...");
    the title joins the description so that the component name (`requests.decide` → RequestsDecide)
    names it instead."""
    if isinstance(schema, dict) and "title" in schema:
        schema = dict(schema)
        title = schema.pop("title")
        schema["description"] = f"{title}. {schema['description']}" if schema.get("description") else title
    return schema


def _inline(hoister: _Hoister, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema written in the route table: `$ref`s there name components as `decision`."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (COMPONENTS + hoister.named(v) if k == "$ref" else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node
    return walk(schema)  # type: ignore[no-any-return]


def _ref(hoister: _Hoister, schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        return {"type": "object"}
    if isinstance(schema, dict):
        return _inline(hoister, schema)
    name = hoister.named(schema)
    target = hoister.components[name]
    while set(target) - _ANNOTATIONS == {"$ref"}:  # an alias (check.schema.json is `$ref: result`)
        name = target["$ref"].removeprefix(COMPONENTS)
        target = hoister.components[name]
    return {"$ref": COMPONENTS + name}


def build_openapi(schemas_dir: Path, version: str = "1") -> dict[str, Any]:
    hoister = _Hoister(SchemaStore(schemas_dir))
    error = _ref(hoister, ERROR)
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        if not op.documented:
            continue
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(hoister, op.response)}}}},
        }
        if op.request:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": _ref(hoister, f"requests/{op.request}")}}}
        if op.parameters:
            operation["parameters"] = [{"name": p.name, "in": p.where, "required": p.required,
                                        "description": p.description, "schema": p.schema} for p in op.parameters]
        for status in (*op.errors, 500):
            operation["responses"][str(status)] = {"description": STATUS_TEXT[status],
                                                   "content": {"application/json": {"schema": error}}}
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "aftersale policy decision service", "version": version,
                 "description": "WeChat Shop 售后协商 policy as a service; vocabulary as in docs/design.md."},
        "paths": paths,
        "components": {"schemas": dict(sorted(hoister.components.items()))},
    }
