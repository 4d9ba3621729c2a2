"""The Starlette application of `aftersale serve`.

    create_app(settings, engine=None) -> Starlette     # one process, engine optional (preloaded)
    app_from_environment() -> Starlette                # uvicorn factory for worker processes

Each worker process builds its own `Engine` at startup (lifespan): durable_rules' C state is
per process and never crosses a fork/spawn. Startup fails, and the worker with it, if the rules
do not load; later reloads that fail keep the last good engine (reload.py).
"""
from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Coroutine

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.service import errors, metrics
from engine.service.decision_log import DecisionLog
from engine.service.openapi import build_openapi
from engine.service.operations import OperationsMiddleware
from engine.service.reload import EngineHolder
from engine.service.responses import dumps
from engine.service.routes import starlette_routes
from engine.service.settings import ServiceSettings
from engine.service.state import ServiceState
from engine.service.validation import RequestValidator
from engine.workbench import routes as workbench

logger = logging.getLogger("aftersale.service")

LOG_FLUSH_SECONDS = 1.0


def _engine_loader() -> Callable[..., Any]:
    """The holder's loader: `load(rules_dir, previous=None)`. With the engine in force as
    `previous`, a reload parses, checks and builds only the files whose bytes changed (the memo
    remembers the documents of this process's loads: engine/policy/memo.py)."""
    from engine.api import Engine
    from engine.policy.memo import DocumentMemo

    memo = DocumentMemo()

    def load(rules_dir: Path, previous: Any = None) -> Any:
        return Engine.from_directory(rules_dir, reuse=previous, memo=memo)

    return load


def create_app(settings: ServiceSettings, engine: Any = None) -> Starlette:
    errors.configure_logging()
    state = ServiceState(
        settings=settings,
        validator=RequestValidator(settings.schemas_dir),
        decision_log=DecisionLog.from_settings(settings),
        openapi=dumps(build_openapi(settings.schemas_dir)),
        preloaded_engine=engine,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        holder = EngineHolder.start(settings.rules_dir, _engine_loader(), engine=state.preloaded_engine,
                                    incremental=True)
        state.holder, state.preloaded_engine = holder, None
        loop = asyncio.get_running_loop()
        metrics.PER_ITERATION.bind(loop)
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: _background(state, holder.reload("SIGHUP")))
            hup_installed = True
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread (embedded, tests)
            hup_installed = False
            logger.warning("SIGHUP reload unavailable here (not the main thread); file polling and /admin/reload remain")
        if settings.poll_interval > 0:
            _background(state, holder.watch(settings.poll_interval))
        if state.decision_log.enabled:
            _background(state, _flush_periodically(state.decision_log))
        logger.info("serving generation %d, bundle %s, versions %s", holder.current.number,
                    holder.current.bundle_hash[:12], ", ".join(v.version for v in holder.current.engine.versions()))
        try:
            yield
        finally:
            if hup_installed:
                loop.remove_signal_handler(signal.SIGHUP)
            tasks = list(state.background)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
            await holder.stop_reloads()
            state.decision_log.close()
            metrics.PER_ITERATION.unbind(loop)

    app = ServiceApp(
        routes=starlette_routes() + [workbench.mount()],  # /workbench/: the policy team's pages
        lifespan=lifespan,
        middleware=[Middleware(OperationsMiddleware)],  # /metrics, latency, required-mode log commits
        exception_handlers={HTTPException: errors.http_exception, errors.ApiError: errors.api_error,
                            Exception: errors.unhandled},
    )
    app.state.service = state
    return app


class ServiceApp(Starlette):
    """Starlette, with one shortcut: a request whose method and path are exactly those of a route
    (the decision endpoints are what the service spends its time on) goes to that route's endpoint
    through the app's own middleware (OperationsMiddleware: metrics, required-mode log commits)
    but without Starlette's error/exception middleware and the router's pattern matching. The
    endpoints catch every error themselves (handlers.endpoint), so the answer is the same;
    everything else (unknown paths, 405, HEAD, the mounted workbench) takes the usual way.
    Measured: bench/README.md."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[tuple[str, str], Route] = {
            (method, route.path): route
            for route in self.routes if isinstance(route, Route) and "{" not in route.path
            for method in (route.methods or ()) if method != "HEAD"}
        shortcut: ASGIApp = self._call_endpoint
        for middleware in reversed(self.user_middleware):  # the same middleware, in the same order
            factory: Any = middleware.cls
            shortcut = factory(shortcut, *middleware.args, **middleware.kwargs)
        self.shortcut = shortcut

    async def _call_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.direct[(scope["method"], scope["path"])]
        scope["route"] = route  # as the router sets it (the metrics label requests by route)
        response = await route.endpoint(Request(scope, receive))
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self.direct:
            scope["app"] = self
            await self.shortcut(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _background(state: ServiceState, coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a task the app owns: kept referenced until done, cancelled at shutdown."""
    task = asyncio.ensure_future(coroutine)
    state.background.add(task)
    task.add_done_callback(state.background.discard)


async def _flush_periodically(log: DecisionLog) -> None:
    while True:
        await asyncio.sleep(LOG_FLUSH_SECONDS)
        try:
            log.flush()
        except OSError:
            logger.exception("decision log: write failed")


def app_from_environment() -> Starlette:
    """uvicorn factory (`engine.service.app:app_from_environment`, factory=True) for workers."""
    return create_app(ServiceSettings.from_env())
