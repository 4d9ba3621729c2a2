"""The policy test corpus (rules/tests/*.yaml) over HTTP: every case runs through `HttpEngine`
against one real `aftersale serve` (started as tests/test_service.py starts it), one pytest item
per case (`http:<case name>`), and must get the in-process answer: the same decision, check or
apply result (minus `decision_id`), or the same exception; hence the same outcome.

Plus the adapter's error mapping on inputs the corpus does not hold, and `aftersale test --http`.
"""
from __future__ import annotations

import copy
import json
import shutil

import pytest
from server_support import RULES, Recorder, Server

from engine.api import Engine
from engine.cli.main import main
from engine.core.errors import (EngineError, NoVersionError, PayloadError, TicketError, UnknownActionError,
                           UnknownVersionError)
from engine.policytests.runner import all_rule_ids, run_case
from engine.policytests.files import load_cases
from engine.policytests.http import HttpEngine, ServiceError

CASES = load_cases([RULES / "tests"])
AT = "2024-06-02T10:00:00+08:00"


@pytest.fixture(scope="module")
def library():
    engine = Engine.from_directory(RULES)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("cases-http"), RULES, "--poll", "0")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(server, library):
    engine = HttpEngine(server.url, local=library)  # one keep-alive client for every case
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def known_rules(library):
    return all_rule_ids(library)


@pytest.mark.parametrize("case", CASES, ids=[f"http:{c.name}" for c in CASES])
def test_case_over_http_answers_as_in_process(remote, library, known_rules, case):
    over_http, in_process = Recorder(remote), Recorder(library)
    http = run_case(over_http, case, known_rules)
    local = run_case(in_process, case, known_rules)
    assert over_http.last is not None, http.format()  # the service was asked (no transport crash)
    assert over_http.last == in_process.last, "the service answers otherwise than the library"
    assert (http.outcome, http.error, [m.to_json() for m in http.mismatches]) == \
           (local.outcome, local.error, [m.to_json() for m in local.mismatches])
    if http.outcome == "xfail":  # a declared known issue: reported as in tests/test_policy_cases.py
        pytest.xfail(case.known_issue)
    assert http.passed, "\n" + http.format()


def test_the_corpus_spans_every_kind_of_case_and_expected_errors():
    assert len(CASES) >= 60
    assert {c.kind for c in CASES} == {"decide", "check", "apply"}
    assert {c.expect["error"] for c in CASES if "error" in c.expect} >= {"TicketError", "UnknownVersionError",
                                                                         "NoVersionError"}


# -- the adapter on its own ---------------------------------------------------------------------------

TICKET = copy.deepcopy(next(c.ticket for c in CASES if c.kind == "decide" and "error" not in c.expect))


def raised(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test compares what each side raised
        return type(exc), getattr(exc, "problems", None)
    raise AssertionError("nothing raised")


@pytest.mark.parametrize("kind, kwargs, expected", [
    ("decide", {"actor": "robot", "at": AT}, UnknownActionError),          # envelope schema: /actor
    ("apply", {"answer": "maybe", "at": AT}, UnknownActionError),          # envelope schema: /answer
    ("check", {"action": "fly", "payload": {}, "at": AT}, UnknownActionError),
    ("decide", {"actor": "merchant", "at": "2024-06-02T10:00:00"}, TicketError),   # naive `at`
    ("decide", {"actor": "merchant", "at": AT, "version": ""}, UnknownVersionError),
    ("decide", {"actor": "merchant", "at": AT, "version": "1999-01-01"}, UnknownVersionError),
    ("decide", {"actor": "merchant", "at": "2020-01-01T00:00:00+08:00"}, NoVersionError),
    ("check", {"action": "negotiate", "payload": [1], "at": AT}, PayloadError),
])
def test_refused_input_raises_the_library_exception(remote, library, kind, kwargs, expected):
    call = getattr(remote, kind)
    assert raised(lambda: call(copy.deepcopy(TICKET), **kwargs))[0] is expected
    assert raised(lambda: getattr(library, kind)(copy.deepcopy(TICKET), **kwargs))[0] is expected


@pytest.mark.parametrize("kind, ticket, kwargs", [
    ("decide", dict(TICKET, status="nope"), {"actor": "merchant"}),                     # schema (envelope)
    ("decide", {k: v for k, v in TICKET.items() if k != "status"}, {"actor": "merchant"}),
    ("decide", dict(TICKET, scenario="no_such_scenario"), {"actor": "merchant"}),     # engine (reference)
    ("check", TICKET, {"action": "negotiate", "payload": {"typo": 1}}),                # engine (payload)
])
def test_problems_come_back_located_as_the_library_locates_them(remote, library, kind, ticket, kwargs):
    over_http = raised(lambda: getattr(remote, kind)(copy.deepcopy(ticket), at=AT, **kwargs))
    in_process = raised(lambda: getattr(library, kind)(copy.deepcopy(ticket), at=AT, **kwargs))
    assert over_http == in_process
    assert over_http[1] and all(not p.path.startswith(("/ticket", "/payload")) for p in over_http[1])


def test_answers_drop_decision_id_and_versions_match(remote, library):
    answer = remote.decide(copy.deepcopy(TICKET), "merchant", at=AT)
    assert "decision_id" not in answer
    assert answer == json.loads(library.decide(copy.deepcopy(TICKET), "merchant", at=AT).to_json_bytes())
    assert remote.versions() == library.versions()
    assert remote.bundle_hash == library.bundle_hash


def test_a_service_fault_is_not_an_engine_error(server, library):
    with HttpEngine(server.url + "/nothing", local=library) as wrong_path:
        exc = raised(lambda: wrong_path.decide(copy.deepcopy(TICKET), "merchant", at=AT))[0]
    assert exc is ServiceError and not issubclass(exc, EngineError)  # the runner reports a crash
    with HttpEngine("http://127.0.0.1:9", local=library, timeout=2) as nobody:
        with pytest.raises(ServiceError, match="unreachable"):
            nobody.versions()


# -- aftersale test --http ---------------------------------------------------------------------------------

def summary() -> str:
    known = sum(1 for c in CASES if c.known_issue)
    return f"{len(CASES) - known} passed, 0 failed, {known} known issues ({len(CASES)} cases)"


def test_cli_runs_the_cases_against_the_service(server, capsys):
    assert main(["test", "--http", server.url]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == summary()
    assert err == ""  # the service serves the local rules: no warning


def test_cli_http_json_and_keyword(server, capsys):
    assert main(["test", "--http", server.url, "--format", "json", "-k", "version"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["service"] == server.url and out["failed"] == 0
    assert out["cases"] and all("version" in c["name"] for c in out["cases"])


def test_cli_http_warns_when_the_local_rules_differ(server, tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    newest = sorted(rules.glob("*.yaml"))[-1]
    newest.write_text(newest.read_text(encoding="utf-8") + "# a local edit\n", encoding="utf-8")
    assert main(["test", "--http", server.url, "--rules", str(rules), "-k", "version"]) == 0
    assert "warning" in capsys.readouterr().err


def test_cli_http_unreachable_is_a_clear_error(capsys):
    assert main(["test", "--http", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "cannot use the service" in err and "unreachable" in err and "Traceback" not in err
