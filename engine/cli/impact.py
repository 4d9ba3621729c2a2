"""`aftersale impact --from A --to B --tickets PATH...`: how many decisions a version change moves,
per actor and action, attributed to the declared changes, replayed on Dask (a LocalCluster of this
machine's cores, or `--scheduler tcp://HOST:8786`)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from engine.cli.impact_report import problem_location, to_json, to_markdown, to_text
from engine.cli.output import emit_json
from engine.core.errors import InputError, UnknownVersionError
from engine.core.problems import Problem
from engine.core.resources import default_rules_dir
from engine.core.timeutil import iso, parse_aware
from engine.history.attribution import declared_between
from engine.history.dask_run import EnginePlugin, Interrupted, Reading, dask_client, policy_files, run_impact, scheduler_address
from engine.history.differences import DifferenceWriter
from engine.history.impact import ACTORS, Job, PartResult
from engine.history.ticket_sources import count_rows, discover, fingerprints, partitions
from engine.policy.bundle import load_directory

SHOWN_PROBLEMS = 20
PARTITION = 1000  # tickets per task: ~0.5-1 s of work, far above Dask's ~1 ms per-task overhead


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "impact", help="replay tickets under two versions and count the changes (on Dask)",
        description="Decide every ticket under both versions (pinned, same `at`) and count, per actor and "
                    "action, decisions that changed, each attributed to the declared change explaining it. "
                    "Runs on a Dask LocalCluster of this machine's cores, or on an existing cluster.")
    parser.add_argument("--from", dest="old", required=True, metavar="A")
    parser.add_argument("--to", dest="new", required=True, metavar="B")
    parser.add_argument("--tickets", required=True, nargs="+", action="extend", metavar="PATH",
                        help="JSONL or Parquet files, globs or directories")
    parser.add_argument("--at", metavar="T", help="decide every ticket at T (default: each ticket's "
                                                  "latest event + 1 hour)")
    parser.add_argument("--actor", choices=("merchant", "buyer", "both"), default="both")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--out", metavar="DIR", help="write per-ticket differences as partitioned Parquet to "
                                                     "DIR (a new directory)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on this Dask scheduler (tcp://HOST:8786; default $DASK_SCHEDULER_ADDRESS, "
                             "else a LocalCluster)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="LocalCluster worker processes (default: this machine's cores)")
    parser.add_argument("--partition-size", type=int, default=PARTITION, metavar="N",
                        help=f"tickets per task (default {PARTITION})")
    parser.add_argument("--ship-tickets", action="store_true",
                        help="the client reads and ships every partition even when the workers could read the "
                             "files themselves (default: they do when every worker sees the same files)")
    parser.add_argument("--progress", action="store_true", help="progress on stderr even when not a terminal")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def _positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise InputError([Problem("invalid", f"{option} must be at least 1", option)],
                         f"invalid {option}")


def _progress(enabled: bool, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="ticket", unit_scale=True, desc="impact", file=sys.stderr, disable=not enabled,
                smoothing=0.1)


def run(args: argparse.Namespace) -> int:
    _positive(args.workers, "--workers")
    _positive(args.partition_size, "--partition-size")
    at = None
    if args.at:
        try:
            at = iso(parse_aware(args.at))
        except ValueError as exc:
            raise InputError([Problem("bad_time", str(exc), "--at")], "invalid --at") from None
    rules_dir = Path(args.rules) if args.rules else default_rules_dir()
    bundle = load_directory(rules_dir)  # fails here, on the client, with every diagnostic
    for name in (args.old, args.new):
        if name not in bundle.versions:
            raise UnknownVersionError(name, bundle.versions)
    sources = discover(args.tickets)
    total = count_rows(sources)  # fails early on an unreadable file or an empty corpus
    documents = [(d.version, d.data) for d in bundle.documents]
    job = Job(args.old, args.new, ACTORS if args.actor == "both" else (args.actor,), at,
              declared_between(documents, args.old, args.new), bundle.content_hash, keep_differences=bool(args.out))
    writer = DifferenceWriter(args.out) if args.out else None
    plugin = EnginePlugin(policy_files(rules_dir), bundle.content_hash)
    address = scheduler_address(args.scheduler)
    bar = _progress(args.progress or sys.stderr.isatty(), total)

    def on_part(result: PartResult) -> None:
        bar.update(result.tally.lines)
        if writer is not None:
            writer.add(result.differences)

    started = time.monotonic()
    try:
        with dask_client(address, args.workers) as client:
            workers = len(client.scheduler_info().get("workers", {}))
            cluster = f"{address} ({workers} workers)" if address else f"LocalCluster ({workers} workers)"
            reading = Reading()
            tally = run_impact(client, job, lambda ship: partitions(sources, args.partition_size, ship), plugin,
                               total, on_part, files=None if args.ship_tickets else fingerprints(sources),
                               reading=reading)
            cluster += ", tickets read by the workers" if reading.by_workers else ", tickets shipped by the client"
    except BaseException as exc:
        bar.close()
        if writer is not None:
            writer.abandon()
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            print(f"aftersale impact: {exc if isinstance(exc, Interrupted) else 'interrupted'}", file=sys.stderr)
            return 130
        raise
    bar.close()
    seconds = time.monotonic() - started
    report = to_json(job, sources, tally, seconds, cluster)
    _show_problems(report, tally.problems)
    if writer is not None:
        writer.finish(report)
        print(f"wrote {writer.rows} differences to {args.out} ({writer.size_bytes():,} bytes of Parquet)",
              file=sys.stderr)
    if args.format == "json":
        emit_json(report)
    else:
        sys.stdout.write(to_markdown(report) if args.format == "markdown" else to_text(report))
    if tally.tickets == 0:
        print("aftersale impact: no valid ticket in the corpus", file=sys.stderr)
        return 1
    return 0


def _show_problems(report: dict[str, Any], problems: list[dict[str, Any]]) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"{problem_location(problem)}: {problem['field']}: {problem['message']}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"... {len(problems) - SHOWN_PROBLEMS} more problems", file=sys.stderr)
    if report["bad_lines"]:
        print(f"skipped {report['bad_lines']} bad line(s) or row(s) of {report['lines']}", file=sys.stderr)
