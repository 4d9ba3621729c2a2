"""The OpenAPI 3.1 document, generated from the JSON Schema files (the contract), never written
by hand: every `schemas/**/*.schema.json` becomes a component (named by its path: `ticket`,
`requests.decide`), its cross-file `$ref`s rewritten to point at components, and each route names
the components it takes and returns. Change a schema file and /openapi.json follows."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from engine.service.validation import SchemaStore

# (method, path, summary, request component or None, response component or None, error statuses)
ROUTES: list[tuple[str, str, str, str | None, str | None, tuple[int, ...]]] = [
    ("post", "/v1/decide", "what may this actor do now on this ticket", "requests.decide", "decision", (400, 404, 413, 422)),
    ("post", "/v1/decide/batch", "several decide questions, one policy bundle", "requests.decide-batch", None, (400, 413, 422)),
    ("post", "/v1/check", "is this concrete action (with its payload) valid now", "requests.check", "check", (400, 404, 413, 422)),
    ("post", "/v1/apply", "what happens when the buyer answers (or times out)", "requests.apply", "apply", (400, 404, 413, 422)),
    ("post", "/v1/wechat/decide", "decide from the platform's after_sale_order", "requests.wechat-decide", "decision", (400, 404, 413, 422)),
    ("post", "/v1/wechat/check", "check a merchantupdateaftersale body", "requests.wechat-check", "check", (400, 404, 413, 422)),
    ("get", "/v1/versions", "versions with effective windows, the one in force, the bundle hash", None, None, (422,)),
    ("get", "/v1/versions/{version}", "one version's policy document as JSON", None, "policy", (404,)),
    ("get", "/v1/diff", "semantic diff of two versions (?from=A&to=B)", None, None, (404, 422)),
    ("get", "/v1/changelog", "the changelog generated from the policy files", None, None, (422,)),
    ("get", "/healthz", "liveness", None, None, ()),
    ("get", "/readyz", "readiness, loaded versions, bundle hash, last reload error", None, None, (503,)),
    ("post", "/admin/reload", "reload the rules directory now (all workers)", None, None, (401, 422)),
]

STATUS_TEXT = {400: "malformed JSON", 401: "missing or wrong admin token", 404: "unknown version or route",
               413: "body over the size limit", 422: "the body, ticket or payload is invalid (every problem, located)",
               503: "not ready"}


def _component_name(store: SchemaStore, uri: str) -> str:
    relative = store.file_of[uri.split("#", 1)[0]].as_posix()
    return relative.removesuffix(".schema.json").replace("/", ".")


def _refs(node: Any, base: str) -> set[str]:
    if isinstance(node, dict):
        found = {urljoin(base, node["$ref"]).partition("#")[0]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value, base)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item, base) for item in node)) if node else set()
    return set()


def _reachable(store: SchemaStore, roots: set[str]) -> list[str]:
    """The schema files the routes use, and the files those reference, transitively."""
    seen: set[str] = set()
    todo = [uri for uri in store.by_id if _component_name(store, uri) in roots]
    while todo:
        uri = todo.pop()
        if uri in seen or uri not in store.by_id:
            continue
        seen.add(uri)
        todo.extend(_refs(store.by_id[uri], uri))
    return sorted(seen)


def _rewrite(node: Any, base: str, store: SchemaStore) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("$id", "$schema"):
                continue  # a component must not re-base references, and the document sets the dialect
            if key == "$ref" and isinstance(value, str):
                target = urljoin(base, value)
                document, _, fragment = target.partition("#")
                if document in store.by_id:
                    out[key] = f"#/components/schemas/{_component_name(store, document)}{fragment}"
                    continue
            out[key] = _rewrite(value, base, store)
        return out
    if isinstance(node, list):
        return [_rewrite(item, base, store) for item in node]
    return node


def build_openapi(schemas_dir: Path, version: str = "1") -> dict:
    store = SchemaStore(schemas_dir)
    roots = {name for route in ROUTES for name in (route[3], route[4]) if name} | {"requests.error"}
    components = {_component_name(store, uri): _rewrite(copy.deepcopy(store.by_id[uri]), uri, store)
                  for uri in _reachable(store, roots)}

    def ref(name: str | None) -> dict:
        if name and name in components:
            return {"$ref": f"#/components/schemas/{name}"}
        return {"type": "object"}

    paths: dict[str, dict] = {}
    for method, path, summary, request, response, errors in ROUTES:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": (method + path).replace("/", "_").replace("{", "").replace("}", "").strip("_"),
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref(response)}}}},
        }
        if request:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(request)}}}
        if "{version}" in path:
            operation["parameters"] = [{"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}]
        if path == "/v1/diff":
            operation["parameters"] = [{"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
                                       for name in ("from", "to")]
        for status in errors + (500,):
            operation["responses"][str(status)] = {
                "description": STATUS_TEXT.get(status, "internal error (no internals shown; see the server log)"),
                "content": {"application/json": {"schema": ref("requests.error")}}}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "aftersale policy decision service", "version": version,
                 "description": "WeChat Shop 售后协商 policy as a service; vocabulary as in docs/design.md."},
        "paths": paths,
        "components": {"schemas": components},
    }
