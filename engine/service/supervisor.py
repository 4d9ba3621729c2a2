"""Several worker processes for `aftersale serve --workers N`.

Why not uvicorn's own supervisor:
- It hands every worker the *same* listening socket; asyncio accepts every pending connection in
  one go, so the first worker to wake takes all of a client's keep-alive connections and keeps
  them (measured: 55 % vs 22 % CPU, p99 56 ms at 32 connections). Here each worker gets its own
  socket on the same port with SO_REUSEPORT, and the kernel spreads connections across them.
- It answers SIGHUP by replacing every worker. Here SIGHUP means "reload the rules": it is passed
  on, and each worker reloads in-process, keeping its last good engine if the new rules are bad.

The parent only supervises: it never imports the engine for serving, holds the sockets (so a
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
from typing import Any

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
    timeout stays uvicorn's (5 s)."""
    from engine.service.connections import GuardedHttpToolsProtocol

    return dict(lifespan="on", log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                http=GuardedHttpToolsProtocol, timeout_keep_alive=5)


def _worker_main(config_kwargs: dict[str, Any], sock: socket.socket) -> None:
    import sys

    import uvicorn

    from engine.service.connections import configure_guard
    from engine.service.settings import ServiceSettings

    configure_guard(ServiceSettings.from_env())
    config = uvicorn.Config(**config_kwargs)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    def __init__(self, config_kwargs: dict[str, Any], sockets: list[socket.socket]) -> None:
        self.config_kwargs = config_kwargs
        self.sockets = sockets
        self.workers: list[Any] = [None] * len(sockets)
        self.pending: list[int] = []
        self.stopping = False
        self.retry_at: dict[int, float] = {}  # worker index → when to try starting it again

    def _start(self, index: int) -> None:
        process = _spawn.Process(target=_worker_main, args=(self.config_kwargs, self.sockets[index]),
                                 name=f"aftersale-worker-{index}", daemon=False)
        process.start()
        self.workers[index] = process
        logger.info("worker %d started (pid %d)", index, process.pid)

    def _on_signal(self, signum: int, frame) -> None:
        self.pending.append(signum)

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        for index in range(len(self.sockets)):
            self._start(index)
        exit_code = 0
        while not self.stopping:
            time.sleep(0.2)
            while self.pending:
                signum = self.pending.pop(0)
                if signum == signal.SIGHUP:
                    self._forward_hup()
                else:
                    self.stopping = True
            if self.stopping:
                break
            exit_code = self._keep_workers_alive()
        self._stop_all()
        return exit_code

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
                # the others keep serving their last good policy; the rules on disk are broken now
                logger.error("worker %d failed to start (do the rules load?); retrying in %.0f s", index, RETRY_SECONDS)
                self.retry_at[index] = now + RETRY_SECONDS
                continue
            logger.warning("worker %d (pid %d) exited with %s; restarting", index, process.pid, process.exitcode)
            self._start(index)
        return 0

    def _forward_hup(self) -> None:
        pids = [p.pid for p in self.workers if p is not None and p.is_alive()]
        logger.warning("SIGHUP: asking %d workers to reload the rules (%s)", len(pids), ", ".join(map(str, pids)))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGHUP)
            except OSError as exc:
                logger.warning("SIGHUP to worker %d failed: %s", pid, exc)

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
