"""`aftersale versions`: the policy versions with their effective windows, marking the one in
force now (or at `--at`) and any future-dated one as scheduled."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from engine.cli.output import emit_json
from engine.core.errors import InputError
from engine.core.problems import Problem
from engine.history.versions import VersionDocument, load_versions
from engine.core.timeutil import iso, now, parse_aware


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "versions", help="list policy versions and which one is in force",
        description="List the policy versions with their effective windows.")
    parser.add_argument("--at", metavar="T", help="ISO 8601 time with offset (default: now)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def parse_at(text: str | None) -> datetime:
    if text is None:
        return now()
    try:
        return parse_aware(text)
    except ValueError as exc:
        raise InputError([Problem("bad_time", str(exc), "--at")],
                         "invalid --at") from None


def version_windows(docs: list[VersionDocument], at: datetime) -> list[dict[str, Any]]:
    out = []
    for index, doc in enumerate(docs):
        start = doc.effective_from
        until = docs[index + 1].effective_from if index + 1 < len(docs) else None
        in_force = start is not None and start <= at and (until is None or at < until)
        out.append({"version": doc.version, "effective_from": iso(start), "effective_until": iso(until),
                    "in_force": in_force, "scheduled": start is not None and start > at,
                    "declared_changes": len(doc.changes), "file": str(doc.path)})
    return out


def run(args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    windows = version_windows(load_versions(args.rules), at)
    current = next((w["version"] for w in windows if w["in_force"]), None)
    if args.format == "json":
        emit_json({"at": iso(at), "in_force": current, "versions": windows})
        return 0
    for w in windows:
        mark = "*" if w["in_force"] else " "
        state = "in force" if w["in_force"] else ("scheduled" if w["scheduled"] else "")
        until = w["effective_until"] or "(open)"
        sys.stdout.write(f"{mark} {w['version']}  {w['effective_from']} → {until}  {state}".rstrip() + "\n")
    if current is None:
        sys.stdout.write(f"no version is in force at {iso(at)}\n")
    return 0
