"""In-process µs per evaluation (p50/p99): durable_rules vs the plain evaluator, one stage
evaluation of a realistic fact dict against a policy version (default rules/2024-05-31.yaml).

    .venv/bin/python bench/bench_engine.py [--policy rules/2024-05-31.yaml] [--n 20000] [--threads 1]

Each figure times one `DurableEvaluator.fired` / `fired_plain` call (validation + evaluation +
de-duplication); a full merchant decision takes one or two gate evaluations plus its own glue.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.rules.compile import compile_policy  # noqa: E402

NOW = 1717400000  # 2024-06-03T07:33:20Z

# a merchant deciding on a return_refund ticket whose parcel is on the way back (ticket → facts by hand,
# the shape engine/facts.py produces)
GATE_FACTS = {
    "ticket_id": "AS-1001", "stage": "gate", "actor": "merchant", "now": NOW,
    "ticket_type": "return_refund", "status": "awaiting_merchant_receipt", "scenario": "quality_issue",
    "scenario_rejection": "guided", "escalates_on_buyer_reject": True, "category": "general",
    "category_allows_return": True, "goods_kind": "physical", "paid_amount": 40000,
    "requested_amount": 40000, "quantity": 1, "order_shipped": True, "negotiations_used": 1,
    "negotiation_tried": True, "last_outcome": "rejected", "has_pending": False,
    "pending_expired": False, "pending_type": "", "pending_refund_type": "", "pending_edits": 0,
    "pending_stage": "", "return_uploaded": True, "return_signed": False,
    "receipt_deadline": NOW + 200000, "receipt_seconds_left": 200000, "receipt_extension_used": False,
    "tracking_fixes_used": 0, "intercept_requested": False, "buyer_evidence_count": 2,
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def time_calls(fn, stage: str, facts: dict, n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn(stage, facts)
        out.append((clock() - t0) / 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(Path(__file__).resolve().parents[1] / "rules" / "2024-05-31.yaml"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="concurrent callers on one policy")
    args = ap.parse_args(argv)

    doc = yaml.safe_load(Path(args.policy).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    compiled = compile_policy(doc).open()
    print(f"policy {compiled.version}: {len(compiled.rules)} rules, compile+create "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")
    fired = compiled.fired("gate", GATE_FACTS)
    assert fired == compiled.fired_plain("gate", GATE_FACTS), "durable and plain disagree"
    print(f"gate fires {len(fired)} rules: {', '.join(fired)}")

    for label, fn in (("durable", compiled.fired), ("plain", compiled.fired_plain)):
        time_calls(fn, "gate", GATE_FACTS, min(2000, args.n))  # warm-up
        samples: list[float] = []
        lock = threading.Lock()

        def worker(fn=fn, lock=lock, samples=samples) -> None:  # bind this path's objects
            mine = time_calls(fn, "gate", GATE_FACTS, args.n // args.threads)
            with lock:
                samples.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall
        p50, p99 = percentiles(samples)
        print(f"{label:8s} p50 {p50:7.1f} µs  p99 {p99:7.1f} µs  mean {statistics.fmean(samples):7.1f} µs  "
              f"({len(samples)} calls, {args.threads} thread(s), {len(samples) / wall:,.0f}/s)")
    bench_decide(doc, compiled, args.n // 4)
    compiled.close()
    return 0


TICKET = {
    "ticket_id": "AS-1001", "type": "return_refund", "status": "awaiting_merchant_receipt",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
    "negotiation": {"count": 1, "last_outcome": "rejected"},
    "return_logistics": {"tracking_number": "SF1234567890", "carrier": "顺丰速运",
                         "uploaded_at": "2024-06-02T10:00:00+08:00", "signed_at": None,
                         "receipt_deadline": "2024-06-12T10:00:00+08:00", "extension_used": False, "fixes_used": 0},
}


def bench_decide(doc: dict, compiled, n: int) -> None:
    """A merchant decision without ticket validation (facts + gate + verdicts), for scale beside
    one evaluation; bench/bench_decide.py measures the full `Engine.decide` on many tickets."""
    from datetime import datetime, timezone

    from engine.decisions.decide import decide
    from engine.policy.model import Policy
    from engine.decisions.ticket import validate_ticket

    policy = Policy.from_document(doc)
    ticket = validate_ticket(TICKET)
    at = datetime(2024, 6, 3, 10, 0, tzinfo=timezone.utc)
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        decide(policy, compiled, ticket, "merchant", at)
        samples.append((clock() - t0) / 1000)
    p50, p99 = percentiles(samples)
    print(f"decide   p50 {p50:7.1f} µs  p99 {p99:7.1f} µs  (merchant, full engine.decide.decide, {n} calls)")


if __name__ == "__main__":
    raise SystemExit(main())
