"""`aftersale diff A B`: what changed between two policy versions (or policy files)."""
from __future__ import annotations

from typing import Any

import argparse
import sys

from engine.policy.diff import render as diffrender
from engine.cli.output import emit_json
from engine.policy.diff.semantic import diff_documents
from engine.history.versions import resolve


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "diff", help="semantic diff of two policy versions",
        description="Compare two policy versions by id (A older, B newer). A and B are version "
                    "names in the rules directory (2024-03-22) or paths to policy files.")
    parser.add_argument("old", metavar="A")
    parser.add_argument("new", metavar="B")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.add_argument("--annotations", action="store_true",
                        help="also list changes to `section`, `illustrative` and `note`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    old, new = resolve(args.old, args.rules), resolve(args.new, args.rules)
    changes = diff_documents(old.data, new.data, include_annotations=args.annotations)
    # a version is named by its version; a file given by path keeps its path (two drafts of one
    # version would otherwise both read `2024-05-31`)
    old_name = old.version if args.old == old.version else args.old
    new_name = new.version if args.new == new.version else args.new
    if args.format == "json":
        emit_json(diffrender.to_json(changes, old_name, new_name))
    elif args.format == "markdown":
        sys.stdout.write(diffrender.to_markdown(changes, old_name, new_name))
    else:
        sys.stdout.write(diffrender.to_text(changes, old_name, new_name))
    return 0
