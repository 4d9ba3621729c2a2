"""Dask clusters for the impact tests: one LocalCluster (2 worker processes, 1 thread each, on
127.0.0.1, no dashboard) shared by a test module, and an external cluster started as separate
processes (`dask scheduler` + `dask worker`s) the way a user would; the job the impact tests
replay and its plain in-process replay, what the Dask runs are compared with."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.api import Engine
from engine.history.attribution import declared_between
from engine.history.impact import Job, replay_in_process
from engine.history.ticket_sources import discover, partitions
from engine.history.versions import load_versions

ROOT = Path(__file__).resolve().parent.parent
FROM, TO = "2024-03-22", "2024-04-22"


def impact_job(engine: Engine) -> Job:
    documents = [(d.version, d.data) for d in load_versions()]
    return Job(FROM, TO, changes=declared_between(documents, FROM, TO), bundle_hash=engine.bundle_hash)


def in_process_reference(corpus: Path) -> tuple[Job, Any]:
    """(the job, its plain in-process replay of `corpus`)."""
    engine = Engine.from_directory()
    try:
        job = impact_job(engine)
        return job, replay_in_process(engine, job, partitions(discover([str(corpus)]), 1000))
    finally:
        engine.close()


@contextmanager
def external_cluster(tmp_path: Path, workers: int = 2):
    """`dask scheduler` and `workers` × `dask worker` on loopback, random ports, no dashboard (their
    HTTP endpoints on random loopback ports too);
    yields the scheduler address once every worker has registered."""
    scheduler_file = tmp_path / "scheduler.json"
    common = {"cwd": ROOT, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)], **common)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError("the dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(workers):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--local-directory", str(tmp_path)], **common))
        from distributed import Client

        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
