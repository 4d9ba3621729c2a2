"""Impact at scale on Dask (on demand, not in CI): tickets/s with 1 and 2 workers, scaling
efficiency 1 → 2 workers (target ≥ 0.85), peak memory per worker at 10^5 and 10^6 tickets (should be
flat: a worker holds one partition at a time), the Parquet size of the per-ticket differences.

    .venv/bin/python bench/bench_impact.py                      # 10^5 and 10^6 tickets, 1 and 2 workers
    .venv/bin/python bench/bench_impact.py --sizes 100000 --workers 1,2
    .venv/bin/python bench/bench_impact.py --ship-tickets       # the client ships the tickets (no shared FS)

Each measurement starts a fresh LocalCluster (1 thread per worker process), registers the engine
plugin (the engine build is timed apart, it is paid once per worker), then times the replay of the
whole corpus with `--out` (differences written as Parquet, the full job), 2024-03-22 → 2024-04-22.
The workers read the corpus files themselves (they are on this machine) unless --ship-tickets.
The corpora are made once with `aftersale corpus` (on the cluster) and kept in --data.
Read the ratios, not the absolute rates, on a machine shared with other work: the load average
before and after is printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.resources import default_rules_dir  # noqa: E402
from engine.history.attribution import declared_between  # noqa: E402
from engine.history.dask_run import EnginePlugin, Reading, dask_client, policy_files, run_impact  # noqa: E402
from engine.history.differences import DifferenceWriter  # noqa: E402
from engine.history.impact import Job, PartResult  # noqa: E402
from engine.history.ticket_sources import count_rows, discover, fingerprints, partitions  # noqa: E402
from engine.policy.bundle import load_directory  # noqa: E402

FROM, TO = "2024-03-22", "2024-04-22"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    """Resident memory now. (Not ru_maxrss: Linux carries the high-water mark across the exec of a
    spawned worker, so a worker would report its parent's peak.)"""
    import psutil  # a dependency of distributed

    return float(psutil.Process().memory_info().rss) / 2**20


def corpus(data: Path, count: int) -> Path:
    import hashlib

    maker = hashlib.sha256((ROOT / "engine" / "history" / "corpus.py").read_bytes()).hexdigest()[:8]
    path = data / f"corpus-{count}-{maker}.jsonl"  # made again when the generator changes
    if not path.exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "engine.cli.main", "corpus", "--count", str(count), "--seed", "1",
                        "--out", str(path)], check=True, cwd=ROOT)
        print(f"# made {path} in {time.monotonic() - started:.1f} s", flush=True)
    return path


def measure(path: Path, workers: int, partition: int, ship: bool) -> dict[str, object]:
    bundle = load_directory(default_rules_dir())
    documents = [(d.version, d.data) for d in bundle.documents]
    job = Job(FROM, TO, changes=declared_between(documents, FROM, TO), bundle_hash=bundle.content_hash,
              keep_differences=True)
    plugin = EnginePlugin(policy_files(default_rules_dir()), bundle.content_hash)
    sources = discover([str(path)])
    total = count_rows(sources)
    out = Path(tempfile.mkdtemp(prefix="impact-bench-")) / "diffs"
    writer = DifferenceWriter(str(out))
    with dask_client(workers=workers) as client:
        client.wait_for_workers(workers, timeout=120)
        started = time.monotonic()
        client.register_plugin(plugin)
        built = time.monotonic() - started
        cpu_before = client.run(cpu_seconds)
        peaks = {"worker": max(client.run(rss_mib).values()), "client": rss_mib()}
        trend: list[float] = []  # the workers' largest RSS at each tenth of the run: flat or growing?
        parts = 0
        tenth = max(1, total // partition // 10)

        def on_part(part: PartResult) -> None:
            nonlocal parts
            writer.add(part.differences)
            parts += 1
            if parts % 10 == 0 or parts % tenth == 0:  # sample the workers' memory as the run goes
                now = max(client.run(rss_mib).values())
                peaks["worker"] = max(peaks["worker"], now)
                peaks["client"] = max(peaks["client"], rss_mib())
                if parts % tenth == 0:
                    trend.append(round(now))

        started, client_cpu = time.monotonic(), cpu_seconds()
        reading = Reading()
        tally = run_impact(client, job, lambda ship: partitions(sources, partition, ship), plugin, total, on_part,
                           files=None if ship else fingerprints(sources), reading=reading)
        seconds, client_cpu = time.monotonic() - started, cpu_seconds() - client_cpu
        cpu = sum(client.run(cpu_seconds).values()) - sum(cpu_before.values())
    writer.finish({"tickets": tally.tickets})
    size = writer.size_bytes()
    shutil.rmtree(out.parent, ignore_errors=True)
    assert tally.tickets == total, (tally.tickets, total, tally.problems[:3], tally.undecidable)
    return {"tickets": total, "workers": workers, "seconds": round(seconds, 2),
            "tickets_read_by": "workers" if reading.by_workers else "client",
            "tickets_per_second": round(total / seconds, 1),
            "per_worker_per_second": round(total / seconds / workers, 1),
            "engine_build_seconds": round(built, 2),
            # CPU the workers spent per ticket: the per-core rate, immune to other load on the machine
            "worker_cpu_us_per_ticket": round(cpu / total * 1e6, 1),
            "per_core_tickets_per_cpu_second": round(total / cpu, 1),
            # the client's share (reading, shipping, merging, writing Parquet; here with the scheduler)
            "client_cpu_us_per_ticket": round(client_cpu / total * 1e6, 1),
            "peak_worker_rss_mib": round(peaks["worker"], 1),
            "worker_rss_trend_mib": trend,
            "peak_client_rss_mib": round(peaks["client"], 1),  # client + the LocalCluster's scheduler
            "differences": writer.rows, "parquet_bytes": size,
            "parquet_bytes_per_ticket": round(size / total, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--partition-size", type=int, default=1000)
    parser.add_argument("--ship-tickets", action="store_true",
                        help="the client reads and ships every partition (the no-shared-filesystem path)")
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"), help="where the corpora are kept")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    print(f"# load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    results = []
    for size in sizes:
        path = corpus(data, size)
        for workers in counts:
            result = measure(path, workers, args.partition_size, args.ship_tickets)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"# load average after: {os.getloadavg()}")
    for size in sizes:
        rates = {r["workers"]: float(str(r["tickets_per_second"])) for r in results if r["tickets"] == size}
        if 1 in rates and 2 in rates:
            print(f"{size} tickets: {rates[1]:,.0f}/s on 1 worker, {rates[2]:,.0f}/s on 2: "
                  f"scaling efficiency {rates[2] / (2 * rates[1]):.2f} (target >= 0.85)")
    by_size = {}
    for r in results:
        by_size.setdefault(r["workers"], {})[r["tickets"]] = r["peak_worker_rss_mib"]
    for workers, peaks in sorted(by_size.items()):
        print(f"peak RSS per worker ({workers} workers): "
              + ", ".join(f"{peak:.0f} MiB at {size:,}" for size, peak in sorted(peaks.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
