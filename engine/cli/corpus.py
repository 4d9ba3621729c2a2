"""`aftersale corpus`: write N deterministic synthetic tickets (JSON lines) for `impact`."""
from __future__ import annotations

import argparse
import json
import sys

from engine.history.corpus import DEFAULT_END, DEFAULT_START, Vocabulary, generate
from engine.core.errors import InputError
from engine.history.versions import load_versions, resolve
from engine.core.timeutil import iso, parse_aware


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "corpus", help="generate synthetic tickets for impact",
        description="Write COUNT synthetic tickets, one JSON object per line. The same count, seed, "
                    "version and window always give the same file.")
    parser.add_argument("--count", type=int, required=True, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl", help="`-` for stdout")
    parser.add_argument("--version", dest="vocab_version", metavar="V",
                        help="policy version whose scenarios, categories and reasons tickets use "
                             "(default: the newest)")
    parser.add_argument("--from-time", default=iso(DEFAULT_START), metavar="T",
                        help=f"earliest created_at (default {iso(DEFAULT_START)})")
    parser.add_argument("--to-time", default=iso(DEFAULT_END), metavar="T",
                        help=f"latest created_at (default {iso(DEFAULT_END)})")
    parser.add_argument("--rules", metavar="DIR", help="rules directory (default: the bundled rules/)")
    parser.set_defaults(func=run)


def _time(text: str, option: str):
    try:
        return parse_aware(text)
    except ValueError as exc:
        raise InputError([{"path": option, "code": "bad_time", "message": str(exc)}], f"invalid {option}") from None


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise InputError([{"path": "--count", "code": "invalid_count", "message": "--count must be at least 1"}],
                         "invalid --count")
    start, end = _time(args.from_time, "--from-time"), _time(args.to_time, "--to-time")
    if end <= start:
        raise InputError([{"path": "--to-time", "code": "empty_window",
                           "message": "--to-time must be later than --from-time"}], "invalid window")
    document = resolve(args.vocab_version, args.rules) if args.vocab_version else load_versions(args.rules)[-1]
    vocab = Vocabulary.from_document(document.data)
    try:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    except OSError as exc:
        raise InputError([{"path": "--out", "code": "unwritable",
                           "message": f"cannot write `{args.out}`: {exc.strerror or exc}"}], "cannot write corpus") from None
    try:
        for ticket in generate(args.count, args.seed, vocab, start, end):
            out.write(json.dumps(ticket, ensure_ascii=False, separators=(",", ":")) + "\n")
    finally:
        if out is sys.stdout:
            out.flush()
        else:
            out.close()
    if args.out != "-":
        print(f"wrote {args.count} tickets to {args.out} (seed {args.seed}, vocabulary {document.version})",
              file=sys.stderr)
    return 0

