"""`aftersale diff A B`: what changed between two policy versions (or policy files)."""
from __future__ import annotations

from typing import Any

import argparse
import sys

from engine.core.errors import EngineError

from engine.policy.diff import render as diffrender
from engine.cli.output import emit_json
from engine.policy.diff.semantic import diff_documents
from engine.policy.diff.grouped import spanned_rows
from engine.history.versions import VersionDocument, load_versions, resolve


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "diff", help="semantic diff of two policy versions",
        description="Compare two policy versions by id (A older, B newer). A and B are version "
                    "names in the rules directory (2024-03-22) or paths to policy files.")
    parser.add_argument("old", metavar="A")
    parser.add_argument("new", metavar="B")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="markdown: the semantic change grouped by declared change, to paste as a "
                             "pull request's description")
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
        rows = spanned_rows(_known(args.rules), _start(old), (new.version, _start(new), new.data))
        sys.stdout.write(diffrender.to_markdown(changes, old_name, new_name, rows=rows))
    else:
        sys.stdout.write(diffrender.to_text(changes, old_name, new_name))
    return 0


def _start(doc: VersionDocument) -> float | None:
    return doc.effective_from.timestamp() if doc.effective_from else None


def _known(rules_dir: str | None) -> list[tuple[str, float | None, dict[str, Any]]]:
    """The rules directory's versions (their declared changes explain a comparison that skips
    versions); none when there is no directory (two loose files)."""
    try:
        return [(d.version, _start(d), d.data) for d in load_versions(rules_dir)]
    except EngineError:
        return []
