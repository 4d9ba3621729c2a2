"""A service worker builds what its supervisor validated: compile and open (durable_rules may still
refuse a ruleset there), but neither the cross-check nor the outcome proof again; an engine built
so never lends its versions to a build that asks for the proofs. Counted, not timed."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from engine.api import Engine
from engine.pipeline import stages
from engine.policy.bundle import load_directory
from engine.rules.crosscheck import PASSED_CROSSCHECKS

RULES = Path(__file__).resolve().parents[1] / "rules"


@pytest.fixture
def proofs(monkeypatch):
    calls = {"outcomes": 0}
    real = stages.outcome_completeness

    def counted(*args):
        calls["outcomes"] += 1
        return real(*args)

    monkeypatch.setattr(stages, "outcome_completeness", counted)
    return calls


def test_a_worker_build_runs_neither_proof_again(proofs):
    bundle = load_directory(RULES)
    runs = PASSED_CROSSCHECKS.runs + PASSED_CROSSCHECKS.remembered
    worker = Engine(pickle.loads(pickle.dumps(bundle)), crosscheck_facts=0, check_outcomes=False)
    try:
        assert proofs["outcomes"] == 0
        assert PASSED_CROSSCHECKS.runs + PASSED_CROSSCHECKS.remembered == runs
        assert len(worker.built_versions) == len(bundle.documents)
        full = Engine(bundle, reuse=worker)     # asks for both proofs: builds every version itself
        try:
            assert full.reused_versions == ()
            assert proofs["outcomes"] == len(bundle.documents)
            again = Engine(bundle, crosscheck_facts=0, check_outcomes=False, reuse=full)  # proved more: lent
            assert again.built_versions == () and len(again.reused_versions) == len(bundle.documents)
            again.close()
        finally:
            full.close()
    finally:
        worker.close()


def test_a_broken_outcome_table_is_still_refused_where_it_is_validated(proofs, monkeypatch):
    from engine.core.errors import PolicyError

    bundle = load_directory(RULES)
    document = bundle.documents[-1]
    monkeypatch.setattr(stages, "outcome_completeness",
                        lambda d, p, c: iter([d.diagnostic("outcome_missing", "/rules", "none")]))
    with pytest.raises(PolicyError):
        stages.build_version(document)
    stages.build_version(document, crosscheck_facts=0, check_outcomes=False).close()
