"""One way to ask a case: `ask(engine, Question)` for any EngineLike (in process or over HTTP)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.api import Engine
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


def test_asking_never_changes_the_question(engine):
    class Scribbler:  # an EngineLike that mutates what it is given, as a buggy engine could
        def decide(self, ticket, actor, at=None, version=None):
            ticket["status"] = "scribbled"
            return ticket

        check = apply = decide

        def versions(self):
            return []

    ticket = copy.deepcopy(TICKET)
    question = Question.decide(ticket, "merchant", AT)
    assert ask(Scribbler(), question)["status"] == "scribbled"
    assert ticket == TICKET and question.ticket == TICKET
