"""One bundle at a time across worker processes: the supervisor validates a new bundle once and
hands it to every worker; all switch together.

Before this, each worker watched the directory and reloaded on its own: two workers served
different bundles for 1–2 s after a change, and each paid the full validation (~0.4 s of CPU).
Now, with `--workers N > 1`:

1. The supervisor alone notices a change (it polls the directory; SIGHUP; POST /admin/reload in
   any worker is passed to it over that worker's pipe). It copies the policy files into a
   snapshot directory (so what is validated is exactly what is served, whatever happens on disk
   meanwhile), loads and fully validates the bundle (`Engine(bundle)`: compile, cross-check,
   outcome proof), and checks that no version that is or was in force disappears undeclared.
2. `prepare`: it sends the validated bundle (pickled, ~350 KB) to every worker; each builds its
   own durable rulesets from it in a thread (`Engine(bundle, crosscheck_facts=0,
   check_outcomes=False)`: the cross-check and the outcome proof were done once, by the
   supervisor, on these very bytes; compile and open still run) while it keeps answering with the engine it has, and replies.
3. `commit` once every worker has prepared (`abort` if any could not): each swaps one reference.
   The commits go out back to back, so workers switch within milliseconds of each other; a
   request in flight finishes on the engine it leased (reload.py).
A worker (re)started later loads the current snapshot; one that started during a reload says
`hello` with its generation and is brought to the current one the same way.

A reload pays only for what changed: the supervisor keeps the engine it validated last (its
durable rulesets stay open in the supervisor) and a memo of the documents it checked
(engine/policy/memo.py); a file whose bytes did not change is not parsed, checked, compiled or
cross-checked again, only the changed ones and the checks that compare versions run. Each worker
builds the new engine with the one it serves as `reuse` the same way: it builds only the changed
versions. Triggers that come while a reload runs coalesce into one follow-up (supervisor.py).

Messages are tuples over a `multiprocessing` Pipe per worker:
    supervisor → worker: ("prepare", n, bundle_bytes, source_hash, reason) ("commit", n, reason)
                         ("abort", n) ("note", outcome, reason) ("reload_result", request_id, outcome)
    worker → supervisor: ("hello", n) ("prepared", n, error|None) ("committed", n, ok)
                         ("reload", request_id, declared_removals, generation_served_when_asked)
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import shutil
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine.service import metrics
from engine.service.reload import (ReloadOutcome, _error_json, _policy_files, content_hash, removal_error,
                                   stat_signature, undeclared_removals)

if TYPE_CHECKING:
    from engine.api import Engine

logger = logging.getLogger("aftersale.service")

Message = tuple[Any, ...]

PREPARE_SECONDS = 120.0     # a worker that has not built the new engine by then fails the reload
COMMIT_SECONDS = 10.0


class Coordinator:
    """The supervisor's side: the generation in force and how to move every worker to the next."""

    def __init__(self, rules_dir: Path, poll_interval: float) -> None:
        self.rules_dir = Path(rules_dir)
        self.poll_interval = poll_interval
        self.state_dir = Path(tempfile.mkdtemp(prefix="aftersale-generations-"))
        self.number = 1
        from engine.policy.memo import DocumentMemo

        self.memo = DocumentMemo()
        self.engine: Engine | None = None      # the last bundle validated in full; its versions are reused
        self.last_build: dict[str, Any] = {}    # what the last validation built and reused (tests, logs)
        self.reloads_run = 0                    # reloads actually run (several triggers may share one)
        self.current_dir, self.source_hash = self._snapshot(1)
        self.bundle, self.versions, self.engine = self._validate(self.current_dir)
        self.bundle_hash = self.bundle.content_hash
        self._bundle_bytes = pickle.dumps(self.bundle)
        self._last_failed: tuple[str, dict[str, Any]] | None = None
        self._seen = stat_signature(self.rules_dir)
        self._dirty = False
        self._known: dict[int, int] = {}                     # id(link) → generation it confirmed
        self._next_poll = time.monotonic() + poll_interval
        self.deferred: list[tuple[Connection, Message]] = []   # messages that arrived during an exchange
        metrics.set_bundle(self.bundle_hash, self.number, None)

    # -- building ---------------------------------------------------------------------------------

    def _snapshot(self, number: int) -> tuple[Path, str]:
        target = self.state_dir / f"generation-{number}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for path in _policy_files(self.rules_dir):
            shutil.copy2(path, target / path.name)
        return target, content_hash(target)

    def _validate(self, directory: Path) -> tuple[Any, list[Any], Engine]:
        """Load, check and build the bundle in `directory` (compile, cross-check, prove outcomes;
        raises PolicyError), reusing what the last validated engine and the memo have for files
        whose bytes did not change. The new engine stays open (the caller keeps or closes it)."""
        from engine.api import Engine

        self.last_build = {}
        try:
            bundle = self.memo.load_directory(directory)
        finally:
            self.last_build = dict(vars(self.memo.stats))
        engine = Engine(bundle, reuse=self.engine)
        self.last_build.update(built=engine.built_versions, reused=engine.reused_versions)
        metrics.count_versions("supervisor", engine)
        return bundle, engine.versions(), engine

    def _keep(self, engine: Engine) -> None:
        old, self.engine = self.engine, engine
        if old is not None and old is not engine:
            old.close()

    # -- triggers ------------------------------------------------------------------------------------

    def poll_due(self) -> bool:
        if self.poll_interval <= 0 or time.monotonic() < self._next_poll:
            return False
        self._next_poll = time.monotonic() + self.poll_interval
        signature = stat_signature(self.rules_dir)
        if signature != self._seen:  # still being written? reload once it held still for a poll
            self._seen, self._dirty = signature, True
            return False
        dirty, self._dirty = self._dirty, False
        return dirty

    def reload(self, reason: str, links: list[Connection], declared: tuple[str, ...] = ()) -> ReloadOutcome:
        outcome = self._reload(reason, links, declared)
        self.reloads_run += 1
        metrics.RELOADS.labels(outcome.status).inc()
        if outcome.status != "reloaded":
            self._broadcast(links, ("note", outcome.to_json(), reason))
        return outcome

    def _reload(self, reason: str, links: list[Connection], declared: tuple[str, ...]) -> ReloadOutcome:
        source = content_hash(self.rules_dir)
        if source == self.source_hash:
            self._last_failed = None
            logger.info("reload (%s): rules unchanged, generation %d keeps serving", reason, self.number)
            return ReloadOutcome("unchanged", self.number, self.bundle_hash)
        if self._last_failed and self._last_failed[0] == source and not declared:
            status = "refused" if self._last_failed[1].get("code") == "undeclared_removal" else "failed"
            return self._failed(self._last_failed[1], reason, status=status, log=False)
        number = self.number + 1
        directory, source = self._snapshot(number)
        try:
            bundle, versions, engine = self._validate(directory)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the generation in force
            shutil.rmtree(directory, ignore_errors=True)
            self._last_failed = (source, _error_json(exc))
            return self._failed(self._last_failed[1], reason)
        dropped = undeclared_removals(self.versions, versions, declared)
        if dropped:
            engine.close()
            shutil.rmtree(directory, ignore_errors=True)
            self._last_failed = (source, removal_error(dropped))
            return self._failed(self._last_failed[1], reason, status="refused")
        data = pickle.dumps(bundle)
        problem = self._hand_over(links, number, data, source, reason)
        if problem:
            engine.close()
            shutil.rmtree(directory, ignore_errors=True)
            return self._failed({"code": "handover_failed", "message": problem}, reason)
        self._keep(engine)
        old_dir = self.current_dir
        self.number, self.current_dir, self.source_hash = number, directory, source
        self.bundle, self.versions, self._bundle_bytes = bundle, versions, data
        old_hash, self.bundle_hash = self.bundle_hash, bundle.content_hash
        self._last_failed = None
        metrics.set_bundle(self.bundle_hash, number, (old_hash, number - 1))
        shutil.rmtree(old_dir, ignore_errors=True)
        logger.warning("reload (%s): every worker serves generation %d, bundle %s (versions built: %s; reused: %d)",
                       reason, number, self.bundle_hash[:12], ", ".join(self.last_build.get("built", ())) or "none",
                       len(self.last_build.get("reused", ())))
        return ReloadOutcome("reloaded", number, self.bundle_hash)

    def _failed(self, error: dict[str, Any], reason: str, status: str = "failed", log: bool = True) -> ReloadOutcome:
        if log:
            logger.error("reload (%s) %s, every worker keeps generation %d (bundle %s): %s", reason, status,
                         self.number, self.bundle_hash[:12], error.get("message"))
        return ReloadOutcome(status, self.number, self.bundle_hash, error)

    # -- hand-over -----------------------------------------------------------------------------------

    def _hand_over(self, links: list[Connection], number: int, data: bytes, source: str, reason: str) -> str | None:
        """prepare → (all prepared) commit, or abort. Returns a problem, or None when all moved."""
        self._broadcast(links, ("prepare", number, data, source, reason))
        replies = self._collect(links, "prepared", number, PREPARE_SECONDS)
        errors = [f"worker {i}: {reply[2]['message'] if reply and reply[2] else 'no answer'}"
                  for i, reply in enumerate(replies) if reply is None or reply[2] is not None]
        if errors:
            self._broadcast(links, ("abort", number))
            return "; ".join(errors)
        self._broadcast(links, ("commit", number, reason))
        committed = self._collect(links, "committed", number, COMMIT_SECONDS)
        if not all(reply and reply[2] for reply in committed):
            logger.error("generation %d: not every worker confirmed the switch: %s", number, committed)
        return None

    def bring_up_to_date(self, conn: Connection, worker_number: int) -> None:
        """A worker that says hello with an older generation (it started during a reload)."""
        if self.number in (worker_number, self._known.get(id(conn))):
            return
        self._broadcast([conn], ("prepare", self.number, self._bundle_bytes, self.source_hash, "catch up"))
        reply = self._collect([conn], "prepared", self.number, PREPARE_SECONDS)[0]
        if reply and reply[2] is None:
            self._broadcast([conn], ("commit", self.number, "catch up"))
            self._collect([conn], "committed", self.number, COMMIT_SECONDS)

    @staticmethod
    def _broadcast(links: list[Connection], message: Message) -> None:
        for conn in links:
            try:
                conn.send(message)
            except OSError:
                pass  # a dead worker: the supervisor restarts it on the current generation

    def _collect(self, links: list[Connection], kind: str, number: int, seconds: float) -> list[Message | None]:
        replies: dict[int, Message] = {}
        index = {id(conn): i for i, conn in enumerate(links)}
        deadline = time.monotonic() + seconds
        waiting = list(links)
        while waiting and time.monotonic() < deadline:
            for ready in wait(waiting, timeout=max(0.0, deadline - time.monotonic())):
                conn = cast(Connection, ready)
                try:
                    message = cast(Message, conn.recv())
                except (EOFError, OSError):
                    waiting.remove(conn)  # it died: no reply
                    continue
                if message[0] == kind and message[1] == number:
                    replies[index[id(conn)]] = message
                    if kind == "committed" and message[2]:
                        self._known[id(conn)] = number
                    waiting.remove(conn)
                else:
                    self.deferred.append((conn, message))
        return [replies.get(i) for i in range(len(links))]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        shutil.rmtree(self.state_dir, ignore_errors=True)


class WorkerLink:
    """A worker's side: answers the supervisor's prepare/commit, and passes POST /admin/reload on."""

    def __init__(self, conn: Connection, generation: int) -> None:
        self.conn = conn
        self.generation = generation
        self.holder: Any = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, state: Any) -> None:
        """After the app started (its holder exists): take the supervisor's numbering, listen."""
        self.holder = state.holder
        self.holder.current.number = self.generation
        state.coordinator = self
        loop = asyncio.get_running_loop()
        # A thread does the blocking reads (a bundle is ~350 KB: more than a pipe holds, and
        # uvloop's add_reader makes the descriptor non-blocking, which Connection.recv cannot take)
        threading.Thread(target=self._receive, args=(loop,), name="generation-link", daemon=True).start()
        self.conn.send(("hello", self.generation))

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # the supervisor is gone: keep serving what we have
                return
            try:
                loop.call_soon_threadsafe(self._dispatch, message)
            except RuntimeError:  # the loop closed: shutting down
                return

    def _dispatch(self, message: Message) -> None:
        kind = message[0]
        if kind == "prepare":
            task = asyncio.ensure_future(self._prepare(*message[1:]))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        elif kind == "commit":
            ok = self.holder.commit(message[1], message[2])
            self.conn.send(("committed", message[1], ok))
        elif kind == "abort":
            self.holder.abort()
        elif kind == "note":
            self.holder.note(message[1], message[2])
        elif kind == "reload_result":
            future = self._pending.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result(message[2])

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("generation hand-over failed in this worker", exc_info=task.exception())

    async def _prepare(self, number: int, data: bytes, source: str, reason: str) -> None:
        previous = self.holder.current.engine   # the engine in force: unchanged versions are taken from it

        def build() -> Any:
            from engine.api import Engine

            # validated in full by the supervisor (cross-check and outcome proof included: the
            # outcome proof was ~60% of a worker's build); only versions whose bytes changed are built here
            engine = Engine(pickle.loads(data), crosscheck_facts=0, check_outcomes=False, reuse=previous)
            metrics.count_versions("worker", engine)
            return engine

        try:
            engine = await asyncio.get_running_loop().run_in_executor(None, build)
        except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which aborts
            self.conn.send(("prepared", number, _error_json(exc)))
            return
        self.holder.stage(number, engine, source)
        self.conn.send(("prepared", number, None))

    async def request_reload(self, declared: tuple[str, ...]) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self.conn.send(("reload", request_id, list(declared), self.holder.current.number))
        return await asyncio.wait_for(future, PREPARE_SECONDS + COMMIT_SECONDS + 30)
