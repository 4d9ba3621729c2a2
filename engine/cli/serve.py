"""`aftersale serve`: the HTTP decision service (Starlette on uvicorn).

The rules are validated here first, so a broken bundle is reported with its diagnostics and exit
1 before any socket is opened. With --workers N > 1, N processes share one listening socket, each
with its own engine; SIGHUP to this process reloads the rules in every worker.
"""
from __future__ import annotations

from typing import Any

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the HTTP decision service",
        description="Serve /v1/decide, /v1/check, /v1/apply, versions, diff and changelog over HTTP, "
                    "with hot reload of the rules directory (SIGHUP, file change, POST /admin/reload).")
    parser.add_argument("--rules", metavar="DIR", help="policy directory (default: the bundled rules/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument("--decision-log", metavar="FILE|-", dest="decision_log",
                        help="append one JSON line per decision to FILE (or stdout: -); default off")
    parser.add_argument("--decision-log-mode", choices=("required", "best-effort"), default="required",
                        dest="decision_log_mode",
                        help="required: answer a decision only once its line is on disk, 503 if it cannot be "
                             "written (default); best-effort: answer anyway, count every dropped line")
    parser.add_argument("--decision-log-rotate-size", type=int, default=0, metavar="BYTES", dest="log_rotate_bytes",
                        help="start a new decision log file past this size (default 0: never)")
    parser.add_argument("--decision-log-rotate-every", type=float, default=0.0, metavar="SECONDS",
                        dest="log_rotate_seconds",
                        help="start a new decision log file at each such period of the clock, e.g. 3600 "
                             "(default 0: never)")
    parser.add_argument("--decision-log-mask", default="", metavar="FIELD,...", dest="log_mask",
                        help="write these fields of each line as sha256:<16 hex> (e.g. ticket_id,actor)")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time allowed to send a whole request, head and body (default 10; then 408)")
    parser.add_argument("--max-connections", type=int, default=0, metavar="N",
                        help="open connections per worker (default 0: the open-file limit minus 64); past it "
                             "idle connections are shed, and if none is idle the request gets 503 + Retry-After")
    parser.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", dest="max_body",
                        help="largest request body accepted (default 1 MiB; larger: 413)")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often to look for changed rules (default 1; 0: only SIGHUP / admin)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


ADMIN_TOKEN_ENV = "AFTERSALE_SERVE_ADMIN_TOKEN"
EXIT_UNUSABLE_LOG = 3       # the decision log cannot be written: fail the start, never a restart loop


def run(args: argparse.Namespace) -> int:
    import tempfile

    # prometheus-client picks its multiprocess storage when first imported: set the directory
    # before anything imports it, here and (inherited) in every worker
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="aftersale-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _run(args)
    finally:
        if metrics_dir:
            import shutil
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.api import Engine
    from engine.core.resources import default_rules_dir
    from engine.service.connections import raise_open_file_limit
    from engine.service.errors import configure_logging
    from engine.service.log_file import LogFileError, check_writable
    from engine.service.settings import ServiceSettings
    from engine.service.supervisor import Supervisor, bind_sockets, uvicorn_options

    if args.workers < 1:
        print("aftersale serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.decision_log:
        try:
            check_writable(args.decision_log)  # also repairs a torn last line left by a crash
        except LogFileError as exc:
            print(f"aftersale serve: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE_LOG
    soft, hard = raise_open_file_limit()  # inherited by the workers
    rules_dir = Path(args.rules) if args.rules else default_rules_dir()
    engine = Engine.from_directory(rules_dir)  # PolicyError: main() prints every diagnostic, exit 1
    settings = ServiceSettings(rules_dir=rules_dir.resolve(), decision_log=args.decision_log,
                               max_body_bytes=args.max_body, poll_interval=args.poll,
                               admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
                               decision_log_mode=args.decision_log_mode,
                               decision_log_rotate_bytes=args.log_rotate_bytes,
                               decision_log_rotate_seconds=args.log_rotate_seconds,
                               decision_log_mask=args.log_mask,
                               request_timeout=args.request_timeout, max_connections=args.max_connections)
    try:
        sockets = bind_sockets(args.host, args.port, args.workers)
    except OSError as exc:
        print(f"aftersale serve: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    port = sockets[0].getsockname()[1]
    print(f"aftersale serve: listening on http://{args.host}:{port} (workers {args.workers}, pid {os.getpid()}, "
          f"rules {rules_dir}, bundle {engine.bundle_hash[:12]}, open files {soft}/{hard})", file=sys.stderr, flush=True)
    if not settings.admin_token:
        print(f"aftersale serve: {ADMIN_TOKEN_ENV} is not set: POST /admin/reload is open to anyone who can "
              "reach the port, and /readyz shows no details", file=sys.stderr, flush=True)
    print(try_it(args.host, port), flush=True)

    common = uvicorn_options(args.log_level)
    if args.workers == 1:
        from engine.service.app import create_app
        from engine.service.connections import configure_guard

        configure_guard(settings)
        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine=engine), **common))
        server.run(sockets=sockets)
        return 0 if server.started else 1

    from dataclasses import replace

    from engine.service.generations import Coordinator

    configure_logging()
    engine.close()  # the workers are fresh processes (spawn) that load their own
    # the supervisor watches the directory and hands each new generation to every worker
    coordinator = Coordinator(settings.rules_dir, settings.poll_interval)
    os.environ.update(replace(settings, poll_interval=0.0).to_env())
    return Supervisor(common, sockets, coordinator).run()


def try_it(host: str, port: int) -> str:
    """A working request against the bundled example, to paste into another terminal."""
    from engine.core.resources import example_path

    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    example = example_path("requests", "decide-merchant.json")
    lines = ["", "Try it (in another terminal):"]
    if example is not None:
        lines.append(f"  curl -s {base}/v1/decide -H 'content-type: application/json' -d @{example}")
    lines += [f"  curl -s {base}/v1/versions", f"  curl -s {base}/openapi.json | head -c 300", ""]
    return "\n".join(lines)

