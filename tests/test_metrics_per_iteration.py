"""Per-request metric updates are gathered per event-loop iteration (metrics.PerIteration) and
applied at its end: the same values as updating at once, fewer writes to the metrics files, and
nothing left unapplied once the iteration is over."""
from __future__ import annotations

import asyncio
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from engine.service.metrics import PerIteration


class Recording:
    """A metric child that records its updates (what reaches prometheus-client, and how often)."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def inc(self, amount=1):
        self.calls.append(("inc", amount))
        self.real.inc(amount)

    def observe(self, value):
        self.calls.append(("observe", value))
        self.real.observe(value)


def _metrics():
    registry = CollectorRegistry()
    counter = Counter("t_requests", "", ["route"], registry=registry)
    histogram = Histogram("t_seconds", "", buckets=(0.001, 0.01, 0.1), registry=registry)
    return registry, Recording(counter.labels("/a")), Recording(counter.labels("/b")), Recording(histogram)


def test_one_iterations_updates_are_applied_together_at_its_end():
    registry, a, b, seconds = _metrics()
    tally = PerIteration()
    seen_during: list[float | None] = []

    async def main():
        tally.bind(asyncio.get_running_loop())
        for value in (0.0005, 0.005, 0.05, 0.5):
            tally.inc(a)
            tally.observe(seconds, value)
        tally.inc(b)
        seen_during.append(registry.get_sample_value("t_requests_total", {"route": "/a"}))
        await asyncio.sleep(0)      # the iteration ends
        tally.inc(a)                # the next one
        await asyncio.sleep(0)
        tally.unbind(asyncio.get_running_loop())

    asyncio.run(main())
    assert seen_during == [0.0]                        # nothing written during the iteration
    assert a.calls == [("inc", 4), ("inc", 1)]         # once per iteration, the count summed
    assert b.calls == [("inc", 1)]
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 5
    assert [registry.get_sample_value("t_seconds_bucket", {"le": le}) for le in ("0.001", "0.01", "0.1", "+Inf")] \
        == [1, 2, 3, 4]
    assert registry.get_sample_value("t_seconds_sum") == 0.5555


def test_unbound_or_from_another_thread_an_update_is_applied_at_once():
    registry, a, _, seconds = _metrics()
    tally = PerIteration()
    tally.inc(a)
    tally.observe(seconds, 0.002)
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 1
    assert registry.get_sample_value("t_seconds_count") == 1

    async def main():
        tally.bind(asyncio.get_running_loop())
        thread = threading.Thread(target=tally.inc, args=(a,))
        thread.start()
        thread.join()
        assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 2
        tally.inc(a)                 # the loop's own: at the end of the iteration...
        tally.unbind(asyncio.get_running_loop())   # ...or when unbound, whichever comes first

    asyncio.run(main())
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 3
