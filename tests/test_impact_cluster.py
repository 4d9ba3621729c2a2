"""Impact on real Dask clusters: the default LocalCluster, an external cluster started as separate
processes (`dask scheduler` + two `dask worker`s on loopback, random ports, no dashboard) and a
plain in-process replay give the same summary; a worker killed mid-run changes nothing (its tasks
rerun, the nanny restarts it and the plugin rebuilds its engine); a worker whose engine does not
match the client's bundle is refused; `corpus` made on the cluster equals the one made here."""
from __future__ import annotations

import json
import os
import signal

import pytest
from dask_support import FROM, TO, external_cluster, in_process_reference

from engine.cli.main import main
from engine.core.resources import default_rules_dir
from engine.history.corpus import Vocabulary, generate
from engine.history.dask_run import EnginePlugin, dask_client, policy_files, run_impact
from engine.history.impact import ImpactError
from engine.history.ticket_sources import count_rows, discover, partitions
from engine.history.versions import load_versions

COUNT = 160


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    vocab = Vocabulary.from_document(load_versions()[-1].data)
    path = tmp_path_factory.mktemp("cluster") / "corpus.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in generate(COUNT, 8, vocab)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(corpus_file):
    """The plain in-process replay of the corpus."""
    return in_process_reference(corpus_file)


def _cli(capsys, corpus_file, *args):
    assert main(["impact", "--from", FROM, "--to", TO, "--tickets", str(corpus_file), "--format", "json",
                 "--partition-size", "20", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    return report


def _summary(report):
    keep = ("lines", "tickets", "compared", "undecidable", "actors", "unexplained", "by_scenario", "by_type")
    return {k: report[k] for k in keep}


def test_local_cluster_external_cluster_and_in_process_agree(corpus_file, reference, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    local = _cli(capsys, corpus_file, "--workers", "2")  # the default: a LocalCluster made for the run
    assert local["cluster"] == "LocalCluster (2 workers), tickets read by the workers"
    with external_cluster(tmp_path) as address:
        external = _cli(capsys, corpus_file, "--scheduler", address)
        assert external["cluster"] == f"{address} (2 workers), tickets read by the workers"  # same machine
        shipped = _cli(capsys, corpus_file, "--scheduler", address, "--ship-tickets")
        assert shipped["cluster"] == f"{address} (2 workers), tickets shipped by the client"
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)  # the environment works as the flag does
        from_env = _cli(capsys, corpus_file)
        assert from_env["cluster"].startswith(address)
    assert _summary(local) == _summary(external) == _summary(from_env) == _summary(shipped)
    _, tally = reference
    assert local["tickets"] == tally.tickets == COUNT and local["compared"] == tally.compared
    in_process = {(a, act, k): c.count for (a, act, k), c in tally.cells.items()}
    on_cluster = {(a, act, k): e["count"] for a, actions in local["actors"].items()
                  for act, kinds in actions.items() for k, e in kinds.items()}
    assert on_cluster == in_process and sum(in_process.values()) > 0
    assert local["by_scenario"] == tally.by_scenario and local["by_type"] == tally.by_type
    samples = {(a, act, k): [s["ticket_id"] for s in e["samples"]] for a, actions in local["actors"].items()
               for act, kinds in actions.items() for k, e in kinds.items()}
    assert samples == {key: [t for _, _, t in c.samples] for key, c in tally.cells.items()}


def test_a_worker_killed_mid_run_changes_nothing(corpus_file, reference):
    job, expected = reference
    sources = discover([str(corpus_file)])
    plugin = EnginePlugin(policy_files(default_rules_dir()), job.bundle_hash)
    with dask_client(workers=2) as client:
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        seen = []

        def kill_once(result):
            if not seen:
                os.kill(victim, signal.SIGKILL)  # mid-run: 1 of 32 partitions is done
            seen.append(result.index)

        tally = run_impact(client, job, lambda ship: partitions(sources, 5, ship), plugin, count_rows(sources), kill_once,
                               in_flight=4)
        assert len(seen) == len(set(seen)) == COUNT // 5  # every partition once, none lost or doubled
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()  # the nanny restarted it as a new process
    assert tally.summary() == expected.summary()


def test_a_worker_with_another_bundle_is_refused(corpus_file, reference):
    job, _ = reference
    files = policy_files(default_rules_dir())
    files["2024-05-31.yaml"] = files["2024-05-31.yaml"].replace(b"\n", b"\n\n", 1)  # same policy, other bytes
    plugin = EnginePlugin(files, job.bundle_hash)
    with pytest.raises(ImpactError, match="has bundle .* the client's is"):
        plugin.setup(None)  # what each worker runs when the plugin is registered
    sources = discover([str(corpus_file)])
    with dask_client(workers=1) as client:
        with pytest.raises(ImpactError, match="could not build the engine|has bundle"):
            run_impact(client, job, lambda ship: partitions(sources, 50, ship), plugin, COUNT)


def test_corpus_on_a_cluster_equals_the_one_made_here(tmp_path):
    with dask_client(workers=2) as client:
        address = client.scheduler.address
        assert main(["corpus", "--count", "45", "--seed", "3", "--slice", "7", "--scheduler", address,
                     "--out", str(tmp_path / "cluster.jsonl")]) == 0
        assert main(["corpus", "--count", "45", "--seed", "3", "--slice", "10", "--scheduler", address,
                     "--out", str(tmp_path / "parquet"), "--format", "parquet"]) == 0
    assert main(["corpus", "--count", "45", "--seed", "3", "--out", str(tmp_path / "here.jsonl")]) == 0
    assert (tmp_path / "cluster.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    import pyarrow.dataset as ds

    table = ds.dataset(tmp_path / "parquet").to_table().sort_by("ticket_id")
    lines = (tmp_path / "here.jsonl").read_text(encoding="utf-8").splitlines()
    assert table.column("ticket").to_pylist() == lines and len(list((tmp_path / "parquet").iterdir())) == 5


def test_ctrl_c_on_a_terminal_stops_cleanly(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: exit 130, no traceback from the
    client or the LocalCluster's workers, no output directory, no worker left behind."""
    import re
    import subprocess
    import sys
    import time

    vocab = Vocabulary.from_document(load_versions()[-1].data)
    corpus = tmp_path / "big.jsonl"
    corpus.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in generate(20000, 4, vocab)),
                      encoding="utf-8")
    out = tmp_path / "diffs"
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "impact", "--from", FROM, "--to", TO, "--tickets", str(corpus),
         "--workers", "2", "--partition-size", "100", "--out", str(out), "--progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    err = b""
    deadline = time.monotonic() + 120
    while not re.search(rb"(?<![\d.])[1-9]\d*%", err):  # some tickets replayed: mid-run
        assert time.monotonic() < deadline and process.poll() is None, err.decode(errors="replace")
        err += process.stderr.read1(4096)
    os.killpg(process.pid, signal.SIGINT)
    try:
        err += process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = err.decode(errors="replace")
    assert process.returncode == 130, text
    assert "aftersale impact: interrupted after" in text and "Traceback" not in text
    assert not out.exists() and not (tmp_path / ".diffs.partial").exists()
    deadline = time.monotonic() + 20
    while _group_alive(process.pid):  # the whole group (client, workers) is gone
        assert time.monotonic() < deadline, subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(process.pid)],
                                                           capture_output=True, text=True).stdout
        time.sleep(0.2)


def _group_alive(group):
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
