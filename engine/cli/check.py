"""`aftersale check`: would this action with this payload be accepted? Exit 1 when it would not."""
from __future__ import annotations

from typing import Any

import argparse

from engine.cli.output import emit_json, read_json_arg
from engine.cli.ticket_input import add_common_arguments, load_engine, load_ticket, parse_at, present
from engine.core.errors import InputError
from engine.core.problems import Problem
from engine.questions import Question, ask


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check", help="check one action and its payload against the policy",
        description="Print {action, actor, valid, violations, policy, trace}. Exit 0 when valid, 1 when "
                    "the policy forbids it (or the input is malformed). With --input wechat and no "
                    "--action, the payload is the body of a merchantupdateaftersale, acceptapply or "
                    "rejectapply call (--endpoint, or the body's keys, say which).")
    add_common_arguments(parser)
    parser.add_argument("--action", metavar="NAME",
                        help="negotiate, modify_negotiation, reject, reject_negotiation, ... (docs/design.md)")
    parser.add_argument("--payload", metavar="FILE", help="payload JSON, or `-` for stdin (default: {})")
    parser.add_argument("--endpoint", choices=("merchantupdateaftersale", "acceptapply", "rejectapply"),
                        help="with --input wechat and no --action: the platform call --payload is the body of "
                             "(default: the one the body's keys name, else merchantupdateaftersale)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    at = parse_at(args)
    engine = load_engine(args)
    ticket = load_ticket(args, engine)
    payload = read_json_arg(args.payload, "payload") if args.payload else {}
    action = args.action
    if action is None:
        if args.input != "wechat" or not args.payload:
            raise InputError([Problem("missing_argument", "--action is required (except with --input wechat "
                                                          "and a platform request body as --payload)")],
                             "missing --action")
        from engine.core.timeutil import now
        from engine.wechat import request_from_platform

        at = at or now()  # the body's action and its check are judged at one moment
        action, payload = request_from_platform(payload, ticket, engine, at=at, version=args.policy_version,
                                                endpoint=args.endpoint)
    result = ask(engine, Question.check(ticket, action, payload, at, args.policy_version))
    emit_json(present(args, result))
    return 0 if result["valid"] else 1
