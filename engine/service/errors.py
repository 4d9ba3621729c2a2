"""HTTP errors: one JSON shape (`schemas/requests/error.schema.json`) for every non-2xx answer.

    {"error": {"status": 422, "code": "invalid_ticket", "message": "...", "problems": [{path, code, message}]}}

`EngineError`s the library raises on purpose map to statuses here, in one table; anything else is
a bug: it is logged with its traceback under an incident id and the client gets a JSON 500 that
names the incident and nothing of the internals.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine.core import errors as engine_errors
from engine.service.responses import json_response

logger = logging.getLogger("aftersale.service")


def configure_logging() -> None:
    """The service's own log lines (reloads, incidents) go to stderr, one line each."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s aftersale[%(process)d] %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class ApiError(Exception):
    """An answer other than 2xx, decided by the service (bad body, size, unknown route...)."""

    def __init__(self, status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.problems = status, code, message, problems

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.problems)


def error_response(status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None,
                   **extra: Any) -> Response:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if problems is not None:
        body["problems"] = problems
    body.update(extra)
    return json_response({"error": body}, status=status)


# Engine exceptions → (status, code). Order matters: subclasses before their bases.
_ENGINE_STATUS: list[tuple[type, int, str]] = [
    (engine_errors.TicketError, 422, "invalid_ticket"),
    (engine_errors.PayloadError, 422, "invalid_payload"),
    (engine_errors.InputError, 422, "invalid_input"),
    (engine_errors.UnknownVersionError, 404, "unknown_version"),
    (engine_errors.NoVersionError, 422, "no_version"),
    (engine_errors.UnknownActionError, 422, "unknown_action"),
]


def from_engine_error(exc: engine_errors.EngineError, base: str = "") -> ApiError:
    """Translate a library error. Problem pointers are re-rooted in the request body: the engine
    says `/order/category` of the ticket, the client sent it at `/ticket/order/category` (or
    `/items/3/ticket/order/category` in a batch); `base` is the envelope's own location."""
    for kind, status, code in _ENGINE_STATUS:  # noqa: B007 (status, code: the match, read below)
        if isinstance(exc, kind):
            break
    else:  # PolicyError or a new EngineError subclass: not the client's fault
        return ApiError(500, "internal_error", "the policy engine failed on this request")
    problems = None
    if isinstance(exc, engine_errors.InputError):
        inner = {engine_errors.TicketError: ("ticket",), engine_errors.PayloadError: ("payload",)}.get(type(exc), ())
        envelope = tuple(base.strip("/").split("/")) if base else ()
        # `at` is an envelope field, never inside the ticket or payload (both forbid unknown keys).
        problems = [p.under(envelope if p.path == "/at" else envelope + inner).to_json() for p in exc.problems]
        message = exc.summary
    else:
        message = str(exc)
    return ApiError(status, code, message, problems)


async def http_exception(request: Request, exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}
    message = {404: f"no route {request.method} {request.url.path}",
               405: f"method {request.method} not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    response = error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(message))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def api_error(request: Request, exc: ApiError) -> Response:
    return exc.response()


def internal_error(request: Request | None, exc: BaseException) -> Response:
    incident = uuid.uuid4().hex[:16]
    where = f"{request.method} {request.url.path}" if request is not None else "?"
    logger.error("incident %s: unhandled error on %s", incident, where, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the server log names the incident",
                          incident_id=incident)


async def unhandled(request: Request, exc: Exception) -> Response:
    return internal_error(request, exc)
