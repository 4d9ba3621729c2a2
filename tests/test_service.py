"""The HTTP service, end to end: the real `aftersale serve` in a subprocess, spoken to over HTTP.

`api` (one worker, the bundled rules, decision log on) for the endpoints and their errors; hot
reload (`hup`, `fleet`) is in test_service_reload.py.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import time

import httpx
import pytest

from engine.api import Engine

from server_support import ADMIN, AT, LATEST, REPO, RULES, TICKET, Server, error_of

WECHAT_FIXTURES = REPO / "tests" / "fixtures" / "wechat"

PENDING = dict(copy.deepcopy(TICKET), ticket_id="AS-1002", status="awaiting_buyer_response",
               negotiation={"count": 1, "last_outcome": "pending",
                            "pending": {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                                        "refund_amount": 30000, "proposed_at": "2024-06-01T12:00:00+08:00",
                                        "edits": 0, "evidence_count": 1}})


@pytest.fixture(scope="module")
def library() -> Engine:
    return Engine.from_directory(RULES)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    server = Server(tmp, RULES, "--poll", "0", "--decision-log", str(tmp / "decisions.jsonl"))
    server.decision_log = tmp / "decisions.jsonl"
    server.client = httpx.Client(base_url=server.url, timeout=10)
    yield server
    server.client.close()
    server.stop()


def post(server: Server, path: str, body) -> httpx.Response:
    return server.client.post(path, json=body)


def without_id(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "decision_id"}


def jsonable(value):
    return json.loads(value.to_json_bytes() if hasattr(value, "to_json_bytes") else json.dumps(value, ensure_ascii=False))


# -- decisions equal the library's ------------------------------------------------------------------

@pytest.mark.parametrize("ticket, actor", [(TICKET, "merchant"), (TICKET, "buyer"), (PENDING, "merchant"),
                                           (PENDING, "buyer")])
def test_decide_equals_library(api, library, ticket, actor):
    response = post(api, "/v1/decide", {"ticket": ticket, "actor": actor, "at": AT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision_id"] == response.headers["x-decision-id"]
    assert without_id(body) == jsonable(library.decide(ticket, actor, at=AT))


def test_decide_response_follows_the_decision_schema(api):
    import jsonschema

    from engine.core.resources import SCHEMAS_DIR
    from engine.service.validation import SchemaStore

    store = SchemaStore(SCHEMAS_DIR)
    validator = jsonschema.Draft202012Validator(store.by_file("decision.schema.json"), registry=store.registry())
    for ticket in (TICKET, PENDING):
        body = post(api, "/v1/decide", {"ticket": ticket, "actor": "merchant", "at": AT}).json()
        assert [e.message for e in validator.iter_errors(body)] == []


def test_check_and_apply_equal_library(api, library):
    payload = {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
               "refund_amount": 50000, "evidence_count": 0}
    response = post(api, "/v1/check", {"ticket": TICKET, "action": "negotiate", "payload": payload, "at": AT})
    assert response.status_code == 200, response.text
    assert without_id(response.json()) == jsonable(library.check(TICKET, "negotiate", payload, at=AT))
    assert {v["code"] for v in response.json()["violations"]} >= {"AMOUNT_ABOVE_PAID"}

    for answer in ("accept", "reject"):
        response = post(api, "/v1/apply", {"ticket": PENDING, "answer": answer, "at": AT})
        assert response.status_code == 200, response.text
        assert without_id(response.json()) == jsonable(library.apply(PENDING, answer, at=AT))


def test_explicit_version_is_used(api, library):
    response = post(api, "/v1/decide", {"ticket": TICKET, "actor": "merchant", "at": AT, "version": "2023-12-22"})
    assert response.status_code == 200, response.text
    assert response.json()["policy"]["version"] == "2023-12-22"
    assert without_id(response.json()) == jsonable(library.decide(TICKET, "merchant", at=AT, version="2023-12-22"))


def test_batch_answers_each_item_and_isolates_engine_errors(api, library):
    bad = dict(TICKET, scenario="no_such_scenario")
    items = [{"ticket": TICKET, "actor": "merchant", "at": AT}, {"ticket": bad, "actor": "merchant", "at": AT},
             {"ticket": PENDING, "actor": "buyer", "at": AT}]
    response = post(api, "/v1/decide/batch", {"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["failed"]) == (3, 1)
    assert without_id(body["results"][0]) == jsonable(library.decide(TICKET, "merchant", at=AT))
    assert body["results"][1]["error"]["status"] == 422
    assert body["results"][1]["error"]["problems"][0]["path"] == "/items/1/ticket/scenario"
    assert without_id(body["results"][2]) == jsonable(library.decide(PENDING, "buyer", at=AT))
    assert len({r["decision_id"] for r in (body["results"][0], body["results"][2])}) == 2

    too_many = post(api, "/v1/decide/batch", {"items": [items[0]] * 101})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["problems"] == [
        {"path": "/items", "code": "too_many", "message": "`items` holds more than 100 entries"}]


def test_wechat_decide_equals_library(api, library):
    from engine.wechat import platform_view, ticket_from_platform

    fixture = json.loads((WECHAT_FIXTURES / "status_MERCHANT_PROCESSING.json").read_text(encoding="utf-8"))
    response = post(api, "/v1/wechat/decide", dict(fixture, actor="merchant", at=AT))
    assert response.status_code == 200, response.text
    ticket = ticket_from_platform(fixture["order"], fixture["context"], policy=library)
    assert without_id(response.json()) == jsonable(platform_view(library.decide(ticket, "merchant", at=AT)))

    broken = copy.deepcopy(fixture)
    del broken["context"]["paid_amount"]
    response = post(api, "/v1/wechat/decide", dict(broken, actor="merchant", at=AT))
    assert response.status_code == 422
    assert "/context/paid_amount" in [p["path"] for p in response.json()["error"]["problems"]]

    unknown = copy.deepcopy(fixture)
    unknown["context"]["scenario"] = "no_such_scenario"
    error = error_of(post(api, "/v1/wechat/decide", dict(unknown, actor="merchant", at=AT)), 422)
    assert [p["path"] for p in error["problems"]] == ["/context/scenario"]


def test_wechat_check_equals_library(api, library):
    from engine.wechat import platform_view, proposal_from_platform, ticket_from_platform

    request = json.loads(next((WECHAT_FIXTURES / "requests").glob("*.json")).read_text(encoding="utf-8"))
    order = json.loads((WECHAT_FIXTURES / f"{request['order_fixture']}.json").read_text(encoding="utf-8"))
    at = order.get("at", AT)
    response = post(api, "/v1/wechat/check", {"order": order["order"], "context": order["context"],
                                              "body": request["body"], "at": at})
    assert response.status_code == 200, response.text
    ticket = ticket_from_platform(order["order"], order["context"], policy=library)
    action, payload = proposal_from_platform(request["body"], ticket, library.policy(library.version_at(at)))
    assert without_id(response.json()) == jsonable(platform_view(library.check(ticket, action, payload, at=at)))

    bad = post(api, "/v1/wechat/check", {"order": order["order"], "context": order["context"],
                                         "body": dict(request["body"], update_reason_type=999), "at": at})
    assert [p["path"] for p in error_of(bad, 422)["problems"]] == ["/body/update_reason_type"]


def test_wechat_check_of_acceptapply_and_rejectapply_bodies(api):
    """Issue 10 item 17: the platform's own errcodes for the merchant's agree / reject calls."""
    fixture = json.loads((WECHAT_FIXTURES / "status_MERCHANT_PROCESSING.json").read_text(encoding="utf-8"))
    tid = fixture["order"]["after_sale_order"]["after_sale_order_id"]
    base = {"order": fixture["order"], "context": fixture["context"], "at": AT}
    reject = post(api, "/v1/wechat/check", dict(base, body={"after_sale_order_id": tid, "reject_reason_type": 1}))
    assert reject.status_code == 200, reject.text
    assert reject.json()["action"] == "reject" and reject.json()["platform"]["errcode"] == 10021068
    accept = post(api, "/v1/wechat/check", dict(base, body={"after_sale_order_id": tid}, endpoint="acceptapply"))
    assert accept.status_code == 200, accept.text
    assert accept.json()["platform"] == {"endpoint": "acceptapply", "errcode": 0}
    complaint = json.loads((WECHAT_FIXTURES / "complaint_MERCHANT_REJECT_REFUND.json").read_text(encoding="utf-8"))
    open_complaint = post(api, "/v1/wechat/check", {"order": complaint["order"], "context": complaint["context"],
                                                    "at": AT, "endpoint": "rejectapply",
                                                    "body": {"after_sale_order_id": "2000002468828220",
                                                             "reject_reason_type": 6}})
    assert open_complaint.json()["platform"]["errcode"] == 10021051, open_complaint.text
    bad = post(api, "/v1/wechat/check", dict(base, body={"after_sale_order_id": tid}, endpoint="nosuch"))
    assert bad.status_code == 422  # the request schema names the three endpoints


def test_wechat_epoch_milliseconds_are_a_422_not_a_500(api):
    fixture = json.loads((WECHAT_FIXTURES / "status_MERCHANT_PROCESSING.json").read_text(encoding="utf-8"))
    fixture["order"]["after_sale_order"]["create_time"] *= 1000
    error = error_of(post(api, "/v1/wechat/decide", dict(fixture, actor="merchant", at=AT)), 422)
    assert [(p["code"], p["path"]) for p in error["problems"]] == [
        ("epoch_milliseconds", "/order/after_sale_order/create_time")]


def test_decision_log_line_matches_response(api):
    body = {"ticket": TICKET, "actor": "merchant", "at": AT}
    decision_id = post(api, "/v1/decide", body).json()["decision_id"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    deadline = time.monotonic() + 5  # the log is flushed about once a second
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in api.decision_log.read_text(encoding="utf-8").splitlines()]
        entry = next((e for e in lines if e["decision_id"] == decision_id), None)
        if entry:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("decision not logged")
    assert entry["input_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert entry["policy_version"] == LATEST and entry["actor"] == "merchant" and entry["ticket_id"] == "AS-1001"
    assert entry["outcome"]["reject"] == ["NEGOTIATION_REQUIRED_FIRST"]
    assert entry["outcome"]["agree"] == "allowed"
    assert entry["bundle_hash"] == api.client.get("/readyz", headers=ADMIN).json()["bundle_hash"]


# -- bad input: right status, every problem located -----------------------------------------------

@pytest.mark.parametrize("raw", [b'{"ticket": ', b"", b"\xff\xfe{", b'{"actor": NaN}', b"[" * 100000])
def test_malformed_json_is_400(api, raw):
    error = error_of(api.client.post("/v1/decide", content=raw), 400)
    assert error["code"] == "malformed_json"


def test_schema_problems_are_all_reported_with_pointers(api):
    ticket = copy.deepcopy(TICKET)
    ticket["order"]["paid_amount"] = "400"
    del ticket["status"]
    error = error_of(post(api, "/v1/decide", {"ticket": ticket, "actor": "robot", "at": "tomorrow", "extra": 1}), 422)
    assert error["code"] == "invalid_request"
    assert {(p["path"], p["code"]) for p in error["problems"]} == {
        ("/actor", "unknown_value"), ("/at", "bad_time"), ("/extra", "unknown_field"),
        ("/ticket/order/paid_amount", "wrong_type"), ("/ticket/status", "missing_field")}
    assert error_of(post(api, "/v1/decide", [1, 2]), 422)["problems"][0]["path"] == ""


def test_a_naive_time_gets_the_same_code_over_http_as_in_the_library(api):
    ticket = copy.deepcopy(TICKET)
    ticket["created_at"] = "2024-06-01T10:00:00"
    error = error_of(post(api, "/v1/decide", {"ticket": ticket, "actor": "merchant"}), 422)
    assert [(p["path"], p["code"]) for p in error["problems"]] == [("/ticket/created_at", "naive_time")]


def test_engine_input_errors_are_rerooted_in_the_body(api):
    error = error_of(post(api, "/v1/decide", {"ticket": dict(TICKET, scenario="nope"), "actor": "merchant"}), 422)
    assert (error["code"], error["problems"][0]["path"]) == ("invalid_ticket", "/ticket/scenario")
    error = error_of(post(api, "/v1/check", {"ticket": TICKET, "action": "negotiate", "payload": {"typo": 1}}), 422)
    assert error["code"] == "invalid_payload"
    assert "/payload/typo" in [p["path"] for p in error["problems"]]
    assert len(error["problems"]) == len({json.dumps(p, sort_keys=True) for p in error["problems"]})


def test_body_over_limit_is_413(api):
    big = {"ticket": TICKET, "actor": "merchant", "padding": "x" * (1 << 20)}
    assert error_of(post(api, "/v1/decide", big), 413)["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit applies to the streamed bytes
        yield b'{"padding": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'
    assert error_of(api.client.post("/v1/decide", content=chunks()), 413)["code"] == "body_too_large"


def test_unknown_version_route_and_method(api):
    assert error_of(post(api, "/v1/decide", {"ticket": TICKET, "actor": "merchant", "version": "1999-01-01"}),
                    404)["code"] == "unknown_version"
    assert error_of(api.client.get("/v1/versions/1999-01-01"), 404)["code"] == "unknown_version"
    assert error_of(api.client.get("/v1/diff", params={"from": "2023-12-22", "to": "1999"}), 404)["code"] == "unknown_version"
    assert error_of(api.client.get("/v1/nothing"), 404)["code"] == "not_found"
    response = api.client.get("/v1/decide")
    assert error_of(response, 405)["code"] == "method_not_allowed" and "POST" in response.headers["allow"]


# -- versions, documents, diff, changelog, health, OpenAPI -----------------------------------------

def test_versions_and_documents(api, library):
    body = api.client.get("/v1/versions", params={"at": "2024-04-01T00:00:00+08:00"}).json()
    assert [v["version"] for v in body["versions"]] == [v.version for v in library.versions()]
    assert body["in_force"] == "2024-03-22" and body["bundle_hash"] == library.bundle_hash
    assert [v["version"] for v in body["versions"] if v["in_force"]] == ["2024-03-22"]
    document = api.client.get(f"/v1/versions/{LATEST}").json()
    assert document["version"] == LATEST and document == jsonable(library.document(LATEST))


def test_diff_and_changelog(api):
    from engine.policy.diff import render as diffrender
    from engine.policy.diff.semantic import diff_documents
    from engine.history.versions import resolve

    body = api.client.get("/v1/diff", params={"from": "2024-03-22", "to": "2024-04-22"}).json()
    old, new = resolve("2024-03-22", RULES), resolve("2024-04-22", RULES)
    expected = jsonable(diffrender.to_json(diff_documents(old.data, new.data), "2024-03-22", "2024-04-22"))
    assert {k: v for k, v in body.items() if k != "bundle_hash"} == expected and body["count"] > 0
    missing = error_of(api.client.get("/v1/diff", params={"from": "2024-03-22"}), 422)
    assert missing["problems"][0]["path"] == "/to"
    changelog = api.client.get("/v1/changelog").json()
    assert [v["version"] for v in changelog["versions"]][0] == "2023-12-22"
    assert changelog["declared_count"] > 0


def test_health_ready_and_openapi(api):
    assert api.client.get("/healthz").json()["status"] == "ok"
    ready = api.client.get("/readyz", headers=ADMIN).json()
    assert ready["ready"] and ready["versions"][-1] == LATEST and ready["last_reload_error"] is None
    spec = api.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    request_schema = spec["paths"]["/v1/decide"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": "#/components/schemas/requests.decide"}
    # generated from the files: the ticket component is the ticket schema, references rewritten
    ticket_file = json.loads((REPO / "schemas" / "ticket.schema.json").read_text(encoding="utf-8"))
    assert spec["components"]["schemas"]["ticket"]["required"] == ticket_file["required"]
    for ref in re.findall(r'"\$ref":\s*"([^"]+)"', json.dumps(spec)):
        node = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # every reference resolves inside the document


# -- in-process: the parts a real server cannot be made to show on demand -------------------------

class FakeEngine:
    """Stands in for Engine where the test needs a failure or a count the real one cannot give."""

    bundle_hash = "f" * 64

    def __init__(self, name: str = "fake") -> None:
        self.name, self.closed = name, 0

    def versions(self):
        return []

    def decide(self, *args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    def close(self) -> None:
        self.closed += 1


def test_a_bug_is_a_json_500_without_internals(tmp_path):
    import asyncio

    from engine.core.resources import SCHEMAS_DIR
    from engine.service.app import create_app
    from engine.service.settings import ServiceSettings

    app = create_app(ServiceSettings(rules_dir=tmp_path, poll_interval=0, schemas_dir=SCHEMAS_DIR), engine=FakeEngine())

    async def scenario() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await client.post("/v1/decide", json={"ticket": TICKET, "actor": "merchant"})

    response = asyncio.run(scenario())
    error = error_of(response, 500)
    assert error["code"] == "internal_error" and error["incident_id"]
    assert "secret" not in response.text and "Traceback" not in response.text


def test_old_engine_is_closed_after_its_last_request_and_failures_keep_it(tmp_path):
    import asyncio

    from engine.service.reload import EngineHolder

    engines = iter([FakeEngine("second")])

    def loader(path):
        engine = next(engines, None)
        if engine is None:
            raise ValueError("broken rules")
        return engine

    async def scenario():
        first = FakeEngine("first")
        holder = EngineHolder.start(tmp_path, loader, engine=first)
        with holder.lease() as generation:          # a request in flight on the first engine
            outcome = await holder.reload("test", force=True)
            assert outcome.status == "reloaded" and holder.current.engine.name == "second"
            assert generation.engine is first and first.closed == 0   # still in use: not released
        assert first.closed == 1                       # released when that request ended
        failed = await holder.reload("test", force=True)
        assert failed.status == "failed" and holder.current.engine.name == "second"
        assert holder.last_error["message"] == "broken rules" and holder.current.engine.closed == 0

    asyncio.run(scenario())


def test_decision_log_lines_from_two_writers_never_interleave(tmp_path):
    from engine.service.decision_log import DecisionLog

    path = tmp_path / "log.jsonl"
    logs = [DecisionLog(str(path)), DecisionLog(str(path))]
    for i in range(3000):
        logs[i % 2].record(decision_id=f"d{i}", kind="decide", body={"i": i, "pad": "字" * 50},
                           result={"actions": {"agree": {"allowed": True}}}, version="v", bundle_hash="h")
    for log in logs:
        log.close()
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(e["decision_id"] for e in entries) == sorted(f"d{i}" for i in range(3000))
