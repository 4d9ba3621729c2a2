"""Options shared by `decide`, `check` and `apply`: the rules directory, the ticket (our own
shape, or a WeChat after-sale order plus context), `--at` and `--version`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import argparse
from datetime import datetime

from engine.cli.output import read_json_arg
from engine.core.errors import InputError
from engine.core.problems import Problem

if TYPE_CHECKING:
    from engine.api import Engine


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticket", required=True, metavar="FILE",
                        help="ticket JSON (schemas/ticket.schema.json), or `-` for stdin")
    parser.add_argument("--input", choices=("ticket", "wechat"), default="ticket",
                        help="`wechat`: FILE holds {\"order\": <getaftersaleorder payload>, \"context\": {...}} "
                             "(see docs/wechat.md)")
    parser.add_argument("--at", metavar="TIME",
                        help="when the question is asked, ISO 8601 with an offset (default: now)")
    parser.add_argument("--version", metavar="V", dest="policy_version",
                        help="policy version to use (default: the one in force at --at)")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")


def load_engine(args: argparse.Namespace) -> Engine:
    from engine.api import Engine

    return Engine.from_directory(args.rules)


def parse_at(args: argparse.Namespace) -> datetime | None:
    """`--at` as an aware datetime (None: the engine reads the clock); a naive time is refused."""
    if args.at is None:
        return None
    from engine.core.jsonschema_errors import TIME_MESSAGES, time_problem

    value = time_problem(args.at)
    if isinstance(value, datetime):
        return value
    message = TIME_MESSAGES[value].format(field="--at", text=args.at)
    raise InputError([Problem(value, message)], "invalid --at")


def load_ticket(args: argparse.Namespace, engine: Engine) -> dict[str, Any]:
    data = read_json_arg(args.ticket, "ticket")
    if args.input == "ticket":
        ticket: dict[str, Any] = data  # the engine validates it
        return ticket
    from engine.cli.wechat_input import platform_ticket_from_document

    args.platform_warnings = []  # read but not understood (docs/wechat.md); `present` reports them
    return platform_ticket_from_document(data, policy=engine, warnings=args.platform_warnings)


def present(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """Asked in the platform's terms, answer in them too: add its errcodes beside ours."""
    if args.input != "wechat":
        return result
    from engine.wechat import platform_view

    return platform_view(result, getattr(args, "platform_warnings", None))
