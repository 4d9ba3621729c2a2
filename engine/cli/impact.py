"""`aftersale impact --from A --to B --tickets FILE.jsonl`: how many decisions a version change
moves, per actor and action, with sample ticket ids."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from engine.cli.output import emit_json
from engine.core.errors import InputError
from engine.history.impact import ACTORS, CHUNK, KINDS, Job, Tally, check_versions, count_tickets, run_impact, stderr_progress
from engine.core.timeutil import iso, parse_aware

SHORT = {"allowed_to_denied": "allow→deny", "denied_to_allowed": "deny→allow",
         "denial_codes_changed": "codes", "advice_changed": "advice", "refund_types_changed": "refund types",
         "max_refund_amount_changed": "max amount", "reasons_changed": "reasons",
         "reason_terms_changed": "reason terms"}
SHOWN_PROBLEMS = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "impact", help="replay a ticket corpus under two versions and count the changes",
        description="Decide every ticket under both versions (pinned, same `at`) and count, per "
                    "actor and action, decisions that changed.")
    parser.add_argument("--from", dest="old", required=True, metavar="A")
    parser.add_argument("--to", dest="new", required=True, metavar="B")
    parser.add_argument("--tickets", required=True, metavar="FILE.jsonl")
    parser.add_argument("--at", metavar="T", help="decide every ticket at T (default: each ticket's "
                                                  "latest event + 1 hour)")
    parser.add_argument("--actor", choices=("merchant", "buyer", "both"), default="both")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="processes (default 2)")
    parser.add_argument("--progress", action="store_true", help="progress on stderr even when not a terminal")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InputError([{"path": "--workers", "code": "invalid", "message": "--workers must be at least 1"}],
                         "invalid --workers")
    at = None
    if args.at:
        try:
            at = iso(parse_aware(args.at))
        except ValueError as exc:
            raise InputError([{"path": "--at", "code": "bad_time", "message": str(exc)}], "invalid --at") from None
    check_versions(args.rules, (args.old, args.new))
    total = count_tickets(args.tickets)  # fails early on a missing or empty corpus
    actors = ACTORS if args.actor == "both" else (args.actor,)
    job = Job(args.rules, args.old, args.new, actors, at)
    started = time.monotonic()
    # on a terminal only when the run is long enough to wait for (more than one chunk of work)
    progress = stderr_progress(args.progress or (sys.stderr.isatty() and total > CHUNK))
    tally = run_impact(job, args.tickets, workers=args.workers, progress=progress)
    seconds = time.monotonic() - started
    for problem in tally.problems[:SHOWN_PROBLEMS]:
        print(f"{args.tickets}:{problem['line']}: {problem['field']}: {problem['message']}", file=sys.stderr)
    bad_lines = len({p["line"] for p in tally.problems})
    if len(tally.problems) > SHOWN_PROBLEMS:
        print(f"... {len(tally.problems) - SHOWN_PROBLEMS} more problems", file=sys.stderr)
    if bad_lines:
        print(f"skipped {bad_lines} bad line(s) of {tally.lines}", file=sys.stderr)
    report = to_json(job, args.tickets, tally, seconds, bad_lines)
    if args.format == "json":
        emit_json(report)
    else:
        sys.stdout.write(to_table(report))
    if tally.tickets == 0:
        print(f"aftersale impact: no valid ticket in `{args.tickets}`", file=sys.stderr)
        return 1
    return 0


def to_json(job: Job, source: str, tally: Tally, seconds: float, bad_lines: int) -> dict[str, Any]:
    actors: dict[str, Any] = {}
    for actor in job.actors:
        actions = {}
        for action, kinds in sorted(tally.counts.get(actor, {}).items()):
            samples = tally.samples[actor][action]
            actions[action] = {kind: {"count": kinds[kind], "samples": [t for _, t in samples[kind]]}
                               for kind in KINDS if kind in kinds}
        actors[actor] = actions
    return {"from": job.old, "to": job.new, "tickets_file": source,
            "at": job.at or "each ticket's latest event + 1h",
            "lines": tally.lines, "tickets": tally.tickets, "bad_lines": bad_lines,
            "problems": tally.problems[:100], "undecidable": tally.undecidable,
            "compared": tally.compared, "actors": actors,
            "seconds": round(seconds, 3), "tickets_per_second": round(tally.lines / seconds, 1) if seconds else None}


def to_table(report: dict[str, Any]) -> str:
    lines = [f"impact {report['from']} → {report['to']}: {report['tickets']} tickets "
             f"({report['bad_lines']} bad lines, undecidable under {report['from']}: "
             f"{report['undecidable']['from']}, under {report['to']}: {report['undecidable']['to']}), "
             f"at {report['at']}"]
    header = ["actor", "action"] + [SHORT[k] for k in KINDS] + ["samples"]
    rows = []
    for actor, actions in report["actors"].items():
        for action, kinds in actions.items():
            samples = sorted({s for entry in kinds.values() for s in entry["samples"]})[:3]
            rows.append([actor, action] + [str(kinds[k]["count"]) if k in kinds else "" for k in KINDS]
                        + [", ".join(samples)])
    if not rows:
        lines.append("no decision changed")
        return "\n".join(lines) + "\n"
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        cells = [row[i].ljust(widths[i]) if i < 2 or i == len(row) - 1 else row[i].rjust(widths[i])
                 for i in range(len(row))]
        lines.append("  ".join(cells).rstrip())
    lines.append(f"{report['seconds']} s, {report['tickets_per_second']} tickets/s")
    return "\n".join(lines) + "\n"
