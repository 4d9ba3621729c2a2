"""The decision endpoints: /v1/decide, /v1/decide/batch, /v1/check, /v1/apply and the platform
payload variants /v1/wechat/decide, /v1/wechat/check.

Each handler reads and validates the body first, then takes the engine once (`lease`) and computes
without an `await` in between: decisions take ~100 µs, less than a hop to the threadpool costs
(see bench/README.md), and with no await no reload can swap engines under a request.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from engine.core.errors import EngineError, InputError, TicketError
from engine.rules.durable import FactError
from engine.service.decision_record import new_decision_id
from engine.service.errors import ApiError, from_engine_error, internal_error
from engine.service.platform_errors import unreadable, unreadable_input
from engine.service.responses import JSONBytes, dumps, json_response
from engine.service.state import ServiceState
from engine.service.validation import read_json
from engine.core.timeutil import now as wall_clock
from engine.wechat import platform_view, request_from_platform, ticket_from_platform
from engine.decisions.results import Result


def endpoint(handler: Callable[[Request, ServiceState], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every route goes through this: ApiError/EngineError become their JSON status, anything else
    a logged JSON 500 that shows no internals."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.service)
        except ApiError as exc:
            return exc.response()
        except EngineError as exc:
            return from_engine_error(exc).response()
        except ClientDisconnect:  # gone before its body arrived: nobody to answer, nothing to log
            return ApiError(400, "bad_request", "the client disconnected before sending its body").response()
        except Exception as exc:  # noqa: BLE001
            return internal_error(request, exc)
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


BodyHandler = Callable[[ServiceState, Any], Awaitable[Response]]


def taking_body(handler: BodyHandler, envelope: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of a route with a request body (routes.py names the envelope): the body is read,
    parsed and checked against `schemas/requests/<envelope>.schema.json` once, then handed over."""
    async def with_body(request: Request, state: ServiceState) -> Response:
        body = await read_json(request, state.settings.max_body_bytes)
        state.validator.validate(envelope, body)
        return await handler(state, body)
    with_body.__name__ = handler.__name__
    with_body.__doc__ = handler.__doc__
    return endpoint(with_body)


async def _compute(state: ServiceState, kind: str, body: dict[str, Any], call: Callable[[Any], dict[str, Any]],
                   *, actor: str | None = None, envelope: str | None = None) -> tuple[Any, str]:
    """Run one engine call on the current engine, stamp and log it. Returns (result, decision_id).
    `envelope`: the body carries a ticket the engine validates (validation.py, RequestValidator)."""
    holder = state.holder
    assert holder is not None  # routes answer only after the lifespan set it
    with holder.lease() as generation:
        try:
            if state.settings.offload:  # measurement mode only (bench/README.md); the lease spans the hop
                result = await run_in_threadpool(call, generation.engine)
            else:
                result = call(generation.engine)
        except FactError as exc:  # a value the schema let through but the rules runtime refuses
            raise unreadable_input(body, exc) from None
        except TicketError as exc:
            if envelope:  # a ticket that breaks its schema: answered as the envelope check would
                state.validator.recheck(envelope, body)
            raise from_engine_error(exc) from None
        except EngineError as exc:
            raise from_engine_error(exc) from None
    # A typed result stays typed: the log reads it through its mapping access and _answer encodes
    # it once (decoding it into a dict only to encode that again was a second pass per request).
    decision_id = new_decision_id()
    if not isinstance(result, Result):  # the platform's view: already a JSON dict
        result["decision_id"] = decision_id
    policy = result.get("policy") or {}
    state.decision_log.record(decision_id=decision_id, kind=kind, body=body, result=result,
                              version=policy.get("version"), bundle_hash=generation.bundle_hash,
                              actor=actor or result.get("actor"),
                              ticket_id=result.get("ticket_id") or _ticket_id(body))
    return result, decision_id


def _ticket_id(body: dict[str, Any]) -> str | None:
    ticket = body.get("ticket")
    return ticket.get("ticket_id") if isinstance(ticket, dict) else None


def _stamped(result: Result, decision_id: str) -> bytes:
    """One encode of a typed result with the id appended as its last key (every result is a JSON
    object and the id is ASCII): the same bytes as encoding its dict with the id added."""
    return result.to_json_bytes()[:-1] + b',"decision_id":"' + decision_id.encode("ascii") + b'"}'


def _answer(result: Any, decision_id: str) -> Response:
    headers = {"x-decision-id": decision_id}
    if isinstance(result, Result):
        return JSONBytes(_stamped(result, decision_id), headers=headers)
    return json_response(result, headers=headers)


async def decide(state: ServiceState, body: Any) -> Response:
    result, decision_id = await _compute(
        state, "decide", body,
        lambda engine: engine.decide(body["ticket"], body["actor"], at=body.get("at"), version=body.get("version")),
        actor=body["actor"], envelope="decide")
    return _answer(result, decision_id)


async def check(state: ServiceState, body: Any) -> Response:
    result, decision_id = await _compute(
        state, "check", body,
        lambda engine: engine.check(body["ticket"], body["action"], body.get("payload") or {},
                                    at=body.get("at"), version=body.get("version")), envelope="check")
    return _answer(result, decision_id)


async def apply(state: ServiceState, body: Any) -> Response:
    result, decision_id = await _compute(
        state, "apply", body,
        lambda engine: engine.apply(body["ticket"], body["answer"], at=body.get("at"), version=body.get("version"),
                                    reason=body.get("reason")),
        actor="buyer", envelope="apply")
    return _answer(result, decision_id)


async def decide_batch(state: ServiceState, body: Any) -> Response:
    """All items are answered by one engine (one lease), each logged with its own decision_id.
    A bad item (schema) fails the whole request with pointers `/items/<i>/...`; an item the engine
    refuses (unknown scenario, unknown version) gets its own `error` and the others still answer.
    The answers stay typed and each is encoded once, as /v1/decide encodes its one (_stamped):
    the body is those encodings joined, not a dict of dicts encoded again."""
    holder = state.holder
    assert holder is not None
    results: list[tuple[dict[str, Any], Any]] = []   # (item, its typed decision or its error's dict)
    ticket_refused = False
    with holder.lease() as generation:
        for index, item in enumerate(body["items"]):
            try:
                result = generation.engine.decide(item["ticket"], item["actor"], at=item.get("at"),
                                                  version=item.get("version"))
            except FactError as exc:
                result = _item_error(unreadable_input(item, exc, base=f"/items/{index}"))
            except EngineError as exc:
                ticket_refused = ticket_refused or isinstance(exc, TicketError)
                result = _item_error(from_engine_error(exc, f"/items/{index}"))
            results.append((item, result))
    if ticket_refused:  # the tickets were left to the engine to validate (validation.py): schema breaks fail it all
        state.validator.recheck("decide-batch", body)
    parts: list[bytes] = []
    failed = 0
    for item, result in results:
        if not isinstance(result, Result):
            failed += 1
            parts.append(dumps(result))
            continue
        decision_id = new_decision_id()
        parts.append(_stamped(result, decision_id))
        state.decision_log.record(decision_id=decision_id, kind="decide", body=item, result=result,
                                  version=result["policy"]["version"], bundle_hash=generation.bundle_hash,
                                  actor=item["actor"], ticket_id=_ticket_id(item))
    head = dumps({"count": len(results), "failed": failed, "bundle_hash": generation.bundle_hash})
    return JSONBytes(head[:-1] + b',"results":[' + b",".join(parts) + b"]}")


def _item_error(error: ApiError) -> dict[str, Any]:
    return {"error": {"status": error.status, "code": error.code, "message": error.message,
                      **({"problems": error.problems} if error.problems is not None else {})}}


# -- platform payloads ------------------------------------------------------------------------------

async def wechat_decide(state: ServiceState, body: Any) -> Response:
    result, decision_id = await _compute(state, "decide", body, lambda engine: platform_decide(engine, body),
                                         actor=body["actor"])
    return _answer(result, decision_id)



async def wechat_check(state: ServiceState, body: Any) -> Response:
    result, decision_id = await _compute(state, "check", body, lambda engine: platform_check(engine, body),
                                         actor="merchant")
    return _answer(result, decision_id)


def platform_decide(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    """/v1/wechat/decide on one engine: the decision in the platform's view, or ApiError 4xx."""
    @_readable(body, ("order", "context"))
    def call(engine: Any) -> dict[str, Any]:
        warnings: list[dict[str, Any]] = []
        ticket = _platform(lambda: ticket_from_platform(body["order"], body["context"], policy=engine,
                                                        base="/order", context_base="/context", warnings=warnings))
        result = _from_platform_ticket(lambda: engine.decide(ticket, body["actor"], at=body.get("at"),
                                                             version=body.get("version")))
        return platform_view(result, warnings)
    return call(engine)


def platform_check(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    """/v1/wechat/check on one engine: the check in the platform's view, or ApiError 4xx."""
    @_readable(body, ("order", "context", "body"))
    def call(engine: Any) -> dict[str, Any]:
        warnings: list[dict[str, Any]] = []
        ticket = _platform(lambda: ticket_from_platform(body["order"], body["context"], policy=engine,
                                                        base="/order", context_base="/context", warnings=warnings))
        at = body.get("at") or wall_clock()  # the body's action and its check are judged at one moment
        action, payload = _platform(lambda: request_from_platform(body["body"], ticket, engine, at=at,
                                                                  version=body.get("version"),
                                                                  endpoint=body.get("endpoint"), base="/body"))
        result = _from_platform_ticket(lambda: engine.check(ticket, action, payload, at=at, version=body.get("version")))
        return platform_view(result, warnings)
    return call(engine)


# What a platform payload the mapping does not expect can raise (see platform_errors.py): the
# mapping's own bug shows up here too, but located at the value that triggered it, never a 500.
_UNREADABLE = (TypeError, ValueError, OverflowError, OSError, KeyError, AttributeError, IndexError, RecursionError,
               FactError)


EngineCall = Callable[[Any], dict[str, Any]]


def _readable(body: dict[str, Any], parts: tuple[str, ...]) -> Callable[[EngineCall], EngineCall]:
    def wrap(call: EngineCall) -> EngineCall:
        def guarded(engine: Any) -> dict[str, Any]:
            try:
                return call(engine)
            except _UNREADABLE as exc:
                raise unreadable(body, parts, exc) from None
        return guarded
    return wrap


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


def _from_platform_ticket(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call()
    except TicketError as exc:
        problems = [dict(p.to_json(), path=_PLATFORM_SOURCES.get(p.path, "/order"),
                         message=f"{p.message} (ticket field {p.path})") for p in exc.problems]
        raise ApiError(422, "invalid_platform_payload", "invalid ticket", problems) from None
