"""The one route table of the service: every operation once, with its handler, the request schema
its body must match, the response schema it answers with and the error statuses it can give.

Both the Starlette app (`starlette_routes`) and /openapi.json (openapi.py) are built from `ROUTES`,
so the document cannot list a route the app does not serve, or miss one it does.

Schemas are named by file, relative to `schemas/` without the suffix: `requests/error` is
`decision` is `schemas/decision.schema.json`; a name with a fragment (`check#/$defs/result`)
points inside a file. The responses of the operational endpoints have no file of their own: they
are given inline here, as the parts a client relies on (more fields may come).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.responses import Response
from starlette.routing import Route

from engine.service import handlers, meta

Schema = str | dict[str, Any]  # a schema file (`decision`, `requests/error`, `check#/$defs/result`) or inline JSON Schema


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str                    # "path" or "query"
    required: bool
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Callable[..., Awaitable[Response]]   # (request) -> Response, or (state, body) when `request` is set
    operation_id: str             # the generated client's function name
    summary: str
    request: str | None = None    # the envelope (schemas/requests/<name>.schema.json) the body must match
    response: Schema | None = None
    errors: tuple[int, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    tag: str = "decisions"
    documented: bool = True       # False: served, but not an operation of the API (the document itself)


_VERSION_SUMMARY = {"type": "object", "required": ["version"], "properties": {
    "version": {"type": "string"}, "effective_from": {"type": ["string", "null"]},
    "effective_until": {"type": ["string", "null"]}}}

_BATCH_RESULT = {
    "type": "object",
    "required": ["count", "failed", "bundle_hash", "results"],
    "properties": {
        "count": {"type": "integer"},
        "failed": {"type": "integer", "description": "items answered with an `error` instead of a decision"},
        "bundle_hash": {"type": "string"},
        "results": {"type": "array", "description": "one per item, in order: a decision, or `{error}` for an item the engine refused",
                    "items": {"anyOf": [{"$ref": "decision"}, {"$ref": "requests/error"}]}},
    },
}

_OBJECT = {"type": "object"}

ROUTES: tuple[Operation, ...] = (
    Operation("POST", "/v1/decide", handlers.decide, "decide",
              "what may this actor do now on this ticket", "decide", "decision", (400, 404, 413, 422)),
    Operation("POST", "/v1/decide/batch", handlers.decide_batch, "decide_batch",
              "several decide questions, one policy bundle", "decide-batch", _BATCH_RESULT, (400, 413, 422)),
    Operation("POST", "/v1/check", handlers.check, "check",
              "is this concrete action (with its payload) valid now", "check", "check#/$defs/result", (400, 404, 413, 422)),
    Operation("POST", "/v1/apply", handlers.apply, "apply",
              "what happens when the buyer answers (or times out)", "apply", "apply", (400, 404, 413, 422)),
    Operation("POST", "/v1/wechat/decide", handlers.wechat_decide, "wechat_decide",
              "decide from the platform's after_sale_order", "wechat-decide", _OBJECT, (400, 404, 413, 422), tag="platform"),
    Operation("POST", "/v1/wechat/check", handlers.wechat_check, "wechat_check",
              "check a merchantupdateaftersale body", "wechat-check", _OBJECT, (400, 404, 413, 422), tag="platform"),
    Operation("GET", "/v1/versions", meta.versions, "list_versions",
              "versions with effective windows, the one in force, the bundle hash", None,
              {"type": "object", "required": ["bundle_hash", "at", "in_force", "versions"], "properties": {
                  "bundle_hash": {"type": "string"}, "at": {"type": "string"}, "in_force": {"type": ["string", "null"]},
                  "versions": {"type": "array", "items": _VERSION_SUMMARY}}},
              (422,), (Parameter("at", "query", False, "the moment to ask about (ISO 8601 with offset); default now"),),
              tag="policy"),
    Operation("GET", "/v1/versions/{version}", meta.version_document, "get_version",
              "one version's policy document as JSON", None, _OBJECT, (404,),
              (Parameter("version", "path", True, "a policy version, e.g. 2024-05-31"),), tag="policy"),
    Operation("GET", "/v1/diff", meta.diff, "diff_versions",
              "semantic diff of two versions (?from=A&to=B)", None, _OBJECT, (404, 422),
              (Parameter("from", "query", True, "the older version"), Parameter("to", "query", True, "the newer version"),
               Parameter("annotations", "query", False, "1: include changes to sections and notes")), tag="policy"),
    Operation("GET", "/v1/changelog", meta.changelog, "changelog",
              "the changelog generated from the policy files", None, _OBJECT, (422,),
              (Parameter("order", "query", False, "oldest (default) or newest first",
                         {"type": "string", "enum": ["oldest", "newest"]}),), tag="policy"),
    Operation("GET", "/healthz", meta.healthz, "healthz", "liveness", None,
              {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}, "pid": {"type": "integer"}}},
              tag="operations"),
    Operation("GET", "/readyz", meta.readyz, "readyz",
              "readiness, loaded versions, bundle hash, last reload error", None,
              {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}}, (503,),
              tag="operations"),
    Operation("POST", "/admin/reload", meta.admin_reload, "admin_reload",
              "reload the rules directory now (all workers together); body {remove: [versions]} declares "
              "removed versions that are or were in force", None, _OBJECT, (400, 401, 409, 422), tag="operations"),
    Operation("GET", "/metrics", meta.metrics, "metrics", "Prometheus metrics, summed over the workers (text format)",
              None, _OBJECT, tag="operations", documented=False),
    Operation("GET", "/openapi.json", meta.openapi, "openapi", "this document", None, _OBJECT,
              tag="operations", documented=False),
)


def starlette_routes() -> list[Route]:
    """The app's routes, in table order (Starlette matches the first; no two paths overlap)."""
    merged: dict[str, list[Operation]] = {}
    for operation in ROUTES:
        merged.setdefault(operation.path, []).append(operation)
    routes = []
    for path, operations in merged.items():
        if len(operations) != 1:
            raise ValueError(f"{path}: one handler per path (methods {[o.method for o in operations]})")
        operation = operations[0]
        handler: Any = operation.handler
        endpoint = handlers.taking_body(handler, operation.request) if operation.request else handler
        routes.append(Route(path, endpoint, methods=[operation.method]))
    return routes
