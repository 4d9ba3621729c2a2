"""`aftersale check`: would this action with this payload be accepted? Exit 1 when it would not."""
from __future__ import annotations

import argparse

from engine.cli.output import emit_json, read_json_arg
from engine.cli.ticket_input import add_common_arguments, load_engine, load_ticket, parse_at, present
from engine.core.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check one action and its payload against the policy",
        description="Print {action, actor, valid, violations, policy, trace}. Exit 0 when valid, 1 when "
                    "the policy forbids it (or the input is malformed). With --input wechat and no "
                    "--action, the payload is a merchantupdateaftersale request body.")
    add_common_arguments(parser)
    parser.add_argument("--action", metavar="NAME",
                        help="negotiate, modify_negotiation, reject, reject_negotiation, ... (docs/design.md)")
    parser.add_argument("--payload", metavar="FILE", help="payload JSON, or `-` for stdin (default: {})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    at = parse_at(args)
    engine = load_engine(args)
    ticket = load_ticket(args, engine)
    payload = read_json_arg(args.payload, "payload") if args.payload else {}
    action = args.action
    if action is None:
        if args.input != "wechat" or not args.payload:
            raise InputError([{"path": "", "code": "missing_argument",
                               "message": "--action is required (except with --input wechat and a "
                                          "merchantupdateaftersale --payload)"}], "missing --action")
        from engine.wechat import proposal_from_platform

        version = args.policy_version or engine.version_at(at)
        action, payload = proposal_from_platform(payload, ticket, engine.policy(version))
    result = engine.check(ticket, action, payload, at=at, version=args.policy_version).to_json()
    emit_json(present(args, result))
    return 0 if result["valid"] else 1
