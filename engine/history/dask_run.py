"""Bulk replay on Dask distributed: the one execution path of `impact` (and of `corpus`).

- Where: a `LocalCluster` of this machine's cores by default (processes, one thread each: the
  engine is CPU-bound Python holding durable_rules C state, so threads would only share a GIL), or
  an existing cluster given by `--scheduler tcp://HOST:8786` / `DASK_SCHEDULER_ADDRESS`.
- The engine: the client ships the policy files' bytes in a worker plugin; each worker writes them
  to its own temporary directory, builds one `Engine` (no shared filesystem assumed) and checks the
  engine's bundle hash against the client's before any task runs. A worker that joins later, or
  one the nanny restarts after a crash, runs the plugin again.
- Tickets: when every worker sees the corpus files as the client does (this machine's LocalCluster,
  or a shared filesystem), a task carries only where its partition is and the worker reads it;
  otherwise the client reads and ships each partition (engine/history/ticket_sources.py). A worker
  that cannot read a file after all (one that joined later) sends the partition back unread and the
  client ships it.
- Tasks: one per partition of tickets, at most a few per worker thread in flight, results taken
  as they complete (`as_completed`), so the client's memory stays flat on any corpus size.
- Worker memory: the LocalCluster's workers run without Dask's statistical profiler. It samples the
  running thread every 10 ms and keeps a call tree per second for the last
  `distributed.admin.low-level-log-length` (1,000) seconds: on this replay's deep call stacks about
  70 KiB per second per worker, which was the workers' memory growing with the run's length
  (+28 MiB over a 400 s run), and a few % of their CPU. On an external cluster, start the workers
  with DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False for the same.
- Faults: a worker that dies loses its tasks; the scheduler reruns them elsewhere, and since a
  partition's result depends on nothing but the partition, the summary does not change. Ctrl-C
  cancels what is in flight and closes the cluster.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from collections import deque
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from engine.history.impact import ImpactError, Job, PartResult, Tally, replay_partition
from engine.history.ticket_sources import Fingerprint, NotReadableHere, Partition, readable_here, with_payload

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
# the LocalCluster's workers: no statistical profiler (its history grows the workers' memory for
# 1,000 s and costs CPU; see the module docstring)
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
IN_FLIGHT_PER_THREAD = 3  # tasks queued per worker thread: enough to hide the round trip, no more
WORKER_WAIT_SECONDS = 60


class Interrupted(ImpactError):
    """Ctrl-C: the run was stopped; `done` of `total` rows had been replayed."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} tickets; nothing was written")
        self.done, self.total = done, total


# -- the cluster ---------------------------------------------------------------------------------

def scheduler_address(option: str | None) -> str | None:
    return option or os.environ.get(SCHEDULER_ENV) or None


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at `scheduler` (or $DASK_SCHEDULER_ADDRESS), else of a new
    LocalCluster of `workers` processes (default: this machine's cores) on 127.0.0.1 without a
    dashboard, closed on exit."""
    address = scheduler_address(scheduler)
    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout="10s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ImpactError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        else:
            # loopback only; no dashboard, and the scheduler's HTTP endpoint (health, metrics) on a
            # random loopback port rather than the fixed :8787 another cluster may hold
            with _workers_ignore_ctrl_c(), dask.config.set(LOCAL_WORKER_CONFIG):  # the nannies pass it on
                cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                                       scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
            client = Client(cluster, set_as_default=False)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start the worker processes with SIGINT ignored (an ignored signal stays ignored across
    exec): Ctrl-C on a terminal reaches the whole process group, and the client alone should
    handle it, cancelling the tasks and closing the cluster, rather than every worker printing a
    KeyboardInterrupt traceback as it dies."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for_workers(client: Client) -> int:
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError:
        raise ImpactError(f"the Dask scheduler {getattr(client.scheduler, 'address', '?')} has no worker "
                          f"(waited {WORKER_WAIT_SECONDS} s)") from None
    return max(1, int(sum(client.nthreads().values())))


# -- the engine on every worker ----------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}  # bundle hash -> (Engine, lock), in a worker process
_ENGINES_LOCK = threading.Lock()


def policy_files(rules_dir: str | Path) -> dict[str, bytes]:
    """The policy files a worker needs, by name (what the bundle hash covers)."""
    from engine.policy.bundle import policy_files as listed

    return {path.name: path.read_bytes() for path in listed(Path(rules_dir))}


class EnginePlugin(WorkerPlugin):
    """Ships the policy files with the job and builds one engine per worker from them.

    Named after the bundle hash and idempotent: a second run of the same bundle on a long-lived
    cluster reuses the engines already built (about 1 s of CPU per worker saved); another bundle is
    another plugin. A worker keeps the engine of every bundle run on it (tens of MB each) until it
    restarts: `client.restart()` drops them.
    """

    idempotent = True

    def __init__(self, files: dict[str, bytes], bundle_hash: str) -> None:
        self.files, self.bundle_hash = files, bundle_hash
        self.name = f"aftersale-engine-{bundle_hash[:16]}"
        self.directory: str | None = None

    def setup(self, worker: Any = None) -> None:
        from engine.api import Engine

        with _ENGINES_LOCK:
            if self.bundle_hash in _ENGINES:
                return
            self.directory = tempfile.mkdtemp(prefix="aftersale-policy-")
            for name, body in self.files.items():
                (Path(self.directory) / name).write_bytes(body)
            engine = Engine.from_directory(self.directory)
            if engine.bundle_hash != self.bundle_hash:
                engine.close()
                raise ImpactError(f"the engine built on worker {getattr(worker, 'address', '?')} has bundle "
                                  f"{engine.bundle_hash[:12]}, the client's is {self.bundle_hash[:12]}")
            _ENGINES[self.bundle_hash] = (engine, threading.Lock())

    def teardown(self, worker: Any = None) -> None:
        with _ENGINES_LOCK:
            built = _ENGINES.pop(self.bundle_hash, None)
        if built is not None:
            built[0].close()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class Unread:
    """A task's answer when its worker cannot read the partition's file as the client saw it."""

    partition: Partition


def replay_on_worker(job: Job, partition: Partition) -> PartResult | Unread:
    """One task: the partition replayed by this worker's engine (read here from its file when the
    client did not ship it)."""
    built = _ENGINES.get(job.bundle_hash)
    if built is None:
        raise ImpactError(f"no engine for bundle {job.bundle_hash[:12]} on this worker (its plugin did not run)")
    engine, lock = built
    with lock:  # a worker started with several threads: durable_rules sessions are not shared
        try:
            return replay_partition(engine, job, partition)
        except NotReadableHere:
            return Unread(partition)


def workers_read_files(client: Client, files: dict[str, Fingerprint]) -> bool:
    """Whether every worker now in the cluster sees every corpus file as the client does."""
    if not files:
        return False
    try:
        answers = client.run(readable_here, files)
    except Exception:  # noqa: BLE001 - a worker that cannot even answer: ship to be safe
        return False
    return bool(answers) and all(answers.values())


class Feed:
    """Task arguments: the ones put back first (partitions to ship after all), then the rest."""

    def __init__(self, rest: Iterable[tuple[Any, ...]]) -> None:
        self.again: deque[tuple[Any, ...]] = deque()
        self.rest = iter(rest)

    def __iter__(self) -> "Feed":
        return self

    def __next__(self) -> tuple[Any, ...]:
        return self.again.popleft() if self.again else next(self.rest)


@dataclass
class Reading:
    """How a run's tickets reached the workers."""

    by_workers: bool = False  # the workers read the files themselves
    shipped: int = 0  # partitions the client read and shipped (all of them when not by_workers)


# -- running tasks -----------------------------------------------------------------------------------

def run_tasks(client: Client, function: Callable[..., Any], arguments: Iterable[tuple[Any, ...]],
              on_result: Callable[[Any], None], in_flight: int | None = None) -> None:
    """`function(*args)` for every args on the cluster, at most `in_flight` at a time, each result
    handed to `on_result` as it completes. Ctrl-C cancels the tasks in flight and re-raises."""
    slots = in_flight or IN_FLIGHT_PER_THREAD * _wait_for_workers(client)
    run = uuid.uuid4().hex[:12]
    pending = iter(arguments)
    futures = as_completed(loop=client.loop)
    submitted: set[Any] = set()
    name = getattr(function, "__name__", None) or getattr(getattr(function, "func", None), "__name__", "task")
    numbers = iter(range(1 << 62))

    def submit_next() -> bool:
        args = next(pending, None)
        if args is None:
            return False
        count = next(numbers)
        future = client.submit(function, *args, key=f"{name}-{run}-{count}", pure=False)
        submitted.add(future)
        futures.add(future)
        return True

    try:
        for _ in range(slots):
            if not submit_next():
                break
        for future in futures:
            result = future.result()
            submitted.discard(future)
            future.release()
            on_result(result)
            submit_next()
    except BaseException:
        client.cancel(list(submitted))
        raise


def run_impact(client: Client, job: Job, parts: Callable[[bool], Iterable[Partition]], plugin: EnginePlugin,
               total: int, on_part: Callable[[PartResult], None] | None = None, in_flight: int | None = None,
               files: dict[str, Fingerprint] | None = None, reading: Reading | None = None) -> Tally:
    """Replay every partition on the cluster; `parts(ship)` gives the partitions, with their bytes
    when `ship`. The workers read the files themselves when they all see `files` (absolute path ->
    fingerprint) as the client does; otherwise, or without `files`, the client ships every partition.
    `on_part` sees each partition's result (progress, difference rows); `reading` is told how the
    tickets went. Raises ImpactError if a worker cannot build the client's engine, and Interrupted on
    Ctrl-C."""
    _wait_for_workers(client)
    reading = reading if reading is not None else Reading()
    reading.by_workers = workers_read_files(client, files or {})
    try:
        client.register_plugin(plugin)  # raises here if a worker's setup (build, hash check) fails
    except ImpactError:
        raise
    except Exception as exc:  # noqa: BLE001 - a PolicyError or an import error on a worker
        raise ImpactError(f"a Dask worker could not build the engine: {type(exc).__name__}: {exc}") from None
    tally = Tally()
    done = 0

    feed = Feed((job, part) for part in parts(not reading.by_workers))

    def take(result: PartResult | Unread) -> None:
        nonlocal done
        if isinstance(result, Unread):  # that worker cannot read the file: ship it the bytes
            try:
                feed.again.append((job, with_payload(result.partition)))
            except NotReadableHere:
                raise ImpactError(f"corpus file `{result.partition.path}` changed during the run") from None
            reading.shipped += 1
            return
        if not reading.by_workers:
            reading.shipped += 1
        tally.merge(result.tally)
        done += result.rows
        if on_part is not None:
            on_part(result)

    try:
        run_tasks(client, replay_on_worker, feed, take, in_flight)
    except KeyboardInterrupt:
        raise Interrupted(done, total) from None
    return tally
