"""Impact: replaying tickets under two versions counts the decisions that move, per actor and
action, attributed to the declared changes; bad lines and rows are located and skipped; JSONL and
Parquet inputs of the same tickets give the same summary; `--out` is Parquet DuckDB can query.

The CLI runs here go to one shared LocalCluster through `--scheduler` (2 worker processes, 1 thread
each, loopback, no dashboard), so the suite starts one cluster, not one per test;
tests/test_impact_cluster.py covers the default LocalCluster, an external cluster and faults.
"""
from __future__ import annotations

import json

import pytest

from engine.api import Engine
from engine.cli.main import main
from engine.history.attribution import declared_between, explained_by
from engine.history.corpus import Vocabulary, generate
from engine.history.corpus_out import corpus_slice
from engine.history.dask_run import dask_client
from engine.history.impact import Job, action_changes, replay_in_process
from engine.history.ticket_sources import discover, partitions
from engine.history.versions import load_versions

FROM, TO = "2024-03-22", "2024-04-22"
COUNT = 120


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_document(load_versions()[-1].data)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, vocab):
    path = tmp_path_factory.mktemp("impact") / "corpus.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in generate(COUNT, 5, vocab)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scheduler():
    with dask_client(workers=2) as client:
        yield client.scheduler.address


def impact(scheduler, capsys, *args):
    code = main(["impact", "--from", FROM, "--to", TO, "--scheduler", scheduler, "--format", "json", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def comparable(report):
    """The report without timings, where it ran and where the samples were read from."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "at"}
        return [strip(v) for v in value] if isinstance(value, list) else value

    drop = {"seconds", "tickets_per_second", "cluster", "tickets_files", "problems"}
    return {k: strip(v) for k, v in report.items() if k not in drop}


def test_action_changes_kinds():
    allowed = {"allowed": True, "denials": [], "advice": []}
    denied = {"allowed": False, "denials": [{"code": "NEGOTIATION_REQUIRED_FIRST"}], "advice": []}
    other = {"allowed": False, "denials": [{"code": "STATUS_NOT_ALLOWED"}], "advice": []}
    assert action_changes(allowed, denied) == ["allowed_to_denied"]
    assert action_changes(denied, allowed) == ["denied_to_allowed"]
    assert action_changes(denied, other) == ["denial_codes_changed"]
    assert action_changes(denied, denied) == []
    guided = dict(allowed, advice=[{"code": "REJECTION_GUIDED"}])
    assert action_changes(allowed, guided) == ["advice_changed"]
    offer = {"negotiation_types": [{"id": "modify_request", "reasons": [
        {"id": "amount_only", "evidence_required": False, "message": None}]}],
        "refund_types": ["refund_only", "return_refund"], "max_refund_amount": 100}
    narrowed = dict(offer, refund_types=["refund_only"], max_refund_amount=50)
    assert action_changes(dict(allowed, constraints=offer), dict(allowed, constraints=narrowed)) == [
        "refund_types_changed", "max_refund_amount_changed"]
    evidence = dict(offer, negotiation_types=[{"id": "modify_request", "reasons": [
        {"id": "amount_only", "evidence_required": True, "message": None}]}])
    assert action_changes(dict(allowed, constraints=offer), dict(allowed, constraints=evidence)) == [
        "reason_terms_changed"]
    fewer = dict(offer, negotiation_types=[{"id": "modify_request", "reasons": []}])
    assert action_changes(dict(allowed, constraints=offer), dict(allowed, constraints=fewer)) == ["reasons_changed"]


def test_declared_changes_explain_by_action_and_scenario_scope():
    documents = [(d.version, d.data) for d in load_versions()]
    changes = declared_between(documents, FROM, TO)
    assert {c.version for c in changes} == {TO}
    assert declared_between(documents, TO, FROM) == changes  # either direction: the changes in between
    reject = next(c for c in changes if c.id == "negotiation-required-before-reject")
    assert reject.scenarios == {"not_received", "quality_issue"}  # touches only those scenarios
    assert explained_by(changes, "reject", "not_received") == (f"{TO}/negotiation-required-before-reject",)
    assert explained_by(changes, "reject", "damaged") == ()  # that change cannot move a damaged ticket
    assert explained_by(changes, "intercept_logistics", "not_received") == ()
    spanning = declared_between(documents, "2023-12-22", "2024-05-31")
    assert {c.version for c in spanning} == {"2024-03-11", "2024-03-22", "2024-04-22", "2024-05-31"}


def test_in_process_replay_negotiation_required_shows_as_reject_denied(corpus_file):
    documents = [(d.version, d.data) for d in load_versions()]
    engine = Engine.from_directory()
    job = Job(FROM, TO, changes=declared_between(documents, FROM, TO))
    tally = replay_in_process(engine, job, partitions(discover([str(corpus_file)]), 25))
    assert tally.tickets == COUNT and tally.problems == []
    cell = tally.cells[("merchant", "reject", "allowed_to_denied")]
    assert cell.count > 0 and cell.unexplained == 0
    assert cell.by_change == {f"{TO}/negotiation-required-before-reject": cell.count}
    by_id = {json.loads(line)["ticket_id"]: json.loads(line)
             for line in corpus_file.read_text(encoding="utf-8").splitlines()}
    for _source, _line, ticket_id in cell.samples:
        assert by_id[ticket_id]["scenario"] in {"not_received", "quality_issue"}
    assert "buyer" not in tally.counts  # nothing in this change touches the buyer's decision
    changed = sum(c.get("changed", 0) for c in tally.by_scenario.values())
    assert sum(c["tickets"] for c in tally.by_type.values()) == COUNT and 0 < changed <= COUNT


def test_undeclared_difference_is_listed_unexplained(scheduler, corpus_file, tmp_path, capsys):
    # a copy of the rules whose newer version no longer declares why `reject` moves
    rules = tmp_path / "rules"
    rules.mkdir()
    for doc in load_versions():
        text = doc.path.read_text(encoding="utf-8")
        if doc.version == TO:
            text = text.replace("affects_actions: [reject]", "affects_actions: [agree]")
        (rules / doc.path.name).write_text(text, encoding="utf-8")
    code, report, _ = impact(scheduler, capsys, "--tickets", str(corpus_file), "--rules", str(rules))
    assert code == 0
    unexplained = {(u["actor"], u["action"], u["kind"]): u for u in report["unexplained"]}
    entry = unexplained[("merchant", "reject", "allowed_to_denied")]
    assert entry["count"] == report["actors"]["merchant"]["reject"]["allowed_to_denied"]["count"] > 0
    assert entry["samples"][0]["at"].startswith(f"{corpus_file}:")


def test_cli_json_report(scheduler, corpus_file, capsys):
    code, report, _ = impact(scheduler, capsys, "--tickets", str(corpus_file))
    assert code == 0
    entry = report["actors"]["merchant"]["reject"]["allowed_to_denied"]
    assert entry["count"] > 0 and entry["unexplained"] == 0 and report["unexplained"] == []
    assert entry["explained_by"] == {f"{TO}/negotiation-required-before-reject": entry["count"]}
    assert report["tickets"] == COUNT and report["compared"] == 2 * COUNT
    assert set(report["by_scenario"]) <= set(Vocabulary.from_document(load_versions()[-1].data).scenarios)
    assert report["cluster"].startswith(scheduler)


def test_jsonl_and_parquet_of_the_same_tickets_give_the_same_summary(scheduler, corpus_file, vocab, tmp_path, capsys):
    import pyarrow.parquet as pq

    directory = tmp_path / "parquet"
    directory.mkdir()
    for first in (1, 51, 101):  # three files, as `aftersale corpus --format parquet` writes them
        _, table = corpus_slice(first, min(50, COUNT - first + 1), 5, vocab, *_window(), "parquet")
        pq.write_table(table, directory / f"part-{first:04d}.parquet", row_group_size=20)
    _, from_jsonl, _ = impact(scheduler, capsys, "--tickets", str(corpus_file), "--partition-size", "17")
    _, from_parquet, _ = impact(scheduler, capsys, "--tickets", str(directory))
    assert from_parquet["tickets"] == COUNT
    assert comparable(from_parquet) == comparable(from_jsonl)
    _, from_glob, _ = impact(scheduler, capsys, "--tickets", str(directory / "part-0*.parquet"))
    assert comparable(from_glob) == comparable(from_jsonl)


def _window():
    from engine.history.corpus import DEFAULT_END, DEFAULT_START

    return DEFAULT_START, DEFAULT_END


def test_bad_lines_are_located_skipped_and_counted(scheduler, tmp_path, corpus_file, capsys):
    good = corpus_file.read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(good[1])
    broken["order"]["paid_amount"] = "12.50"
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good[0], "{not json", json.dumps(broken), "", good[2]]) + "\n", encoding="utf-8")
    # partitions of one ticket: the bad lines land in other tasks than the good ones
    code, report, err = impact(scheduler, capsys, "--tickets", str(path), "--partition-size", "1")
    assert code == 0
    assert (report["tickets"], report["bad_lines"], report["lines"]) == (2, 2, 4)
    assert f"{path}:2: /: not JSON" in err
    assert f"{path}:3: /order/paid_amount:" in err
    assert "skipped 2 bad line(s) or row(s) of 4" in err


def test_bad_parquet_rows_are_located(scheduler, tmp_path, corpus_file, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = corpus_file.read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(good[2])
    del broken["scenario"]
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"ticket": [good[0], None, "[1, 2]", json.dumps(broken), good[1]]}), path,
                   row_group_size=2)
    code, report, err = impact(scheduler, capsys, "--tickets", str(path), "--partition-size", "2")
    assert code == 0
    assert (report["tickets"], report["bad_lines"], report["lines"]) == (2, 3, 5)
    assert f"{path}: row 2: /: the `ticket` cell is null" in err
    assert f"{path}: row 3: /: a line or row must hold one ticket" in err
    assert f"{path}: row 4: " in err and "scenario" in err
    assert [p["at"] for p in report["problems"]] == [f"{path}: row {n}" for n in (2, 3, 4)]


def test_parquet_without_a_ticket_column_is_refused(scheduler, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "flat.parquet"
    pq.write_table(pa.table({"ticket_id": ["a"]}), path)
    code, report, err = impact(scheduler, capsys, "--tickets", str(path))
    assert code == 1 and report is None
    assert f"Parquet file `{path}` has no `ticket` column" in err


def test_out_writes_differences_duckdb_can_query(scheduler, corpus_file, tmp_path, capsys):
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "diffs"
    code, report, err = impact(scheduler, capsys, "--tickets", str(corpus_file), "--out", str(out),
                               "--partition-size", "30")
    assert code == 0 and f"differences to {out}" in err
    assert not (tmp_path / ".diffs.partial").exists()
    assert (out / "kind=allowed_to_denied").is_dir()  # hive-partitioned by kind of change
    assert json.loads((out / "_summary.json").read_text(encoding="utf-8"))["tickets"] == COUNT
    rows = duckdb.sql(f"SELECT actor, action, kind, count(*) AS n, bool_and(len(explained_by) > 0) AS explained "
                      f"FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true) "
                      f"GROUP BY ALL ORDER BY ALL").fetchall()
    expected = sorted((actor, action, kind, entry["count"], entry["unexplained"] == 0)
                      for actor, actions in report["actors"].items()
                      for action, kinds in actions.items() for kind, entry in kinds.items())
    assert rows == expected
    reject = duckdb.sql(f"SELECT DISTINCT scenario, allowed_before, allowed_after FROM read_parquet("
                        f"'{out}/**/*.parquet', hive_partitioning=true) WHERE action = 'reject' "
                        f"AND kind = 'allowed_to_denied'").fetchall()
    assert {r[0] for r in reject} <= {"not_received", "quality_issue"} and {r[1:] for r in reject} == {(True, False)}
    code, _, err = impact(scheduler, capsys, "--tickets", str(corpus_file), "--out", str(out))
    assert code == 1 and "exists and is not an empty directory" in err


def test_tickets_a_version_cannot_know_are_counted_apart(scheduler, tmp_path, vocab, capsys):
    ticket = next(t for t in generate(200, 2, vocab) if t["scenario"] == "wrong_item")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(ticket, ensure_ascii=False) + "\n", encoding="utf-8")
    code = main(["impact", "--from", "2023-12-22", "--to", "2024-03-11", "--tickets", str(path),
                 "--format", "json", "--scheduler", scheduler])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["undecidable"] == {"from": 1, "to": 0}
    assert report["bad_lines"] == 0


def test_empty_corpus_unknown_version_and_missing_file(tmp_path, corpus_file, capsys):
    # all refused on the client, before any cluster is started
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["impact", "--from", FROM, "--to", TO, "--tickets", str(empty)]) == 1
    assert "holds no tickets" in capsys.readouterr().err
    assert main(["impact", "--from", FROM, "--to", "2099-01-01", "--tickets", str(corpus_file)]) == 1
    assert "unknown policy version `2099-01-01`" in capsys.readouterr().err
    assert main(["impact", "--from", FROM, "--to", TO, "--tickets", str(tmp_path / "nope")]) == 1
    assert "cannot read corpus" in capsys.readouterr().err
    assert main(["impact", "--from", FROM, "--to", TO, "--tickets", str(tmp_path / "*.parquet")]) == 1
    assert "no file matches" in capsys.readouterr().err


def test_text_and_markdown(scheduler, corpus_file, capsys):
    assert main(["impact", "--from", "2024-03-11", "--to", FROM, "--tickets", str(corpus_file), "--scheduler",
                 scheduler, "--actor", "merchant", "--at", "2024-06-01T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"impact 2024-03-11 → {FROM}: {COUNT} tickets")
    assert "at 2024-06-01T00:00:00+08:00" in out
    assert "intercept_logistics" in out and "allow→deny" in out and "scenario" in out
    assert main(["impact", "--from", FROM, "--to", TO, "--tickets", str(corpus_file), "--scheduler", scheduler,
                 "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith(f"### Impact {FROM} → {TO}")
    assert "| merchant | reject |" in markdown and "#### Per scenario" in markdown
    assert "None: every difference is explained by a declared change." in markdown


def test_interrupted_run_stops_cleanly_and_writes_nothing(scheduler, corpus_file, tmp_path, capsys, monkeypatch):
    from engine.history import differences

    def interrupt(self, table):
        raise KeyboardInterrupt

    monkeypatch.setattr(differences.DifferenceWriter, "add", interrupt)  # Ctrl-C as the first result arrives
    out = tmp_path / "diffs"
    code = main(["impact", "--from", FROM, "--to", TO, "--tickets", str(corpus_file), "--scheduler", scheduler,
                 "--out", str(out), "--partition-size", "10"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted after" in err and "nothing was written" in err
    assert not out.exists() and not (tmp_path / ".diffs.partial").exists()
    monkeypatch.undo()
    code, report, _ = impact(scheduler, capsys, "--tickets", str(corpus_file))  # the cluster is still usable
    assert code == 0 and report["tickets"] == COUNT
