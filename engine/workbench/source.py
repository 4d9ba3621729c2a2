"""How workbench handlers reach the engine being served, without importing the service (which
sits above the workbench in the layers): the service keeps its `EngineHolder` at
`app.state.service.holder`; anything with a `lease()` yielding a generation that has `.engine` and
`.bundle_hash` will do, so the workbench also runs on a bare Starlette app in tests."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from starlette.requests import Request


class Generation(Protocol):
    engine: Any
    bundle_hash: str


class EngineSource(Protocol):
    rules_dir: Any

    def lease(self) -> AbstractContextManager[Generation]: ...


def engine_source(request: Request) -> EngineSource:
    service = getattr(request.app.state, "service", None)
    holder = getattr(service, "holder", None)
    if holder is None:
        raise LookupError("the service has no engine yet")
    source: EngineSource = holder
    return source
