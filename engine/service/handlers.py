"""The decision endpoints: /v1/decide, /v1/decide/batch, /v1/check, /v1/apply and the platform
payload variants /v1/wechat/decide, /v1/wechat/check.

Each handler reads and validates the body first, then takes the engine once (`lease`) and computes
without an `await` in between: decisions take ~100 µs, less than a hop to the threadpool costs
(see bench/README.md), and with no await no reload can swap engines under a request.
"""
from __future__ import annotations

from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.core.errors import EngineError, InputError, TicketError
from engine.service.decision_log import new_decision_id
from engine.service.errors import ApiError, from_engine_error, internal_error
from engine.service.responses import json_response
from engine.service.state import ServiceState
from engine.service.validation import read_json
from engine.wechat import platform_view, proposal_from_platform, ticket_from_platform


def endpoint(handler: Callable) -> Callable:
    """Every route goes through this: ApiError/EngineError become their JSON status, anything else
    a logged JSON 500 that shows no internals."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.service)
        except ApiError as exc:
            return exc.response()
        except EngineError as exc:
            return from_engine_error(exc).response()
        except Exception as exc:  # noqa: BLE001
            return internal_error(request, exc)
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def _body(request: Request, state: ServiceState, envelope: str) -> Any:
    body = await read_json(request, state.settings.max_body_bytes)
    state.validator.validate(envelope, body)
    return body


async def _compute(state: ServiceState, kind: str, body: dict, call: Callable[[Any], dict],
                   *, actor: str | None = None) -> tuple[dict, str]:
    """Run one engine call on the current engine, stamp and log it. Returns (result, decision_id)."""
    with state.holder.lease() as generation:
        try:
            if state.settings.offload:  # measurement mode only (bench/README.md); the lease spans the hop
                result = await run_in_threadpool(call, generation.engine)
            else:
                result = call(generation.engine)
        except EngineError as exc:
            raise from_engine_error(exc) from None
    decision_id = new_decision_id()
    result["decision_id"] = decision_id
    policy = result.get("policy") or {}
    state.decision_log.record(decision_id=decision_id, kind=kind, body=body, result=result,
                              version=policy.get("version"), bundle_hash=generation.bundle_hash,
                              actor=actor or result.get("actor"),
                              ticket_id=result.get("ticket_id") or _ticket_id(body))
    return result, decision_id


def _ticket_id(body: dict) -> str | None:
    ticket = body.get("ticket")
    return ticket.get("ticket_id") if isinstance(ticket, dict) else None


def _answer(result: dict, decision_id: str) -> Response:
    return json_response(result, headers={"x-decision-id": decision_id})


@endpoint
async def decide(request: Request, state: ServiceState) -> Response:
    body = await _body(request, state, "decide")
    result, decision_id = await _compute(
        state, "decide", body,
        lambda engine: engine.decide(body["ticket"], body["actor"], at=body.get("at"), version=body.get("version")).to_json(),
        actor=body["actor"])
    return _answer(result, decision_id)


@endpoint
async def check(request: Request, state: ServiceState) -> Response:
    body = await _body(request, state, "check")
    result, decision_id = await _compute(
        state, "check", body,
        lambda engine: engine.check(body["ticket"], body["action"], body.get("payload") or {},
                                    at=body.get("at"), version=body.get("version")).to_json())
    return _answer(result, decision_id)


@endpoint
async def apply(request: Request, state: ServiceState) -> Response:
    body = await _body(request, state, "apply")
    result, decision_id = await _compute(
        state, "apply", body,
        lambda engine: engine.apply(body["ticket"], body["answer"], at=body.get("at"), version=body.get("version")).to_json(),
        actor="buyer")
    return _answer(result, decision_id)


@endpoint
async def decide_batch(request: Request, state: ServiceState) -> Response:
    """All items are answered by one engine (one lease), each logged with its own decision_id.
    A bad item (schema) fails the whole request with pointers `/items/<i>/...`; an item the engine
    refuses (unknown scenario, unknown version) gets its own `error` and the others still answer."""
    body = await _body(request, state, "decide-batch")
    results: list[dict] = []
    with state.holder.lease() as generation:
        for index, item in enumerate(body["items"]):
            try:
                result = generation.engine.decide(item["ticket"], item["actor"], at=item.get("at"),
                                                  version=item.get("version")).to_json()
            except EngineError as exc:
                error = from_engine_error(exc, f"/items/{index}")
                results.append({"error": {"status": error.status, "code": error.code, "message": error.message,
                                          **({"problems": error.problems} if error.problems is not None else {})}})
                continue
            decision_id = new_decision_id()
            result["decision_id"] = decision_id
            state.decision_log.record(decision_id=decision_id, kind="decide", body=item, result=result,
                                      version=(result.get("policy") or {}).get("version"),
                                      bundle_hash=generation.bundle_hash, actor=item["actor"],
                                      ticket_id=_ticket_id(item))
            results.append(result)
    failed = sum(1 for r in results if "error" in r)
    return json_response({"count": len(results), "failed": failed, "bundle_hash": generation.bundle_hash,
                          "results": results})


# -- platform payloads ------------------------------------------------------------------------------

@endpoint
async def wechat_decide(request: Request, state: ServiceState) -> Response:
    body = await _body(request, state, "wechat-decide")

    def call(engine):
        ticket = _platform(lambda: ticket_from_platform(body["order"], body["context"], policy=engine,
                                                        base="/order", context_base="/context"))
        result = _from_platform_ticket(lambda: engine.decide(ticket, body["actor"], at=body.get("at"),
                                                             version=body.get("version")))
        return platform_view(result)

    result, decision_id = await _compute(state, "decide", body, call, actor=body["actor"])
    return _answer(result, decision_id)


@endpoint
async def wechat_check(request: Request, state: ServiceState) -> Response:
    body = await _body(request, state, "wechat-check")

    def call(engine):
        ticket = _platform(lambda: ticket_from_platform(body["order"], body["context"], policy=engine,
                                                        base="/order", context_base="/context"))
        version = body.get("version") or engine.version_at(body.get("at"))
        action, payload = _platform(lambda: proposal_from_platform(body["body"], ticket, engine.policy(version),
                                                                   base="/body"))
        result = _from_platform_ticket(lambda: engine.check(ticket, action, payload, at=body.get("at"), version=version))
        return platform_view(result)

    result, decision_id = await _compute(state, "check", body, call, actor="merchant")
    return _answer(result, decision_id)


def _platform(call: Callable[[], Any]) -> Any:
    """engine.wechat reports problems with pointers into the body already (`/order/...`,
    `/context/...`, `/body/...`, as it was told by `base`); keep them as they are."""
    try:
        return call()
    except InputError as exc:
        raise ApiError(422, "invalid_platform_payload", exc.summary, [p.to_json() for p in exc.problems]) from None


# The ticket fields the engine checks against the policy come from the platform context, not the
# order: point there, not at a `/ticket` the client never sent.
_PLATFORM_SOURCES = {"/scenario": "/context/scenario", "/order/category": "/context/category"}


def _from_platform_ticket(call: Callable[[], dict]) -> dict:
    try:
        return call()
    except TicketError as exc:
        problems = [dict(p.to_json(), path=_PLATFORM_SOURCES.get(p.path, "/order"),
                         message=f"{p.message} (ticket field {p.path})") for p in exc.problems]
        raise ApiError(422, "invalid_platform_payload", "invalid ticket", problems) from None
