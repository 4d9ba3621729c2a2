"""`aftersale`: one sub-command per module in engine/cli/, each exposing `register(subparsers)`.

A command module's `register` adds its parser and sets `func=run`; `run(args) -> int` returns the
exit code. Errors the engine raises on purpose are printed as messages (exit 1); argparse usage
errors exit 2. No traceback reaches the user for bad input.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from engine.core.errors import EngineError

# Each name is a module engine/cli/<name>.py. Listed here, not discovered, so that a missing or
# broken command is an import error in the tests rather than a silently absent command.
COMMANDS = [
    "validate", "decide", "check", "apply", "test", "versions", "diff", "changelog",
    "impact", "corpus", "serve",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aftersale",
        description="Declarative after-sales negotiation policy: validate, decide, diff, serve.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"aftersale {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
