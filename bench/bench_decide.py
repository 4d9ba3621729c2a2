"""Full decisions in process: durable_rules vs the plain-Python evaluator, side by side, one run.

    .venv/bin/python bench/bench_decide.py [--tickets 2000] [--rounds 5] [--version 2024-05-31] [--actor merchant]

A "full decision" is `Engine.decide(ticket, actor, at, version)` exactly as a service calls it:
ticket validation, facts, the gate stage through the evaluator, denials/constraints/deadlines and
rendered messages. The two paths differ only in the evaluator (`CompiledPolicy.fired` on the
durable_rules C engine vs `fired_plain`, the generated Python predicates), so the gap between them
is the price of the engine. The tickets are a fixed synthetic corpus (engine.corpus, seed 1), each
decided at one hour after the latest time it records. Targets (issue 3) for the durable path on a
merchant decision: p50 ≤ 100 µs, p99 ≤ 400 µs.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.api import Engine  # noqa: E402
from engine.history.corpus import Vocabulary, generate, latest_time  # noqa: E402
from engine.core.timeutil import parse_aware  # noqa: E402
from datetime import timedelta  # noqa: E402


class PlainEvaluator:
    """The same compiled policy, answering `fired` with the plain evaluator (for the floor)."""

    def __init__(self, compiled) -> None:
        self._compiled = compiled
        self.rules = compiled.rules

    def fired(self, stage, facts):
        return self._compiled.fired_plain(stage, facts)

    def __getattr__(self, name):
        return getattr(self._compiled, name)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run_path(engine: Engine, items, rounds: int) -> list[float]:
    clock = time.perf_counter_ns
    samples: list[float] = []
    decide = engine.decide
    for _ in range(rounds):
        for ticket, actor, at, version in items:
            t0 = clock()
            decide(ticket, actor, at, version)
            samples.append((clock() - t0) / 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default=None, help="rules directory (default: the bundled rules/)")
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--version", default="2024-05-31", help="pin this version for every decision")
    ap.add_argument("--actor", default="merchant", choices=("merchant", "buyer"))
    args = ap.parse_args(argv)

    engine = Engine.from_directory(args.rules)
    vocab = Vocabulary.from_document(engine.document(args.version))
    items = []
    for ticket in generate(args.tickets, seed=1, vocab=vocab):
        at = parse_aware(latest_time(ticket)) + timedelta(hours=1)
        items.append((ticket, args.actor, at, args.version))

    durable = engine
    plain = Engine(engine.bundle)
    plain._compiled = {v: PlainEvaluator(c) for v, c in plain._compiled.items()}

    # Same answers first: a benchmark of two paths that disagree would measure nothing.
    for ticket, actor, at, version in items[:200]:
        assert durable.decide(ticket, actor, at, version) == plain.decide(ticket, actor, at, version), ticket["ticket_id"]

    print(f"policy {args.version}, {args.tickets} synthetic tickets × {args.rounds} rounds, actor {args.actor}, "
          f"Python {sys.version.split()[0]}")
    print(f"{'path':10s} {'decisions/s':>12s} {'p50 µs':>8s} {'p90 µs':>8s} {'p99 µs':>8s} {'max µs':>9s}")
    for label, eng in (("durable", durable), ("plain", plain)):
        run_path(eng, items[:500], 1)  # warm-up
        gc.collect()
        wall = time.perf_counter()
        samples = run_path(eng, items, args.rounds)
        wall = time.perf_counter() - wall
        ordered = sorted(samples)
        print(f"{label:10s} {len(samples) / wall:12,.0f} {statistics.median(ordered):8.1f} "
              f"{percentile(ordered, 0.90):8.1f} {percentile(ordered, 0.99):8.1f} {ordered[-1]:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
