"""One way to ask a case: `ask(engine, Question)` for any EngineLike (in process or over HTTP)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.api import Engine
from engine.core.errors import EngineError
from engine.policytests.http import HttpEngine
from engine.questions import EngineLike, Question, ask

ROOT = Path(__file__).resolve().parents[1]
TICKET = json.loads((ROOT / "examples" / "tickets" / "new-not-received.json").read_text(encoding="utf-8"))
AT = "2024-06-02T10:00:00+08:00"


@pytest.fixture(scope="module")
def engine():
    with_rules = Engine.from_directory(None)
    yield with_rules
    with_rules.close()


def test_the_engine_and_the_http_client_are_both_engines(engine):
    assert isinstance(engine, EngineLike)
    with HttpEngine("http://127.0.0.1:9", local=engine) as remote:  # nothing is sent
        assert isinstance(remote, EngineLike)
    assert not isinstance(object(), EngineLike)


def test_ask_answers_what_the_engine_answers(engine):
    question = Question.decide(TICKET, "merchant", AT)
    assert ask(engine, question) == engine.decide(copy.deepcopy(TICKET), "merchant", at=AT)
    payload = json.loads((ROOT / "examples" / "payloads" / "negotiate-amount.json").read_text(encoding="utf-8"))
    checked = ask(engine, Question.check(TICKET, "negotiate", payload, AT))
    assert checked == engine.check(copy.deepcopy(TICKET), "negotiate", payload, at=AT)
    assert checked["action"] == "negotiate"


def test_a_question_pinned_to_a_version_is_answered_under_it(engine):
    first, *_, last = [v.version for v in engine.versions()]
    question = Question.decide(TICKET, "merchant", AT)
    assert ask(engine, question.under(first))["policy"]["version"] == first
    assert ask(engine, question.under(last))["policy"]["version"] == last
    assert question.version is None  # questions are values: `under` made new ones


@pytest.mark.parametrize("question", [
    Question.decide(copy.deepcopy(TICKET), "merchant", AT),
    Question.decide(copy.deepcopy(TICKET), "buyer", AT, "2023-12-22"),
    Question.check(copy.deepcopy(TICKET), "negotiate", {"type": "modify_request"}, AT),
    Question.check(copy.deepcopy(TICKET), "reject", {}, AT),
    Question.apply(copy.deepcopy(TICKET), "accept", AT),
], ids=lambda q: f"{q.kind}-{q.actor or q.action or q.answer}")
def test_the_engine_never_changes_what_it_is_asked(engine, question):
    """`ask` passes tickets and payloads uncopied: this is the contract that makes that safe."""
    before = copy.deepcopy((question.ticket, question.payload))
    try:
        ask(engine, question)
    except EngineError:
        pass  # a refused question must not change its input either
    assert (question.ticket, question.payload) == before
