"""Impact: replaying a corpus under two versions counts the decisions that move, per actor and
action; bad lines are located and skipped; the run does not depend on the number of processes."""
from __future__ import annotations

import json

import pytest

from engine.cli.main import main
from engine.history.corpus import Vocabulary, generate
from engine.history.versions import load_versions
from engine.history.impact import Job, action_changes, run_impact


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("impact") / "corpus.jsonl"
    vocab = Vocabulary.from_document(load_versions()[-1].data)
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in generate(120, 5, vocab)),
                    encoding="utf-8")
    return path


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


def test_negotiation_required_shows_as_reject_denied(corpus_file):
    tally = run_impact(Job(None, "2024-03-22", "2024-04-22", ("merchant", "buyer"), None),
                       corpus_file, workers=1)
    assert tally.tickets == 120 and tally.problems == []
    reject = tally.counts["merchant"]["reject"]
    assert reject["allowed_to_denied"] > 0
    # only the scenarios that became negotiation_required lose direct rejection
    by_id = {json.loads(line)["ticket_id"]: json.loads(line)
             for line in corpus_file.read_text(encoding="utf-8").splitlines()}
    for _line, ticket_id in tally.samples["merchant"]["reject"]["allowed_to_denied"]:
        assert by_id[ticket_id]["scenario"] in {"not_received", "quality_issue"}
    assert "buyer" not in tally.counts  # nothing in this change touches the buyer's decision


def test_two_processes_give_the_same_tally(corpus_file):
    job = Job(None, "2024-03-22", "2024-04-22", ("merchant", "buyer"), None)
    seen = []
    alone = run_impact(job, corpus_file, workers=1)
    spread = run_impact(job, corpus_file, workers=2, chunk_size=25, progress=lambda d, t: seen.append((d, t)))
    assert (spread.lines, spread.tickets, spread.compared) == (alone.lines, alone.tickets, alone.compared)
    assert spread.counts == alone.counts
    assert spread.samples == alone.samples  # lowest line numbers win, whatever the scheduling
    assert len(seen) == 5 and seen[-1] == (120, 120)


def test_cli_json_report(corpus_file, capsys):
    assert main(["impact", "--from", "2024-03-22", "--to", "2024-04-22", "--tickets", str(corpus_file),
                 "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["actors"]["merchant"]["reject"]["allowed_to_denied"]["count"] > 0
    assert report["tickets"] == 120 and report["compared"] == 240


def test_bad_lines_are_located_skipped_and_counted(tmp_path, corpus_file, capsys):
    good = corpus_file.read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(good[1])
    broken["order"]["paid_amount"] = "12.50"
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good[0], "{not json", json.dumps(broken), "", good[2]]) + "\n", encoding="utf-8")
    assert main(["impact", "--from", "2024-03-22", "--to", "2024-04-22", "--tickets", str(path),
                 "--format", "json", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["tickets"], report["bad_lines"], report["lines"]) == (2, 2, 4)
    assert f"{path}:2: /: not JSON" in captured.err
    assert f"{path}:3: /order/paid_amount:" in captured.err
    assert "skipped 2 bad line(s) of 4" in captured.err


def test_tickets_a_version_cannot_know_are_counted_apart(tmp_path, capsys):
    vocab = Vocabulary.from_document(load_versions()[-1].data)
    ticket = next(t for t in generate(200, 2, vocab) if t["scenario"] == "wrong_item")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(ticket, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["impact", "--from", "2023-12-22", "--to", "2024-03-11", "--tickets", str(path),
                 "--format", "json", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["undecidable"] == {"from": 1, "to": 0}
    assert report["bad_lines"] == 0


def test_empty_corpus_unknown_version_and_missing_file(tmp_path, corpus_file, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["impact", "--from", "2024-03-22", "--to", "2024-04-22", "--tickets", str(empty)]) == 1
    assert "holds no tickets" in capsys.readouterr().err
    assert main(["impact", "--from", "2024-03-22", "--to", "2099-01-01", "--tickets", str(corpus_file)]) == 1
    assert "unknown policy version `2099-01-01`" in capsys.readouterr().err
    assert main(["impact", "--from", "2024-03-22", "--to", "2024-04-22", "--tickets", str(tmp_path / "nope")]) == 1
    assert "cannot read corpus" in capsys.readouterr().err


def test_table_and_fixed_time(corpus_file, capsys):
    assert main(["impact", "--from", "2024-03-11", "--to", "2024-03-22", "--tickets", str(corpus_file),
                 "--actor", "merchant", "--at", "2024-06-01T00:00:00+08:00", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("impact 2024-03-11 → 2024-03-22: 120 tickets")
    assert "at 2024-06-01T00:00:00+08:00" in out
    assert "intercept_logistics" in out and "allow→deny" in out
