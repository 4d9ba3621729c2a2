"""`aftersale changelog`: every version's declared changes as the guide's table, each traced to
the computed changes behind it."""
from __future__ import annotations

from typing import Any

import argparse
import sys

from engine.history import changelog
from engine.cli.output import emit_json
from engine.history.versions import load_versions


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "changelog", help="the changelog generated from the policy files",
        description="Render every version's declared changes (调整时间 / 调整内容 / 备注), each "
                    "traced to the computed changes (id paths) its `touches` cover.")
    parser.add_argument("--format", choices=("markdown", "json", "text"), default="markdown")
    parser.add_argument("--order", choices=("newest", "oldest"), default="oldest",
                        help="oldest first (the guide's order, default) or newest first")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    entries = changelog.ordered(changelog.build_changelog(load_versions(args.rules)), args.order)
    if args.format == "json":
        emit_json(changelog.to_json(entries))
    elif args.format == "text":
        sys.stdout.write(changelog.to_text(entries))
    else:
        sys.stdout.write(changelog.to_markdown(entries))
    return 0
