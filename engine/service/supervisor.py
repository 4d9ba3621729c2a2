"""Several worker processes for `aftersale serve --workers N`.

Why not uvicorn's own supervisor:
- It hands every worker the *same* listening socket; asyncio accepts every pending connection in
  one go, so the first worker to wake takes all of a client's keep-alive connections and keeps
  them (measured: 55 % vs 22 % CPU, p99 56 ms at 32 connections). Here each worker gets its own
  socket on the same port with SO_REUSEPORT, and the kernel spreads connections across them.
- It answers SIGHUP by replacing every worker. Here SIGHUP means "reload the rules": the
  supervisor validates the new bundle once and hands it to every worker, which all switch together
  (generations.py), keeping the generation in force if the new rules are bad.

The parent never serves: it validates bundles (generations.py), holds the sockets (so a
restarted worker takes over its predecessor's socket and no queued connection is lost), restarts
a worker that dies (one that cannot start, because the rules on disk are broken by now, is retried
every few seconds while the others keep serving), and stops all on SIGINT/SIGTERM. Workers are spawned, not forked: each builds
its own durable_rules state from scratch.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when running: engine.service.reload imports the metrics (cli/serve.py sets their directory first)
    from engine.service.reload import TriggerBatch

ReloadRequest = tuple[Connection, int, tuple[str, ...], int]   # pipe, request id, declared removals, generation asked under

logger = logging.getLogger("aftersale.service")

STARTUP_FAILURE = 3          # uvicorn's exit code when the app's startup fails
RETRY_SECONDS = 5.0          # a worker that cannot start while others serve is retried this often
_spawn = multiprocessing.get_context("spawn")
multiprocessing.allow_connection_pickling()  # sockets travel to spawned workers as duplicated fds


def _forget_metrics_of(pid: int) -> None:
    from engine.service import metrics  # PROMETHEUS_MULTIPROC_DIR is set by now (cli/serve.py)

    metrics.worker_exited(pid)


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port (SO_REUSEPORT); port 0 picks a free one for all.
    Raises OSError when the port is taken, also by another SO_REUSEPORT group (a second
    `aftersale serve` on the same port must fail, not silently share the traffic)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def new_socket(reuse_port: bool) -> socket.socket:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
        # without it each response waits ~40 ms (Nagle + delayed ACK) between header and body.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock

    if count > 1:  # probe without SO_REUSEPORT: fails if anyone holds the port; learns port 0's pick
        with new_socket(reuse_port=False) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = new_socket(reuse_port=count > 1)
            sockets.append(sock)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def uvicorn_options(log_level: str) -> dict[str, Any]:
    """What every worker's uvicorn is given. The HTTP protocol is uvicorn's httptools one with a
    request deadline and a connection cap (connections.py says what uvicorn lacks); the keep-alive
    timeout stays uvicorn's (5 s). No proxy-header middleware: it rewrites the client address from
    X-Forwarded-For, and nothing here reads the client address (no access log, none in the
    decision log), so it would only cost every request a pass over its headers."""
    from engine.service.connections import GuardedHttpToolsProtocol

    return dict(lifespan="on", log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                http=GuardedHttpToolsProtocol, timeout_keep_alive=5, proxy_headers=False)


def _worker_main(config_kwargs: dict[str, Any], sock: socket.socket, conn: Connection, generation: int) -> None:
    import sys

    import uvicorn

    from engine.service.app import app_from_environment
    from engine.service.connections import configure_guard
    from engine.service.generations import WorkerLink
    from engine.service.settings import ServiceSettings

    try:
        configure_guard(ServiceSettings.from_env())
        app = app_from_environment()
    except Exception:  # noqa: BLE001 - a worker that cannot even build its app must not be restarted in a loop
        logger.exception("worker: the application could not be built")
        sys.exit(STARTUP_FAILURE)
    link = WorkerLink(conn, generation)

    class LinkedServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            link.attach(app.state.service)  # the app started: its engine holder exists

    server = LinkedServer(uvicorn.Config(app, **config_kwargs))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    def __init__(self, config_kwargs: dict[str, Any], sockets: list[socket.socket], coordinator: Any) -> None:
        self.config_kwargs = config_kwargs
        self.sockets = sockets
        self.coordinator = coordinator            # generations.Coordinator: the bundle every worker serves
        self.workers: list[Any] = [None] * len(sockets)
        self.links: list[Connection | None] = [None] * len(sockets)
        self.pending: list[int] = []
        self.stopping = False
        self.retry_at: dict[int, float] = {}  # worker index → when to try starting it again

    def _start(self, index: int) -> None:
        parent_end, child_end = _spawn.Pipe()
        # a (re)started worker loads the snapshot of the generation in force, not the directory
        os.environ["AFTERSALE_SERVE_RULES_DIR"] = str(self.coordinator.current_dir)
        process = _spawn.Process(target=_worker_main,
                                 args=(self.config_kwargs, self.sockets[index], child_end, self.coordinator.number),
                                 name=f"aftersale-worker-{index}", daemon=False)
        process.start()
        child_end.close()
        link = self.links[index]
        if link is not None:
            link.close()
        self.workers[index], self.links[index] = process, parent_end
        logger.info("worker %d started (pid %d)", index, process.pid)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.pending.append(signum)

    def live_links(self) -> list[Connection]:
        return [link for link, process in zip(self.links, self.workers)
                if link is not None and process is not None and process.is_alive()]

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        for index in range(len(self.sockets)):
            self._start(index)
        from engine.service.reload import TriggerBatch

        exit_code = 0
        try:
            while not self.stopping:
                requests = self._serve_messages(wait(self.live_links(), timeout=0.2))
                batch = TriggerBatch()
                while self.pending:
                    signum = self.pending.pop(0)
                    if signum == signal.SIGHUP:
                        batch.add("SIGHUP")
                    else:
                        self.stopping = True
                if self.stopping:
                    break
                if self.coordinator.poll_due():
                    batch.add("rules directory changed")
                if requests or batch.reasons:
                    self._reload(batch, requests)
                exit_code = self._keep_workers_alive()
        finally:
            self._stop_all()
            self.coordinator.close()
        return exit_code

    def _serve_messages(self, ready: list[Any]) -> list[ReloadRequest]:
        """Everything the workers sent (each pipe drained, and what arrived during the last
        exchange): hellos are answered at once; the reload requests are returned, to be answered
        by one reload together."""
        messages: list[tuple[Connection, Any]] = []
        for conn in ready:
            try:
                while True:
                    messages.append((conn, conn.recv()))
                    if not conn.poll():
                        break
            except (EOFError, OSError):
                continue  # a worker died: _keep_workers_alive restarts it
        requests: list[ReloadRequest] = []
        while messages or self.coordinator.deferred:
            conn, message = messages.pop(0) if messages else self.coordinator.deferred.pop(0)
            if message[0] == "hello":
                self.coordinator.bring_up_to_date(conn, message[1])
            elif message[0] == "reload":
                asked_at = message[3] if len(message) > 3 else self.coordinator.number
                requests.append((conn, message[1], tuple(message[2]), asked_at))
        return requests

    def _reload(self, batch: TriggerBatch, requests: list[ReloadRequest]) -> None:
        """One reload for every trigger gathered since the last: SIGHUP, the poll, and the admin
        requests of every worker (the ones that came while a reload ran wait here together: one
        follow-up covers them all). Each request is answered with the outcome as seen from the
        generation it was asked under (reload.covered)."""
        from engine.service import metrics
        from engine.service.reload import covered

        for reason in batch.reasons:
            metrics.RELOAD_TRIGGERS.labels(reason).inc()
        for _, _, declared, _ in requests:
            metrics.RELOAD_TRIGGERS.labels("POST /admin/reload").inc()
            batch.add("POST /admin/reload", declared)
        outcome = self.coordinator.reload(batch.reason, self.live_links(), tuple(sorted(batch.declared)))
        for conn, request_id, _, asked_at in requests:
            try:
                conn.send(("reload_result", request_id, covered(outcome, asked_at).to_json()))
            except OSError:
                pass

    def _keep_workers_alive(self) -> int:
        now = time.monotonic()
        for index, process in enumerate(self.workers):
            if index in self.retry_at:
                if now >= self.retry_at[index]:
                    del self.retry_at[index]
                    self._start(index)
                continue
            if process.is_alive():
                continue
            process.join()
            _forget_metrics_of(process.pid)
            if process.exitcode == STARTUP_FAILURE:
                if not any(p.is_alive() for p in self.workers):
                    logger.error("worker %d failed to start and no worker is serving; stopping", index)
                    self.stopping = True
                    return 1
                logger.error("worker %d failed to start; retrying in %.0f s", index, RETRY_SECONDS)
                self.retry_at[index] = now + RETRY_SECONDS
                continue
            logger.warning("worker %d (pid %d) exited with %s; restarting", index, process.pid, process.exitcode)
            self._start(index)
        return 0

    def _stop_all(self) -> None:
        for process in self.workers:
            if process is not None and process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests, then exits
        deadline = time.monotonic() + 10
        for process in self.workers:
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
