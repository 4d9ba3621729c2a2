"""`aftersale corpus`: write N deterministic synthetic tickets for `impact`, as JSON lines or a
partitioned Parquet directory, made in parallel on Dask (the same cluster options as `impact`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import argparse
import sys
from functools import partial

from engine.core.errors import InputError
from engine.core.problems import Problem
from engine.core.timeutil import iso, parse_aware
from engine.history.corpus import DEFAULT_END, DEFAULT_START, Vocabulary
from engine.history.corpus_out import JsonlSink, ParquetSink, corpus_slice, slices
from engine.history.dask_run import dask_client, run_tasks, scheduler_address
from engine.history.versions import load_versions, resolve

SLICE = 50_000  # tickets per task (~1.5 s of work)
IN_PROCESS_BELOW = 20_000  # a small corpus is made here: starting a cluster would cost more


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "corpus", help="generate synthetic tickets for impact",
        description="Write COUNT synthetic tickets, one JSON object per line (FILE.jsonl, `-` for stdout) or "
                    "as Parquet files in a directory (--format parquet). The same count, seed, version and "
                    "window always give the same tickets, however many workers made them.")
    parser.add_argument("--count", type=int, required=True, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--out", required=True, metavar="PATH", help="FILE.jsonl, `-` for stdout, or a "
                                                                     "directory for --format parquet")
    parser.add_argument("--format", choices=("jsonl", "parquet"),
                        help="default: parquet when --out ends in .parquet or is a directory, else jsonl")
    parser.add_argument("--version", dest="vocab_version", metavar="V",
                        help="policy version whose scenarios, categories and reasons tickets use "
                             "(default: the newest)")
    parser.add_argument("--from-time", default=iso(DEFAULT_START), metavar="T",
                        help=f"earliest created_at (default {iso(DEFAULT_START)})")
    parser.add_argument("--to-time", default=iso(DEFAULT_END), metavar="T",
                        help=f"latest created_at (default {iso(DEFAULT_END)})")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default $DASK_SCHEDULER_ADDRESS, "
                                                               "else a LocalCluster when the corpus is large)")
    parser.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers (default: cores)")
    parser.add_argument("--slice", type=int, default=SLICE, metavar="N", help=f"tickets per task/file (default {SLICE})")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def _time(text: str, option: str) -> datetime:
    try:
        return parse_aware(text)
    except ValueError as exc:
        raise InputError([Problem("bad_time", str(exc), option)], f"invalid {option}") from None


def _invalid(option: str, code: str, message: str) -> InputError:
    return InputError([Problem(code, message, option)], f"invalid {option}")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    from pathlib import Path

    out = Path(args.out)
    return "parquet" if args.out != "-" and (out.suffix == ".parquet" or out.is_dir()) else "jsonl"


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise _invalid("--count", "invalid_count", "--count must be at least 1")
    if args.slice < 1 or (args.workers is not None and args.workers < 1):
        raise _invalid("--slice", "invalid", "--slice and --workers must be at least 1")
    start, end = _time(args.from_time, "--from-time"), _time(args.to_time, "--to-time")
    if end <= start:
        raise _invalid("--to-time", "empty_window", "--to-time must be later than --from-time")
    document = resolve(args.vocab_version, args.rules) if args.vocab_version else load_versions(args.rules)[-1]
    vocab = Vocabulary.from_document(document.data)
    fmt = _format(args)
    if fmt == "parquet" and args.out == "-":
        raise _invalid("--out", "invalid", "Parquet needs a directory, not stdout")
    make = partial(corpus_slice, seed=args.seed, vocab=vocab, start=start, end=end, fmt=fmt)
    try:
        if fmt == "parquet":
            _write_parquet(args, make)
        else:
            _write_jsonl(args, make)
    except OSError as exc:
        raise InputError([Problem("unwritable", f"cannot write `{args.out}`: {exc.strerror or exc}", "--out")], "cannot write corpus") from None
    if args.out != "-":
        print(f"wrote {args.count} tickets to {args.out} ({fmt}, seed {args.seed}, vocabulary {document.version})",
              file=sys.stderr)
    return 0


def _on_cluster(args: argparse.Namespace) -> bool:
    return bool(scheduler_address(args.scheduler)) or args.count >= IN_PROCESS_BELOW


def _produce(args: argparse.Namespace, make: Any, sink: Any) -> None:
    parts = slices(args.count, args.slice)
    if not _on_cluster(args):
        for first, count in parts:
            sink(make(first, count))
        return
    with dask_client(args.scheduler, args.workers) as client:
        run_tasks(client, make, parts, sink)


def _write_jsonl(args: argparse.Namespace, make: Any) -> None:
    out: Any = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    try:
        _produce(args, make, JsonlSink(out))
    finally:
        if args.out == "-":
            out.flush()
        else:
            out.close()


def _write_parquet(args: argparse.Namespace, make: Any) -> None:
    from pathlib import Path

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _invalid("--out", "output_exists", f"`{args.out}` exists and is not an empty directory: choose a new one")
    sink = ParquetSink(args.out)
    try:
        _produce(args, make, sink)
    except BaseException:
        sink.abandon()
        raise
    sink.finish()

