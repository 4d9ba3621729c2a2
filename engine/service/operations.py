"""The operations middleware: what every request passes through for the operator's sake.

- latency and status of every response, by route template (`aftersale_request_duration_seconds`,
  `aftersale_http_responses_total`);
- the decision log's `required` mode: the decisions a request made are queued by the handlers
  (DecisionLog.record); here the response waits until their lines are on disk, and becomes a 503
  `decision_log_unavailable` if they could not be written. The handlers need not know: they
  record and return as before.
Pure ASGI (no BaseHTTPMiddleware): the endpoint runs in the same task and context, so the
context variable that collects the request's commits is the one record() sees.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, MutableMapping

from engine.service import metrics
from engine.service.decision_log import PENDING_COMMITS

Scope = MutableMapping[str, Any]  # the ASGI scope, as starlette.types types it

_UNAVAILABLE = json.dumps({"error": {
    "status": 503, "code": "decision_log_unavailable",
    "message": "the decision could not be written to the decision log (required mode); it was not answered"}},
    separators=(",", ":")).encode()


class OperationsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        commits: list[asyncio.Future[None]] = []
        token = PENDING_COMMITS.set(commits)
        status = 500
        swallow = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal status, swallow
            if message["type"] == "http.response.start":
                if commits and not await _committed(commits):
                    swallow = True
                    status = 503
                    await _send_unavailable(send)
                    return
                status = message["status"]
            elif swallow:
                return
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        finally:
            PENDING_COMMITS.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.PER_ITERATION.inc(metrics.child(metrics.RESPONSES, template, str(status)))
            metrics.PER_ITERATION.observe(metrics.child(metrics.REQUEST_SECONDS, template),
                                          time.perf_counter() - started)


async def _committed(commits: list[asyncio.Future[None]]) -> bool:
    if len(commits) == 1:  # one decision per request, nearly always: no gathering future needed
        try:
            await commits[0]
        except Exception:  # noqa: BLE001 - LogUnavailable, or the loop's cancellation at shutdown
            return False
        return True
    results = await asyncio.gather(*commits, return_exceptions=True)
    return not any(isinstance(r, BaseException) for r in results)


async def _send_unavailable(send: Any) -> None:
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"content-length", str(len(_UNAVAILABLE)).encode())]})
    await send({"type": "http.response.body", "body": _UNAVAILABLE})
