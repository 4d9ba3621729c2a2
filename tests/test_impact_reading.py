"""How impact's tickets reach the workers, and what the client and the workers keep.

- A partition read by path (byte range of a JSONL file, rows of a Parquet row group) holds exactly
  the tickets the shipped partition holds, line and row numbers included.
- On this machine's LocalCluster the workers read the files themselves: no task carries tickets.
- A worker that cannot read a file as the client saw it sends the partition back unread and the
  client ships it: same summary. A file that changed during the run stops it with a clear error.
- The client holds no more than the tasks in flight (results are merged and released as they come).
- The LocalCluster's workers run without Dask's statistical profiler (its history grew their memory).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from dask_support import in_process_reference

from engine.core.resources import default_rules_dir
from engine.history.corpus import Vocabulary, generate
from engine.history.dask_run import EnginePlugin, Reading, dask_client, policy_files, run_impact
from engine.history.impact import ImpactError
from engine.history.ticket_sources import (NotReadableHere, count_rows, discover, fingerprints, partitions,
                                           read_payload, ticket_texts)
from engine.history.versions import load_versions

COUNT = 90


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The same tickets as JSONL (with a blank line and a bad line) and as Parquet in 3 row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vocab = Vocabulary.from_document(load_versions()[-1].data)
    lines = [json.dumps(t, ensure_ascii=False) for t in generate(COUNT, 11, vocab)]
    directory = tmp_path_factory.mktemp("reading")
    jsonl = directory / "corpus.jsonl"
    jsonl.write_text("\n".join(lines[:10] + ["", "{not json"] + lines[10:]) + "\n", encoding="utf-8")
    parquet = directory / "corpus.parquet"
    pq.write_table(pa.table({"ticket": lines}), parquet, row_group_size=40)  # groups of 40, 40, 10
    return jsonl, parquet


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as made:
        made.wait_for_workers(2, timeout=60)
        yield made


@pytest.fixture(scope="module")
def reference(corpus):
    return in_process_reference(corpus[0])


@pytest.mark.parametrize("which", [0, 1], ids=["jsonl", "parquet"])
def test_a_partition_read_by_path_holds_what_the_shipped_one_holds(corpus, which):
    sources = discover([str(corpus[which])])
    shipped = list(partitions(sources, 7, ship=True))
    addressed = list(partitions(sources, 7, ship=False))
    assert all(p.payload is None for p in addressed) and all(p.payload is not None for p in shipped)
    assert [(p.first, p.rows, p.span) for p in addressed] == [(p.first, p.rows, p.span) for p in shipped]
    texts = [list(ticket_texts(p)) for p in addressed]  # read from the file, as a worker does
    assert texts == [list(ticket_texts(p)) for p in shipped]
    numbers = [number for part in texts for number, _, _ in part]
    assert len(numbers) == (COUNT + 1 if which == 0 else COUNT)  # the bad line is there, the blank one not
    assert numbers == sorted(set(numbers))
    if which == 1:  # Parquet partitions stay inside a row group of 40
        assert {p.span[0] for p in addressed} == {0, 1, 2} and all(p.span[1] + p.rows <= 40 for p in addressed)


def test_a_file_that_changed_is_not_read(corpus, tmp_path):
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(corpus[0].read_bytes())
    part = next(partitions(discover([str(copy)]), 7, ship=False))
    copy.write_bytes(copy.read_bytes() + b"\n")  # another size: not the file the client saw
    with pytest.raises(NotReadableHere):
        read_payload(part, part.absolute)


def _plugin(job):
    return EnginePlugin(policy_files(default_rules_dir()), job.bundle_hash)


def test_local_workers_read_the_files_and_the_client_holds_only_tasks_in_flight(client, corpus, reference):
    job, expected = reference
    sources = discover([str(corpus[0])])
    asked, held = [], []

    def parts(ship):
        asked.append(ship)
        for part in partitions(sources, 5, ship):
            assert part.payload is None or ship
            yield part

    reading = Reading()
    tally = run_impact(client, job, parts, _plugin(job), count_rows(sources), lambda _: held.append(len(client.futures)),
                       in_flight=4, files=fingerprints(sources), reading=reading)
    assert asked == [False] and reading.by_workers and reading.shipped == 0
    assert tally.summary() == expected.summary()
    assert len(held) == -(-(COUNT + 2) // 5) and max(held) <= 4  # one result per partition, never more in flight
    deadline = time.monotonic() + 10  # a release reaches the client's state on its event loop, soon after
    while client.futures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.futures  # nothing kept once merged


def test_parquet_read_by_the_workers_gives_the_same_summary(client, corpus, reference):
    job, expected = reference
    sources = discover([str(corpus[1])])
    reading = Reading()
    tally = run_impact(client, job, lambda ship: partitions(sources, 15, ship), _plugin(job), COUNT,
                       files=fingerprints(sources), reading=reading)
    assert reading.by_workers and reading.shipped == 0
    summary, reference_summary = tally.summary(), expected.summary()
    assert reference_summary["problems"] and not summary["problems"]  # the JSONL copy has a bad line
    for key in ("tickets", "compared", "counts", "by_scenario", "by_type"):
        assert summary[key] == reference_summary[key]


def test_a_worker_that_cannot_read_a_file_gets_it_shipped(client, corpus, reference):
    job, expected = reference
    sources = discover([str(corpus[0])])

    def unreadable_on_workers(ship):  # as on a worker without the client's filesystem
        for part in partitions(sources, 10, ship):
            yield replace(part, absolute="/nonexistent" + part.absolute)

    reading = Reading()
    tally = run_impact(client, job, unreadable_on_workers, _plugin(job), COUNT, files=fingerprints(sources),
                       reading=reading)
    assert reading.by_workers and reading.shipped == -(-(COUNT + 2) // 10)  # every partition came back unread
    assert tally.summary() == expected.summary()


def test_without_the_files_or_when_asked_the_client_ships(client, corpus, reference, tmp_path):
    job, expected = reference
    sources = discover([str(corpus[0])])
    files = {str(tmp_path / "elsewhere.jsonl"): (1, 1)}  # a file no worker has: ship everything
    for given in (None, files):
        reading = Reading()
        tally = run_impact(client, job, lambda ship: partitions(sources, 30, ship), _plugin(job), COUNT, files=given,
                           reading=reading)
        assert not reading.by_workers and reading.shipped == 4
        assert tally.summary() == expected.summary()


def test_a_corpus_file_changed_during_the_run_stops_it(client, corpus, reference, tmp_path):
    job, _ = reference
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(corpus[0].read_bytes())
    sources = discover([str(copy)])

    def changed(ship):
        for part in partitions(sources, 10, ship):
            yield replace(part, fingerprint=(part.fingerprint[0] + 1, part.fingerprint[1]))

    with pytest.raises(ImpactError, match="changed during the run"):
        run_impact(client, job, changed, _plugin(job), COUNT, files=fingerprints(sources))


def test_local_workers_run_without_the_profiler(client):
    import dask

    def profiler(dask_worker):
        return (dask.config.get("distributed.worker.profile.enabled"), "profile" in dask_worker.periodic_callbacks,
                len(dask_worker.profile_history))

    assert set(client.run(profiler).values()) == {(False, False, 0)}
