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
    parser.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", dest="max_body",
                        help="largest request body accepted (default 1 MiB; larger: 413)")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often to look for changed rules (default 1; 0: only SIGHUP / admin)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.api import Engine
    from engine.core.resources import default_rules_dir
    from engine.service.errors import configure_logging
    from engine.service.meta import SUPERVISOR_PID_ENV
    from engine.service.settings import ServiceSettings
    from engine.service.supervisor import Supervisor, bind_sockets

    if args.workers < 1:
        print("aftersale serve: --workers must be at least 1", file=sys.stderr)
        return 2
    rules_dir = Path(args.rules) if args.rules else default_rules_dir()
    engine = Engine.from_directory(rules_dir)  # PolicyError: main() prints every diagnostic, exit 1
    settings = ServiceSettings(rules_dir=rules_dir.resolve(), decision_log=args.decision_log,
                               max_body_bytes=args.max_body, poll_interval=args.poll)
    try:
        sockets = bind_sockets(args.host, args.port, args.workers)
    except OSError as exc:
        print(f"aftersale serve: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    port = sockets[0].getsockname()[1]
    print(f"aftersale serve: listening on http://{args.host}:{port} (workers {args.workers}, pid {os.getpid()}, "
          f"rules {rules_dir}, bundle {engine.bundle_hash[:12]})", file=sys.stderr, flush=True)
    print(try_it(args.host, port), flush=True)

    common = dict(lifespan="on", log_level=args.log_level, access_log=False, timeout_graceful_shutdown=5)
    if args.workers == 1:
        from engine.service.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine=engine), **common))
        server.run(sockets=sockets)
        return 0 if server.started else 1

    configure_logging()
    engine.close()  # the workers are fresh processes (spawn) that load their own
    os.environ.update(settings.to_env())
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    return Supervisor(dict(app="engine.service.app:app_from_environment", factory=True, **common), sockets).run()


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

