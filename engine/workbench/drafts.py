"""Run draft work off the request path, in a separate process, bounded in time.

A draft policy is untrusted text: parsing it, compiling it into durable_rules rulesets and running
cases or a corpus against it happens in one child process (spawned: durable_rules keeps C state
that must not be inherited), never in the process or engine that serves decisions. The event loop
only waits on a thread; if a job outlives its time limit the child is killed (`Pool.terminate`)
and a fresh one is started for the next job, so one slow draft cannot stall anything else.

Jobs run one at a time per worker process (the machine has few cores and decisions come first);
a short queue waits its turn, more is refused as busy.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.pool import Pool
from typing import Any, Callable

from engine.workbench import draftwork

_spawn = multiprocessing.get_context("spawn")

TIME_LIMITS = {"validate": 20.0, "cases": 45.0, "impact": 60.0, "diff": 20.0}  # seconds, per job
MAX_WAITING = 4


class DraftBusy(Exception):
    """Too many draft jobs waiting."""


class DraftTimeout(Exception):
    def __init__(self, job: str, seconds: float) -> None:
        super().__init__(f"draft {job} took longer than {seconds:g} s and was stopped")
        self.job, self.seconds = job, seconds


class DraftRunner:
    def __init__(self) -> None:
        self._pool: Pool | None = None
        self._pool_lock = threading.Lock()
        self._turn = threading.Lock()  # one job at a time; waiting happens in the thread, not the loop
        self._waiting = 0

    def _get_pool(self) -> Pool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = _spawn.Pool(processes=1)
            return self._pool

    def _kill(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()

    def close(self) -> None:
        self._kill()

    def _run_blocking(self, job: str, function: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> dict[str, Any]:
        limit = TIME_LIMITS[job]
        with self._turn:
            pending = self._get_pool().apply_async(function, args)
            try:
                result: dict[str, Any] = pending.get(timeout=limit)
            except multiprocessing.TimeoutError:
                self._kill()
                raise DraftTimeout(job, limit) from None
            return result

    async def run(self, job: str, *args: Any) -> dict[str, Any]:
        """Run `draftwork.<job>(*args)` in the child; DraftBusy, DraftTimeout or its answer."""
        function = getattr(draftwork, job)
        if self._waiting >= MAX_WAITING:
            raise DraftBusy(f"{self._waiting} draft jobs are waiting; try again in a moment")
        self._waiting += 1
        try:
            return await asyncio.to_thread(self._run_blocking, job, function, args)
        finally:
            self._waiting -= 1


RUNNER = DraftRunner()  # one per worker process, its child started on first use
