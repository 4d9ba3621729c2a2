"""The service's Prometheus metrics (prometheus-client), summed across worker processes.

`aftersale serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker starts
(prometheus-client chooses its storage when first imported, so it must be set before this module
is): every process then writes its values to memory-mapped files there, and GET /metrics in any
worker reads all of them (`MultiProcessCollector`). The supervisor marks dead workers, so their
live gauges disappear while their counters keep counting. Without the variable (the library used
in-process, tests) the default registry of this one process is served.

Names and labels are listed in docs/service.md ("Metrics"). Label values are bounded: actor, kind,
outcome and status codes are small closed sets; `version` is a policy version of the bundle;
`route` is the route template (`/v1/versions/{version}`), never the raw path.
"""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from prometheus_client import multiprocess, values

from engine.service.pid import process_id

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

if os.environ.get(MULTIPROC_ENV):
    # prometheus-client's multiprocess values call os.getpid() on every inc/observe, to notice a
    # fork: four system calls per decision, 8 % of a worker's CPU under load (py-spy,
    # bench/README.md). The cached pid (pid.py) is refreshed in a forked child, so it still returns
    # distinct values in processes that run at the same time: the rule MultiProcessValue states
    # for its `process_identifier`. Set before the metrics below are created (they read ValueClass then).
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)  # type: ignore[no-untyped-call]

# decisions take ~100 µs in process and a few ms over HTTP; a reload or a sync can take seconds
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

DECISIONS = Counter("aftersale_decisions", "Decisions answered, by kind, actor, policy version and outcome",
                    ["kind", "actor", "version", "outcome"])
REQUEST_SECONDS = Histogram("aftersale_request_duration_seconds", "Time from request to last response byte",
                            ["route"], buckets=_LATENCY_BUCKETS)
RESPONSES = Counter("aftersale_http_responses", "Responses by route and status code", ["route", "status"])
RELOADS = Counter("aftersale_reloads", "Reload attempts by outcome (reloaded, unchanged, failed, refused)",
                  ["outcome"])
RELOAD_TRIGGERS = Counter("aftersale_reload_triggers",
                          "Reload triggers (poll, SIGHUP, POST /admin/reload) received; several coalesce "
                          "into one reload while one runs", ["source"])
RELOAD_VERSIONS = Counter("aftersale_reload_versions",
                          "Policy versions at each reload, by process role (supervisor validates, worker "
                          "builds) and how: built (its file's bytes changed) or reused (unchanged bytes: its "
                          "checked, compiled and prepared form kept)", ["role", "how"])
BUNDLE = Gauge("aftersale_bundle_in_force", "1 for the bundle hash (and generation) a worker serves",
               ["bundle_hash", "generation"], multiprocess_mode="livemax")
LOG_QUEUE = Gauge("aftersale_decision_log_queue_depth", "Decision-log lines the writer found waiting at its last batch",
                  multiprocess_mode="livesum")
LOG_WRITTEN = Counter("aftersale_decision_log_writes", "Decision-log lines written")
LOG_DROPPED = Counter("aftersale_decision_log_dropped", "Decision-log lines dropped (best-effort mode)",
                      ["reason"])
LOG_WRITE_ERRORS = Counter("aftersale_decision_log_write_errors", "Failed decision-log batch writes")
LOG_WRITE_SECONDS = Histogram("aftersale_decision_log_write_seconds", "One batch write (+ fdatasync when required)",
                              buckets=_LATENCY_BUCKETS)
CONNECTIONS_SHED = Counter("aftersale_connections_shed", "Connections closed to make room (no request in progress)")
REQUESTS_TIMED_OUT = Counter("aftersale_requests_timed_out", "Requests not received within the request timeout")
REQUESTS_REFUSED = Counter("aftersale_requests_refused",
                           "Requests answered 503 + Retry-After: every connection was busy")


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *label_values: str) -> Any:
    """`metric.labels(*label_values)`, remembered. labels() takes a lock and re-checks the values on
    every call, three times per decision; the label sets are bounded (see above), so is this."""
    key = (metric, *label_values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*label_values)
    return found


class PerIteration:
    """The per-request metric updates of one event-loop iteration, applied together at its end.

    Every prometheus-client update is a locked write to a memory-mapped file (multiprocess mode),
    and a request makes four (decisions and responses counted, latency observed: sum and bucket).
    Gathered here, a counter is written once per iteration and label set, and the histogram
    values are observed in one pass: 125.5 → 120.9 µs per request in process (bench/README.md).
    Nothing waits longer than the iteration: the updates are applied at the loop's next turn,
    before it handles any I/O that arrived after them.

    Bound to the serving loop for the app's lifespan (app.py); unbound, or from another thread,
    an update is applied at once."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0                 # the bound loop's thread; 0: not bound
        self._counts: dict[Any, int] = {}
        self._observed: list[tuple[Any, float]] = []
        self._scheduled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flush()
        self._loop, self._thread = loop, threading.get_ident()

    def unbind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            self.flush()
            self._loop, self._thread = None, 0

    def inc(self, counter: Any) -> None:
        """`counter.inc()` (a labelled child, see child())."""
        if threading.get_ident() != self._thread:
            counter.inc()
            return
        self._counts[counter] = self._counts.get(counter, 0) + 1
        if not self._scheduled:
            self._schedule()

    def observe(self, histogram: Any, value: float) -> None:
        """`histogram.observe(value)`."""
        if threading.get_ident() != self._thread:
            histogram.observe(value)
            return
        self._observed.append((histogram, value))
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        assert self._loop is not None
        self._scheduled = True
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, []
        for counter, count in counts.items():
            counter.inc(count)
        for histogram, value in observed:
            histogram.observe(value)


PER_ITERATION = PerIteration()


def exposition() -> tuple[bytes, str]:
    """The text format for GET /metrics: every live and dead worker's values when multiprocess."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """The supervisor calls this for a dead worker: its live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def set_bundle(bundle_hash: str, generation: int, previous: tuple[str, int] | None) -> None:
    if previous is not None:
        BUNDLE.labels(previous[0], str(previous[1])).set(0)
    BUNDLE.labels(bundle_hash, str(generation)).set(1)


def count_versions(role: str, engine: Any) -> None:
    """How many versions of a newly built engine were built and how many reused (engine/api.py)."""
    built, reused = len(getattr(engine, "built_versions", ())), len(getattr(engine, "reused_versions", ()))
    if built:
        RELOAD_VERSIONS.labels(role, "built").inc(built)
    if reused:
        RELOAD_VERSIONS.labels(role, "reused").inc(reused)
