"""The typed results (engine/decisions/results.py) write exactly what schemas/{decision,check,apply}
.schema.json say, over many generated tickets, every version, both actors, every answer and a few
payloads; and their mapping access, equality and two JSON forms agree with each other."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest
from referencing import Registry, Resource

from engine.api import Engine
from engine.core.errors import EngineError
from engine.core.timeutil import parse_aware
from engine.decisions.results import ApplyResult, CheckResult, Decision
from engine.history.corpus import Vocabulary, generate, latest_time

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {name: json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
           for name in ("decision.schema.json", "check.schema.json", "apply.schema.json")}
REGISTRY = Registry().with_resources(
    [(name, Resource.from_contents(schema)) for name, schema in SCHEMAS.items()]
    + [(schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()])
VALIDATORS = {kind: jsonschema.Draft202012Validator(SCHEMAS[f"{kind}.schema.json"], registry=REGISTRY)
              for kind in ("decision", "check", "apply")}
PAYLOADS = {
    "negotiate": {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only", "refund_amount": 100},
    "modify_negotiation": {"type": "request_evidence", "reason": "need_photos", "message": "请补充照片"},
    "reject_negotiation": {"reason": ""},
    "agree": {},
}


@pytest.fixture(scope="module")
def engine():
    eng = Engine.from_directory()
    yield eng
    eng.close()


def _questions(engine, version, count):
    vocab = Vocabulary.from_document(engine.document(version))
    for i, ticket in enumerate(generate(count, seed=11, vocab=vocab)):
        yield ticket, parse_aware(latest_time(ticket)) + timedelta(hours=1 + i % 72)


def _valid(kind, result, seen):
    assert isinstance(result, {"decision": Decision, "check": CheckResult, "apply": ApplyResult}[kind])
    as_dict = result.to_json()
    errors = sorted(VALIDATORS[kind].iter_errors(as_dict), key=str)
    assert not errors, f"{kind}: {errors[0].message} at {list(errors[0].absolute_path)}"
    assert json.loads(result.to_json_bytes()) == as_dict  # the two JSON forms are one
    assert result == as_dict and as_dict == result.to_json()  # compares like its JSON, a fresh copy
    seen[kind] = seen.get(kind, 0) + 1


@pytest.mark.parametrize("version", ["2023-12-22", "2024-03-22", "2024-05-31"])
def test_typed_results_follow_the_schemas(engine, version):
    seen: dict[str, int] = {}
    for ticket, at in _questions(engine, version, 150):
        try:
            situation = engine.situation(ticket, at, version)
        except EngineError:
            continue
        for actor in ("merchant", "buyer"):
            _valid("decision", engine.decide(situation, actor), seen)
        for answer in ("accept", "reject", "timeout"):
            _valid("apply", engine.apply(situation, answer), seen)
        for action, payload in PAYLOADS.items():
            _valid("check", engine.check(situation, action, payload), seen)
    assert seen["decision"] > 180 and seen["apply"] > 270 and seen["check"] > 360


def test_a_situation_answers_as_the_raw_ticket_does(engine):
    for ticket, at in list(_questions(engine, "2024-05-31", 60)):
        situation = engine.situation(ticket, at)
        assert engine.decide(situation, "merchant") == engine.decide(ticket, "merchant", at=at)
        assert engine.apply(situation, "timeout") == engine.apply(ticket, "timeout", at=at)
        assert engine.check(situation, "negotiate", PAYLOADS["negotiate"]) == \
            engine.check(ticket, "negotiate", PAYLOADS["negotiate"], at=at)
    with pytest.raises(TypeError):
        engine.decide(situation, "merchant", at=at)  # a situation carries its own time


def test_results_read_like_their_json_and_cannot_be_changed(engine):
    ticket, at = next(_questions(engine, "2024-05-31", 1))
    decision = engine.decide(ticket, "merchant", at=at)
    as_dict = decision.to_json()
    assert list(decision.keys()) == list(as_dict)
    negotiate = decision["actions"]["negotiate"]
    assert negotiate["constraints"]["refund_types"] == as_dict["actions"]["negotiate"]["constraints"]["refund_types"]
    assert ("constraints" in decision["actions"]["agree"]) is ("constraints" in as_dict["actions"]["agree"])
    for denial in decision["actions"]["agree"]["denials"]:
        assert ("unlock" in denial) is (denial.unlock is not None)
    with pytest.raises((AttributeError, TypeError)):
        decision.status = "closed"  # type: ignore[misc]
    as_dict["status"] = "changed"  # the caller's copy: the result itself is untouched
    assert decision["status"] != "changed"
    assert msgspec.json.decode(decision.to_json_bytes())["status"] == decision.status
