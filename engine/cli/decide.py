"""`aftersale decide`: what may the merchant (or the buyer) do on a ticket now, and why."""
from __future__ import annotations

from typing import Any

import argparse

from engine.cli.output import emit_json
from engine.cli.ticket_input import add_common_arguments, load_engine, load_ticket, parse_at, present
from engine.questions import Question, ask


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "decide", help="which actions are allowed on a ticket, with reasons and limits",
        description="Print the decision (docs/design.md, \"The decision\") for one actor: every action "
                    "allowed or denied with the rule and guide section, negotiation constraints, deadlines.")
    add_common_arguments(parser)
    parser.add_argument("--actor", required=True, choices=("merchant", "buyer"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    at = parse_at(args)
    engine = load_engine(args)
    ticket = load_ticket(args, engine)
    emit_json(present(args, ask(engine, Question.decide(ticket, args.actor, at, args.policy_version))))
    return 0
