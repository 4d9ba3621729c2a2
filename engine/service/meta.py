"""Everything that is not a decision: liveness, readiness, versions, a version's document, diff,
changelog, admin reload and the OpenAPI document. All answer from the engine this worker serves
(never by re-reading the rules directory), so they always describe the policy that decides."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hmac
import json
import os
from datetime import datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from engine.core.errors import NoVersionError
from engine.policy.yamlsafe import Positions
from engine.service.errors import ApiError
from engine.service.handlers import endpoint
from engine.service.responses import json_response
from engine.service.state import ServiceState
from engine.core.jsonschema_errors import TIME_MESSAGES, time_problem
from engine.core.timeutil import now as wall_clock

if TYPE_CHECKING:
    from engine.api import Engine


@endpoint
async def healthz(request: Request, state: ServiceState) -> Response:
    return json_response({"status": "ok", "pid": os.getpid()})


@endpoint
async def readyz(request: Request, state: ServiceState) -> Response:
    """Ready (200) or not (503), and why, in words an unauthenticated prober may see; the paths
    and error texts only with the admin token (`Authorization: Bearer`)."""
    holder = state.holder
    if holder is None:
        return json_response({"ready": False, "pid": os.getpid()}, status=503)
    generation = holder.current
    engine = generation.engine
    log = state.decision_log.status()
    ready = log["ok"]
    body = {
        "ready": ready,
        "degraded": log["degraded"],
        "pid": os.getpid(),
        "generation": generation.number,
        "loaded_at": generation.loaded_at,
        "bundle_hash": generation.bundle_hash,
        "versions": [info.version for info in engine.versions()],
        "in_force": _in_force(engine),
        "last_reload": {k: v for k, v in (holder.last_reload or {}).items() if k in ("at", "status")} or None,
        "reload_failing": holder.last_error is not None,
        "decision_log": {k: log[k] for k in ("mode", "ok", "degraded", "dropped")},
    }
    if is_admin(request, state):
        body.update(rules_dir=str(holder.rules_dir), last_reload=holder.last_reload,
                    last_reload_error=holder.last_error,
                    decision_log=dict(log, path=state.decision_log.target,
                                      last_error=state.decision_log.last_error))
    return json_response(body, status=200 if ready else 503)


def is_admin(request: Request, state: ServiceState) -> bool:
    """The request carries the configured admin token (none configured: nobody is admin)."""
    token = state.settings.admin_token
    if not token:
        return False
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _in_force(engine: Engine, at: datetime | None = None) -> str | None:
    try:
        return engine.version_at(at or wall_clock())
    except NoVersionError:  # before the first version: nothing in force
        return None


@endpoint
async def versions(request: Request, state: ServiceState) -> Response:
    at_text = request.query_params.get("at")
    at = time_problem(at_text) if at_text else wall_clock()
    if not isinstance(at, datetime):  # the contract's one time syntax and range, as in request bodies
        raise ApiError(422, "invalid_request", "bad query parameter",
                       [{"path": "/at", "code": at, "message": TIME_MESSAGES[at].format(field="`at`", text=at_text)}])
    with state.running().lease() as generation:
        engine = generation.engine
        return json_response({
            "bundle_hash": generation.bundle_hash,
            "at": at.isoformat(),
            "in_force": _in_force(engine, at),
            "versions": [info.to_json(at) for info in engine.versions()],
        })


@endpoint
async def version_document(request: Request, state: ServiceState) -> Response:
    version = request.path_params["version"]
    with state.running().lease() as generation:
        return json_response(generation.engine.document(version),
                             headers={"x-bundle-hash": generation.bundle_hash})


@endpoint
async def diff(request: Request, state: ServiceState) -> Response:
    from engine.policy.diff import render as diffrender
    from engine.policy.diff.semantic import diff_documents

    params = request.query_params
    missing = [{"path": f"/{name}", "code": "missing_field", "message": f"query parameter `{name}` is required"}
               for name in ("from", "to") if not params.get(name)]
    if missing:
        raise ApiError(422, "invalid_request", "GET /v1/diff?from=A&to=B needs both versions", missing)
    old, new = params["from"], params["to"]
    annotations = params.get("annotations") in ("1", "true")
    with state.running().lease() as generation:
        engine = generation.engine
        a, b = engine.document(old), engine.document(new)  # UnknownVersionError → 404
        changes = diff_documents(a, b, include_annotations=annotations)
    return json_response(dict(diffrender.to_json(changes, old, new), bundle_hash=generation.bundle_hash))


@endpoint
async def changelog(request: Request, state: ServiceState) -> Response:
    from engine.history import changelog as changelog_mod
    from engine.history.versions import VersionDocument

    order = request.query_params.get("order", "oldest")
    if order not in ("oldest", "newest"):
        raise ApiError(422, "invalid_request", "bad query parameter",
                       [{"path": "/order", "code": "unknown_value", "message": "`order` is oldest or newest"}])
    with state.running().lease() as generation:
        engine = generation.engine
        docs = [VersionDocument(version=info.version, path=Path(f"{info.version}.yaml"),
                                data=engine.document(info.version), positions=Positions(),
                                effective_from=info.effective_from)
                for info in engine.versions()]
    entries = changelog_mod.ordered(changelog_mod.build_changelog(docs), order)
    return json_response(dict(changelog_mod.to_json(entries), bundle_hash=generation.bundle_hash))


@endpoint
async def admin_reload(request: Request, state: ServiceState) -> Response:
    """Reload now, in every worker together. Body (optional): `{"remove": ["2024-03-11", ...]}`
    declares versions the new rules may drop although they are or were in force; an undeclared
    such removal is refused (409) and the generation in force keeps serving."""
    if state.settings.admin_token and not is_admin(request, state):
        raise ApiError(401, "unauthorized", "admin endpoints need `Authorization: Bearer <token>`")
    declared = _declared_removals(await request.body())
    if state.coordinator is not None:     # several workers: the supervisor validates and hands over
        outcome = await state.coordinator.request_reload(declared)
    else:
        outcome = (await state.running().reload("POST /admin/reload", declared_removals=declared)).to_json()
    status = outcome["status"]
    if status == "refused":
        error = outcome.get("error") or {}
        return json_response({"error": {
            "status": 409, "code": "undeclared_removal", "message": error.get("message", ""),
            "problems": [{"path": "/remove", "code": "undeclared_removal",
                          "message": f"version {v} is or was in force; list it in `remove` to drop it"}
                         for v in error.get("versions", [])]}}, status=409)
    if status == "failed":
        error = outcome.get("error") or {}
        return json_response({"error": {
            "status": 422, "code": "reload_failed",
            "message": (f"the rules directory did not load; generation {outcome['generation']} "
                        f"(bundle {outcome['bundle_hash'][:12]}) keeps serving"),
            # a problem of the rules (not of this request): its path is in the policy file named
            "problems": [dict(p, message=_located(p)) for p in error.get("problems") or ()]
                        or [{"path": "", "code": error.get("code", "PolicyError"), "message": error.get("message", "")}],
        }}, status=422)
    return json_response(dict(outcome, pid=os.getpid()))


def _declared_removals(raw: bytes) -> tuple[str, ...]:
    if not raw.strip():
        return ()
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None
    remove = body.get("remove", []) if isinstance(body, dict) else None
    if not isinstance(remove, list) or not all(isinstance(v, str) for v in remove):
        raise ApiError(422, "invalid_request", "bad admin request",
                       [{"path": "/remove", "code": "wrong_type", "message": "`remove` is a list of version names"}])
    return tuple(remove)


def _located(problem: dict[str, Any]) -> str:
    return f"{problem['file']}:{problem['line']}:{problem['column']}: {problem['path']}: {problem['message']}"


async def metrics(request: Request) -> Response:
    """Prometheus text format: every worker's values (metrics.py)."""
    from engine.service.metrics import exposition

    body, content_type = exposition()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    return Response(request.app.state.service.openapi, media_type="application/json")
