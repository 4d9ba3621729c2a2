"""The workbench's routes: `mount()` is what the service adds to its route table.

    /workbench/            the page (static/index.html) and its assets (static/), package data
    /workbench/api/...     JSON for the five pages

Read-only: everything comes from the engine being served (its bundle, positions included), except
the YAML text of a version offered to the Draft page for editing, read from the served file.
Decisions for the Try page are the served engine's own answers; drafts go to `drafts.RUNNER`.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from engine.core.errors import EngineError
from engine.policy.yamlsafe import MAX_BYTES
from engine.workbench import pages, trying
from engine.workbench.drafts import RUNNER, DraftBusy, DraftTimeout
from engine.workbench.source import engine_source

Handler = Callable[[Request], Awaitable[Response]]
MAX_JSON_BYTES = MAX_BYTES + 64 * 1024  # a draft (the loader's own size limit) plus its envelope


class WorkbenchError(Exception):
    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


def api(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """JSON in, JSON out; engine and input errors become a 4xx with their located problems."""
    async def wrapped(request: Request) -> Response:
        try:
            return _json(await handler(request))
        except WorkbenchError as exc:
            return _json({"error": {"message": exc.message, "problems": exc.problems}}, exc.status)
        except EngineError as exc:
            problems = trying.problems_json(exc)
            status = 404 if type(exc).__name__ == "UnknownVersionError" else 422
            return _json({"error": {"message": str(exc).split("\n")[0], "problems": problems}}, status)
        except DraftBusy as exc:
            return _json({"error": {"message": str(exc), "problems": []}}, 503)
        except DraftTimeout as exc:
            return _json({"error": {"message": f"草稿处理超时（{exc.seconds:g} 秒），已停止：{exc}", "problems": []}}, 504)
        except LookupError as exc:
            return _json({"error": {"message": str(exc), "problems": []}}, 503)
    wrapped.__name__ = handler.__name__
    return wrapped


async def body_json(request: Request) -> dict[str, Any]:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_JSON_BYTES:
        raise WorkbenchError(413, f"请求过大：{size} 字节，上限 {MAX_JSON_BYTES} 字节")
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise WorkbenchError(413, f"请求过大：上限 {MAX_JSON_BYTES} 字节")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WorkbenchError(400, f"请求不是 JSON：{exc}") from None
    if not isinstance(data, dict):
        raise WorkbenchError(400, "请求须是一个 JSON 对象")
    return data


# -- pages backed by the served engine -----------------------------------------------------------

@api
async def versions(request: Request) -> Any:
    with engine_source(request).lease() as generation:
        return pages.versions(generation.engine, request.query_params.get("at"))


@api
async def policy(request: Request) -> Any:
    with engine_source(request).lease() as generation:
        return pages.policy(generation.engine, request.path_params["version"])


@api
async def compare(request: Request) -> Any:
    old, new = request.query_params.get("from"), request.query_params.get("to")
    if not old or not new:
        raise WorkbenchError(422, "需要 from 与 to 两个版本")
    with engine_source(request).lease() as generation:
        engine, bundle_hash = generation.engine, generation.bundle_hash
        # ~1,300 decisions: in a thread so the loop keeps answering; cached per bundle and pair
        return await run_in_threadpool(pages.compare, engine, bundle_hash, old, new)


@api
async def examples(request: Request) -> Any:
    return trying.examples()


@api
async def decide(request: Request) -> Any:
    body = await body_json(request)
    with engine_source(request).lease() as generation:
        return trying.decide(generation.engine, body)


@api
async def timeline(request: Request) -> Any:
    body = await body_json(request)
    with engine_source(request).lease() as generation:
        return await run_in_threadpool(trying.timeline, generation.engine, body)


@api
async def check(request: Request) -> Any:
    body = await body_json(request)
    with engine_source(request).lease() as generation:
        return trying.check(generation.engine, body)


@api
async def apply(request: Request) -> Any:
    body = await body_json(request)
    with engine_source(request).lease() as generation:
        return trying.apply(generation.engine, body)


# -- drafts: never the served engine ---------------------------------------------------------------

@api
async def draft_source(request: Request) -> Any:
    version = request.path_params["version"]
    with engine_source(request).lease() as generation:
        document = generation.engine.bundle.document(version)
        if document is None:
            raise WorkbenchError(404, f"没有版本 {version}")
        path = document.path
    text = await run_in_threadpool(path.read_text, "utf-8")
    return {"version": version, "file": path.name, "text": text}


def _draft_job(job: str) -> Handler:
    async def handler(request: Request) -> Any:
        body = await body_json(request)
        text, name = body.get("text"), body.get("name") or "draft.yaml"
        if not isinstance(text, str) or not isinstance(name, str):
            raise WorkbenchError(422, "需要 text（草稿内容）与可选的 name（文件名）")
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise WorkbenchError(413, f"草稿超过 {MAX_BYTES} 字节（与 aftersale validate 的上限相同）")
        rules_dir = str(engine_source(request).rules_dir)
        return await RUNNER.run(job, text, name, rules_dir)
    handler.__name__ = f"draft_{job}"
    return api(handler)


def mount() -> BaseRoute:
    """The workbench under /workbench: add `workbench.mount()` to the service's routes."""
    return Mount("/workbench", routes=[
        Route("/api/versions", versions),
        Route("/api/policy/{version}", policy),
        Route("/api/compare", compare),
        Route("/api/examples", examples),
        Route("/api/decide", decide, methods=["POST"]),
        Route("/api/timeline", timeline, methods=["POST"]),
        Route("/api/check", check, methods=["POST"]),
        Route("/api/apply", apply, methods=["POST"]),
        Route("/api/draft/source/{version}", draft_source),
        *[Route(f"/api/draft/{job}", _draft_job(job), methods=["POST"]) for job in ("validate", "cases", "impact", "diff")],
        Mount("/", StaticFiles(packages=[("engine.workbench", "static")], html=True)),
    ])
