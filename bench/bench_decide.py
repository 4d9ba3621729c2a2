"""Questions in process, in one run: the durable_rules path, the plain evaluator and the floor.

    make bench      (= .venv/bin/python bench/bench_decide.py [--tickets 2000] [--rounds 5] [--version 2024-05-31])

Rows (each a question exactly as a library caller asks it: `Engine.decide(ticket, actor, at, version)`,
ticket validation included):
- merchant decide, durable: the product's path (durable_rules decides which rules fire);
- merchant decide, plain: the same with the plain-Python evaluator in durable's place, so the gap
  is the price of the engine (the plain evaluator is never used to answer requests);
- floor: what no decision can skip: validating the ticket into a Situation, building the facts,
  and the raw evaluation of the merchant's gate ruleset on durable_rules (then its parts alone);
- buyer decide, check (a `negotiate` payload), apply (`accept`, on the tickets with a pending
  proposal), all durable;
- merchant decide alternating between two versions, against the same tickets on one version.

Targets (issue 14), durable path: merchant p50 ≤ 50 µs, p99 ≤ 150 µs; buyer decide, check and
apply p50 ≤ 40 µs; alternating versions ≤ 10 % dearer than one. The tickets are the fixed synthetic
corpus (engine.history.corpus, seed 1), each asked at one hour after the latest time it records.
Figures move with the machine's load (2 shared cores): compare rows of one run, repeat runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.api import Engine  # noqa: E402
from engine.core.timeutil import parse_aware  # noqa: E402
from engine.decisions.facts import situation_facts  # noqa: E402
from engine.decisions.ticket import validate_ticket  # noqa: E402
from engine.history.corpus import Vocabulary, generate, latest_time  # noqa: E402

PAYLOAD = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only", "refund_amount": 100}


class PlainEvaluator:
    """The prepared evaluator's interface answered by the plain evaluator (the bench's floor)."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.rules = compiled.rules
        self.members = {key: compiled.actor_rules(key[len("gate@"):]) for key in compiled.actor_definitions}

    def fired_rules(self, stage: str, facts: Mapping[str, Any]):
        rules = self.rules
        if stage in self.members:  # an actor's or action's gate: the plain gate's rules of it
            ids = self.members[stage]
            return [rules[rule_id] for rule_id in self.compiled._plain["gate"].fired(facts) if rule_id in ids]
        return [rules[rule_id] for rule_id in self.compiled._plain[stage].fired(facts)]

    def close(self) -> None:
        pass


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timed(call: Callable[..., Any], items: list[tuple], rounds: int) -> tuple[list[float], float]:
    clock = time.perf_counter_ns
    samples: list[float] = []
    for args in items[:300]:  # warm-up
        call(*args)
    gc.collect()
    wall = time.perf_counter()
    for _ in range(rounds):
        for args in items:
            t0 = clock()
            call(*args)
            samples.append((clock() - t0) / 1000)
    return samples, time.perf_counter() - wall


def row(label: str, samples: list[float], wall: float) -> float:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    print(f"{label:34s} {len(samples) / wall:10,.0f} {p50:8.1f} {percentile(ordered, 0.90):8.1f} "
          f"{percentile(ordered, 0.99):8.1f} {statistics.fmean(ordered):8.1f}")
    return p50


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rules", default=None, help="rules directory (default: the bundled rules/)")
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--version", default="2024-05-31", help="pin this version for every question")
    ap.add_argument("--other", default="2024-04-22", help="the second version of the alternating row")
    args = ap.parse_args(argv)

    engine = Engine.from_directory(args.rules)
    version = args.version

    def corpus(for_version: str) -> list[tuple[dict, Any]]:
        vocab = Vocabulary.from_document(engine.document(for_version))
        return [(t, parse_aware(latest_time(t)) + timedelta(hours=1))
                for t in generate(args.tickets, seed=1, vocab=vocab)]

    tickets = corpus(version)
    plain = Engine(engine.bundle)
    for v, prepared in plain._prepared.items():
        plain._prepared[v] = dataclasses.replace(prepared, evaluator=PlainEvaluator(prepared.compiled))

    # Same answers first: a benchmark of two paths that disagree would measure nothing.
    for ticket, at in tickets[:300]:
        for actor in ("merchant", "buyer"):
            assert engine.decide(ticket, actor, at, version) == plain.decide(ticket, actor, at, version)

    print(f"policy {version}, {len(tickets)} synthetic tickets × {args.rounds} rounds, Python {sys.version.split()[0]}")
    print(f"{'question (µs per call)':34s} {'calls/s':>10s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'mean':>8s}")
    merchant = [(t, "merchant", at, version) for t, at in tickets]
    results: dict[str, float] = {}
    results["durable"] = row("merchant decide, durable", *timed(engine.decide, merchant, args.rounds))
    results["plain"] = row("merchant decide, plain evaluator", *timed(plain.decide, merchant, args.rounds))

    prepared = engine.prepared(version)
    evaluator = prepared.evaluator

    def floor(ticket: dict, at: Any) -> None:
        situation = engine.situation(ticket, at, version)
        evaluator.fired_rules("gate@merchant", situation_facts(situation, "merchant", "gate"))

    situations = [(engine.situation(t, at, version),) for t, at in tickets]
    facts = [(situation_facts(s, "merchant", "gate"),) for (s,) in situations]
    results["floor"] = row("floor: situation + facts + gate", *timed(floor, tickets, args.rounds))
    row("  ticket validation (schema)", *timed(validate_ticket, [(t,) for t, _ in tickets], args.rounds))
    row("  situation (validation included)", *timed(engine.situation, [(t, at, version) for t, at in tickets],
                                                    args.rounds))
    row("  facts", *timed(lambda s: situation_facts(s, "merchant", "gate"), situations, args.rounds))
    row("  gate@merchant on durable_rules", *timed(lambda f: evaluator.fired_rules("gate@merchant", f), facts,
                                                   args.rounds))
    row("  gate on the plain evaluator", *timed(lambda f: prepared.compiled._plain["gate"].fired(f), facts,
                                                args.rounds))
    row("merchant decide, given a Situation", *timed(lambda s: engine.decide(s, "merchant"), situations,
                                                     args.rounds))

    results["buyer"] = row("buyer decide, durable", *timed(
        engine.decide, [(t, "buyer", at, version) for t, at in tickets], args.rounds))
    results["check"] = row("check negotiate, durable", *timed(
        engine.check, [(t, "negotiate", PAYLOAD, at, version) for t, at in tickets], args.rounds))
    pending = [(t, "accept", at, version) for t, at in tickets if (t.get("negotiation") or {}).get("pending")]
    results["apply"] = row(f"apply accept ({len(pending)} pending), durable", *timed(
        engine.apply, pending, max(args.rounds, 5 * len(tickets) // max(1, len(pending)))))

    # The same questions twice, in two orders: version by version, and alternating question by
    # question (what a service sees when tickets of two eras arrive mixed).
    known = engine.policy(args.other)
    both_ways = [(t, at) for t, at in tickets if t["scenario"] in known.scenarios
                 and t["order"]["category"] in known.categories]
    mixed = [(t, "merchant", at, version if i % 2 else args.other) for i, (t, at) in enumerate(both_ways)]
    grouped = [q for q in mixed if q[3] == args.other] + [q for q in mixed if q[3] == version]
    one = row(f"merchant, version by version ({len(mixed)})", *timed(engine.decide, grouped, args.rounds))
    both = row(f"merchant, alternating {args.other}/{version[5:]}", *timed(engine.decide, mixed, args.rounds))

    print(f"durable / floor: {results['durable'] / results['floor']:.2f}×   durable / plain: "
          f"{results['durable'] / results['plain']:.2f}×   alternating / one version (p50): {both / one - 1:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
