"""`aftersale apply`: the buyer accepts or rejects the pending proposal, or lets it time out."""
from __future__ import annotations

from typing import Any

import argparse

from engine.cli.output import emit_json
from engine.cli.ticket_input import add_common_arguments, load_engine, load_ticket, parse_at, present
from engine.questions import Question, ask


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "apply", help="the outcome of the buyer's answer to a proposal (or of its timeout)",
        description="Print {answer, allowed, violations, status, effects, deadlines, rule, section, policy, "
                    "trace}. Exit 0 when the answer is allowed, 1 when it is not (or the input is malformed).")
    add_common_arguments(parser)
    parser.add_argument("--answer", required=True, choices=("accept", "reject", "timeout"))
    parser.add_argument("--reason", metavar="TEXT",
                        help="the buyer's rejection reason (三-3.2.1: a rejection needs one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    at = parse_at(args)
    engine = load_engine(args)
    ticket = load_ticket(args, engine)
    result = ask(engine, Question.apply(ticket, args.answer, at, args.policy_version, args.reason))
    emit_json(present(args, result))
    return 0 if result["allowed"] else 1
