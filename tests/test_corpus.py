"""Synthetic tickets: deterministic, schema-valid, a plausible mix, consistent with the policy."""
from __future__ import annotations

import collections
import json

import pytest

from engine.cli.main import main
from engine.history.corpus import Vocabulary, generate, latest_time
from engine.history.versions import load_versions
from engine.decisions.ticket import validate_ticket


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_document(load_versions()[-1].data)


@pytest.fixture(scope="module")
def tickets(vocab):
    return list(generate(600, 11, vocab))


def test_same_seed_same_tickets_other_seed_other_tickets(vocab):
    first = [json.dumps(t, sort_keys=True) for t in generate(50, 3, vocab)]
    again = [json.dumps(t, sort_keys=True) for t in generate(50, 3, vocab)]
    other = [json.dumps(t, sort_keys=True) for t in generate(50, 4, vocab)]
    assert first == again
    assert first != other


def test_every_ticket_is_valid(tickets):
    for ticket in tickets:
        validate_ticket(ticket)  # raises TicketError naming the field otherwise


def test_the_mix_covers_statuses_types_categories_and_scenarios(tickets, vocab):
    statuses = collections.Counter(t["status"] for t in tickets)
    assert statuses.most_common(1)[0][0] == "merchant_processing"
    assert len(statuses) >= 8
    assert {t["type"] for t in tickets} == {"refund_only", "return_refund"}
    assert {t["order"]["category"] for t in tickets} == set(vocab.categories)
    assert len({t["scenario"] for t in tickets}) >= 7


def test_tickets_respect_the_policy(tickets, vocab):
    for t in tickets:
        assert t["type"] in vocab.categories[t["order"]["category"]]
        assert isinstance(t["order"]["paid_amount"], int) and t["order"]["paid_amount"] > 0
        assert t["request"]["refund_amount"] <= t["order"]["paid_amount"]
        assert t["created_at"].endswith("+08:00")
        pending = (t.get("negotiation") or {}).get("pending")
        if pending:
            assert pending["reason"] in vocab.scenario_reasons[t["scenario"]][pending["type"]]
            if pending.get("stage") == "awaiting_merchant_receipt":
                assert pending["refund_type"] == t["type"]


def test_latest_time_is_the_last_event(tickets):
    pending = next(t for t in tickets if (t.get("negotiation") or {}).get("pending"))
    assert latest_time(pending) >= pending["negotiation"]["pending"]["proposed_at"][:19]
    plain = next(t for t in tickets if "negotiation" not in t and "return_logistics" not in t)
    assert latest_time(plain) == plain["created_at"]


def test_cli_writes_the_file_deterministically(tmp_path):
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["corpus", "--count", "40", "--seed", "9", "--out", str(one)]) == 0
    assert main(["corpus", "--count", "40", "--seed", "9", "--out", str(two)]) == 0
    assert one.read_bytes() == two.read_bytes()
    assert len(one.read_text(encoding="utf-8").splitlines()) == 40


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    assert main(["corpus", "--count", "0", "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "--count must be at least 1" in capsys.readouterr().err
    assert main(["corpus", "--count", "5", "--out", str(tmp_path / "x.jsonl"), "--version", "1999-01-01"]) == 1
    assert "unknown policy version `1999-01-01`" in capsys.readouterr().err
    assert main(["corpus", "--count", "5", "--out", str(tmp_path / "x.jsonl"), "--from-time", "2024-01-01"]) == 1
    assert "no UTC offset" in capsys.readouterr().err
