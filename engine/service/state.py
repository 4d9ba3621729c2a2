"""What one worker process holds while it serves: settings, compiled request schemas, the
decision log, the engine holder (set at startup) and the generated OpenAPI document."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from engine.service.decision_log import DecisionLog
from engine.service.reload import EngineHolder
from engine.service.settings import ServiceSettings
from engine.service.validation import RequestValidator


@dataclass
class ServiceState:
    settings: ServiceSettings
    validator: RequestValidator
    decision_log: DecisionLog
    openapi: bytes
    holder: EngineHolder | None = None
    preloaded_engine: Any = None            # `aftersale serve` with one worker passes the engine it validated
    background: set[asyncio.Future[Any]] = field(default_factory=set)     # tasks the app owns (watcher, log flush, reloads)
    coordinator: Any = None                 # generations.WorkerLink when a supervisor hands out the bundles

    def running(self) -> EngineHolder:
        """The engine holder; the lifespan sets it before any route is served."""
        if self.holder is None:
            raise RuntimeError("the service is not started: no engine holder yet")
        return self.holder
