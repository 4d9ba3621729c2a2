"""Hot reload: build the next engine beside the running one, swap one reference if all passed.

Triggers: SIGHUP, a change in the rules directory (polled: file stats every ~1 s, and a content
hash only when the stats moved; no extra dependency), or POST /admin/reload.

Safety:
- The next engine is built in a worker thread (load, validate, compile, create its durable
  rulesets, cross-check them, prove its outcomes complete: `Engine(bundle)`, under a second
  for the bundled rules) while the event loop keeps answering with the current engine. The
  runtime serializes every durable call sequence process-wide (engine/runtime.py), so the two
  threads never interleave inside one.
- The swap is a single attribute assignment on the loop thread. A request takes the engine once
  (`lease()`) and uses that one to the end, so no request sees half a reload, and a batch is
  answered by one bundle.
- If anything fails, nothing is swapped: the last good engine keeps serving, a line is logged and
  the error (with the loader's diagnostics) is shown by /readyz until a later reload succeeds.
- The old engine's durable rulesets are released (`Engine.close()`) when its last lease ends, not
  leaked; requests hold leases only while they compute (no await inside), so that is at once in
  practice.

Cost: a reload pays only for what changed. The loader is given the engine in force and a memo of
the documents it loaded (engine/policy/memo.py): a file whose bytes did not change is not parsed,
checked or built again; its prepared version (durable rulesets included, this process only) is
shared by the old and the new engine and closed when the last of them is. The checks that compare
versions run on the whole new bundle every time.

Triggers coalesce: one reload runs at a time; every trigger that comes while it runs (poll,
SIGHUP, POST /admin/reload) joins ONE follow-up reload, which reads the directory as it is when it
starts (so it covers every change made before any of those triggers). Each caller gets the outcome
of the reload that covered it; "unchanged" from a follow-up whose generation moved on since the
caller asked is reported as "reloaded" (`covered`): the caller's change is in force, applied by
the reload that was running when it asked.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.core.errors import EngineError, PolicyError
from engine.service import metrics

logger = logging.getLogger("aftersale.service")

POLICY_SUFFIXES = (".yaml", ".yml")


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _policy_files(rules_dir: Path) -> list[Path]:
    # Only the directory's own files: rules/tests/*.yaml are policy *tests*, not policy.
    try:
        return sorted(p for p in rules_dir.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())
    except OSError:
        return []


def stat_signature(rules_dir: Path) -> tuple[int | None, tuple[tuple[str, int, int], ...]]:
    """Cheap change detector: (name, size, mtime_ns) of every policy file, and the directory's own
    mtime (catches adds/removes)."""
    entries = []
    for path in _policy_files(rules_dir):
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((path.name, st.st_size, st.st_mtime_ns))
    try:
        dir_mtime = rules_dir.stat().st_mtime_ns
    except OSError:
        dir_mtime = None
    return (dir_mtime, tuple(entries))


def content_hash(rules_dir: Path) -> str:
    """sha256 over (name, bytes) of every policy file: decides whether a reload is needed
    (touching a file without changing it is not a change)."""
    digest = hashlib.sha256()
    for path in _policy_files(rules_dir):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(path.name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


@dataclass
class Generation:
    """One loaded engine and what the service says about it."""

    number: int
    engine: Any                      # engine.api.Engine
    source_hash: str                 # content_hash of the directory as it was read
    loaded_at: str
    in_flight: int = 0
    retired: bool = False

    @property
    def bundle_hash(self) -> str:
        bundle_hash: str = self.engine.bundle_hash
        return bundle_hash


def undeclared_removals(old_versions: list[Any], new_versions: list[Any], declared: Iterable[str],
                        now: datetime | None = None) -> list[str]:
    """Versions served now that the new bundle drops, that are or were in force (effective_from
    has passed: decisions were made under them, or are being made), and that the operator did not
    declare (`POST /admin/reload {"remove": [...]}`). A version scheduled for the future may go
    without a declaration: nothing was ever decided under it."""
    now = now or datetime.now(timezone.utc)
    kept = {info.version for info in new_versions}
    declared = set(declared)
    return [info.version for info in old_versions
            if info.version not in kept and info.effective_from <= now and info.version not in declared]


def removal_error(versions: list[str]) -> dict[str, Any]:
    return {"code": "undeclared_removal",
            "message": (f"the new rules drop version(s) {', '.join(versions)}, in force now or before; "
                        "declare the removal (POST /admin/reload with {\"remove\": [...]}) or restore the file(s)"),
            "versions": versions}


@dataclass
class ReloadOutcome:
    status: str                      # reloaded | unchanged | failed | refused (an undeclared removal)
    generation: int
    bundle_hash: str
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"status": self.status, "generation": self.generation, "bundle_hash": self.bundle_hash}
        if self.error:
            out["error"] = self.error
        return out


def covered(outcome: ReloadOutcome, asked_at: int) -> ReloadOutcome:
    """The outcome as the caller who asked while generation `asked_at` served should see it: the
    directory is unchanged since the generation in force, but that generation came after the
    caller asked, so for the caller the rules were reloaded."""
    if outcome.status == "unchanged" and outcome.generation > asked_at:
        return ReloadOutcome("reloaded", outcome.generation, outcome.bundle_hash)
    return outcome


@dataclass
class TriggerBatch:
    """The triggers one reload answers: their reasons, the removals any of them declared (a
    declaration by one admin request is a declaration for the reload that covers it), and whether
    any forces a rebuild."""

    reasons: list[str] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)
    force: bool = False

    def add(self, reason: str, declared: Iterable[str] = (), force: bool = False) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.declared.update(declared)
        self.force = self.force or force

    @property
    def reason(self) -> str:
        return ", ".join(self.reasons)


def _error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, PolicyError):
        return {"code": "PolicyError", "message": f"invalid policy bundle ({len(exc.diagnostics)} problems)",
                # each problem as the loader located it: code, message, file, line, column, path, hint
                "problems": [d.to_json() for d in exc.diagnostics][:50]}
    if isinstance(exc, EngineError):
        return {"code": type(exc).__name__, "message": str(exc)}
    return {"code": type(exc).__name__, "message": str(exc) or repr(exc)}


class Lease:
    """The context manager of `EngineHolder.lease`: a class rather than @contextmanager, whose
    generator costs a decision ~1 µs more on the service's hot path."""

    __slots__ = ("generation",)

    def __init__(self, generation: Generation) -> None:
        self.generation = generation

    def __enter__(self) -> Generation:
        self.generation.in_flight += 1
        return self.generation

    def __exit__(self, *exc_info: object) -> None:
        generation = self.generation
        generation.in_flight -= 1
        if generation.retired and generation.in_flight == 0:
            _close(generation)


@dataclass
class EngineHolder:
    """The current engine of this worker process, its reload history, and the reload machinery."""

    rules_dir: Path
    loader: Callable[..., Any]       # loader(rules_dir), or loader(rules_dir, previous_engine) if incremental
    incremental: bool = False
    current: Generation = field(init=False)
    last_error: dict[str, Any] | None = None
    last_reload: dict[str, Any] | None = None
    reloads_run: int = 0             # reloads actually run (triggers coalesce: see the module's doc)
    _lock: asyncio.Lock | None = None
    _last_failed_hash: str | None = None
    _staged: Generation | None = None
    _running: asyncio.Future[None] | None = None
    _batch: tuple[TriggerBatch, asyncio.Future[ReloadOutcome]] | None = None       # the one running
    _follow_up: tuple[TriggerBatch, asyncio.Future[ReloadOutcome]] | None = None   # the one waiting

    @classmethod
    def start(cls, rules_dir: Path, loader: Callable[..., Any], engine: Any = None,
              incremental: bool = False) -> "EngineHolder":
        """Load synchronously (startup: a worker with no valid policy must not start).
        `incremental`: the loader takes the engine in force as a second argument and rebuilds only
        what changed (app.py)."""
        holder = cls(Path(rules_dir), loader, incremental)
        source = content_hash(holder.rules_dir)
        engine = engine if engine is not None else loader(holder.rules_dir)
        holder.current = Generation(1, engine, source, _utc_now())
        metrics.set_bundle(holder.current.bundle_hash, 1, None)
        return holder

    def lease(self) -> "Lease":
        """Take the current engine for the length of one request (`with holder.lease() as g:`)."""
        return Lease(self.current)

    async def reload(self, reason: str, force: bool = False, declared_removals: Iterable[str] = ()) -> ReloadOutcome:
        """Reload now, or join the follow-up of the reload running (module doc: triggers coalesce)."""
        asked_at = self.current.number
        metrics.RELOAD_TRIGGERS.labels(reason).inc()
        loop = asyncio.get_running_loop()
        if self._running is None:
            self._batch = (TriggerBatch(), loop.create_future())
            entry = self._batch
            self._running = asyncio.ensure_future(self._run_batches())
        else:
            if self._follow_up is None:
                self._follow_up = (TriggerBatch(), loop.create_future())
            entry = self._follow_up
        entry[0].add(reason, declared_removals, force)
        # shielded: a caller that gives up (client gone) must not cancel the reload the others wait on
        return covered(await asyncio.shield(entry[1]), asked_at)

    async def stop_reloads(self) -> None:
        """Shutdown: cancel the reload running, if any (its waiters are cancelled with it)."""
        running = self._running
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running

    async def _run_batches(self) -> None:
        try:
            while self._batch is not None:
                batch, future = self._batch
                try:
                    outcome = await self._reload(batch.reason, batch.force, tuple(sorted(batch.declared)))
                except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
                    future.set_exception(exc)
                else:
                    self.reloads_run += 1
                    metrics.RELOADS.labels(outcome.status).inc()
                    future.set_result(outcome)
                self._batch, self._follow_up = self._follow_up, None
        finally:
            self._running = None
            for entry in (self._batch, self._follow_up):   # cancelled (shutdown): no caller waits forever
                if entry is not None and not entry[1].done():
                    entry[1].cancel()
            self._batch = self._follow_up = None

    async def _reload(self, reason: str, force: bool, declared: tuple[str, ...]) -> ReloadOutcome:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one reload at a time (reload() already coalesces; this is the guarantee)
            source = content_hash(self.rules_dir)
            if not force and source == self.current.source_hash:
                # back to (or still at) exactly what is served: an earlier failure no longer applies
                self.last_error, self._last_failed_hash = None, None
                self.last_reload = {"at": _utc_now(), "reason": reason, "status": "unchanged"}
                logger.info("reload (%s): rules unchanged, generation %d keeps serving", reason, self.current.number)
                return ReloadOutcome("unchanged", self.current.number, self.current.bundle_hash)
            if not force and not declared and source == self._last_failed_hash:
                refused = (self.last_error or {}).get("code") == "undeclared_removal"
                return ReloadOutcome("refused" if refused else "failed", self.current.number,
                                     self.current.bundle_hash, self.last_error)
            loop = asyncio.get_running_loop()
            load_args = (self.rules_dir, self.current.engine) if self.incremental and not force else (self.rules_dir,)
            try:
                engine = await loop.run_in_executor(None, self.loader, *load_args)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the old engine
                self._last_failed_hash = source
                self.last_error = dict(_error_json(exc), at=_utc_now(), reason=reason)
                self.last_reload = {"at": self.last_error["at"], "reason": reason, "status": "failed"}
                logger.error("reload (%s) failed, still serving generation %d (bundle %s): %s",
                             reason, self.current.number, self.current.bundle_hash[:12],
                             self.last_error["message"])
                return ReloadOutcome("failed", self.current.number, self.current.bundle_hash, self.last_error)
            dropped = undeclared_removals(self.current.engine.versions(), engine.versions(), declared)
            if dropped:
                _close(Generation(0, engine, source, _utc_now()))
                return self.refuse(reason, source, removal_error(dropped))
            metrics.count_versions("worker", engine)
            old = self.current
            self.current = Generation(old.number + 1, engine, source, _utc_now())
            self.last_error = None
            self._last_failed_hash = None
            self.last_reload = {"at": self.current.loaded_at, "reason": reason, "status": "reloaded"}
            metrics.set_bundle(self.current.bundle_hash, self.current.number, (old.bundle_hash, old.number))
            old.retired = True
            if old.in_flight == 0:
                _close(old)
            logger.warning("reload (%s): generation %d, bundle %s, versions %s", reason, self.current.number,
                           self.current.bundle_hash[:12], ", ".join(v.version for v in engine.versions()))
            return ReloadOutcome("reloaded", self.current.number, self.current.bundle_hash)

    def refuse(self, reason: str, source: str | None, error: dict[str, Any]) -> ReloadOutcome:
        self._last_failed_hash = source
        self.last_error = dict(error, at=_utc_now(), reason=reason)
        self.last_reload = {"at": self.last_error["at"], "reason": reason, "status": "refused"}
        logger.error("reload (%s) refused, still serving generation %d: %s", reason, self.current.number,
                     error["message"])
        return ReloadOutcome("refused", self.current.number, self.current.bundle_hash, self.last_error)

    # -- generations handed over by the supervisor (several workers: generations.py) -----------------

    def stage(self, number: int, engine: Any, source_hash: str) -> None:
        """Hold a built engine until the supervisor says every worker has one (commit) or not (abort)."""
        self.abort()
        self._staged = Generation(number, engine, source_hash, _utc_now())

    def abort(self) -> None:
        staged, self._staged = self._staged, None
        if staged is not None:
            _close(staged)

    def commit(self, number: int, reason: str) -> bool:
        staged = self._staged
        if staged is None or staged.number != number:
            return False
        self._staged = None
        old, self.current = self.current, staged
        self.last_error, self._last_failed_hash = None, None
        self.last_reload = {"at": staged.loaded_at, "reason": reason, "status": "reloaded"}
        metrics.set_bundle(staged.bundle_hash, staged.number, (old.bundle_hash, old.number))
        old.retired = True
        if old.in_flight == 0:
            _close(old)
        logger.warning("reload (%s): generation %d, bundle %s", reason, staged.number, staged.bundle_hash[:12])
        return True

    def note(self, outcome: dict[str, Any], reason: str) -> None:
        """The supervisor's verdict on a reload that did not change this worker (unchanged, failed,
        refused): kept for /readyz."""
        status = outcome["status"]
        self.last_reload = {"at": _utc_now(), "reason": reason, "status": status}
        if status == "unchanged":
            self.last_error = None
        elif outcome.get("error"):
            self.last_error = dict(outcome["error"], reason=reason)

    async def watch(self, interval: float = 1.0) -> None:
        """Poll the directory; reload when the content really changed. Runs until cancelled."""
        seen, dirty = stat_signature(self.rules_dir), False
        while True:
            await asyncio.sleep(interval)
            signature = stat_signature(self.rules_dir)
            if signature != seen:
                # still being written? reload once it held still for a poll: a poll in the middle of
                # an edit may see the final stats already (mtimes have a clock tick's granularity)
                seen, dirty = signature, True
                continue
            if not dirty:
                continue
            dirty = False
            try:
                await self.reload("rules directory changed")
            except Exception:  # noqa: BLE001 - the watcher must survive anything
                logger.exception("reload watcher: unexpected error")


def _close(generation: Generation) -> None:
    close = getattr(generation.engine, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001 - a failed release must not fail a request
        logger.exception("closing engine generation %d failed (its rulesets leak)", generation.number)
    else:
        logger.info("released engine generation %d (pid %d)", generation.number, os.getpid())
