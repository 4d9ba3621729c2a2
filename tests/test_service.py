"""The HTTP service, end to end: the real `aftersale serve` in a subprocess, spoken to over HTTP.

Three servers: `api` (one worker, the bundled rules, decision log on) for the endpoints and their
errors; `hup` (one worker, polling off) for SIGHUP and POST /admin/reload; `fleet` (two workers,
polling every 0.2 s) for reloads under concurrent load. Each reload test edits its own copy of the
rules directory.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from engine.api import Engine

from server_support import ADMIN, REPO, RULES, Server

LATEST = "2024-05-31"
WECHAT_FIXTURES = REPO / "tests" / "fixtures" / "wechat"
REJECT_MESSAGE = "当前售后场景不支持直接拒绝，需先使用「售后协商」与买家沟通"

TICKET = {
    "ticket_id": "AS-1001", "type": "refund_only", "status": "merchant_processing",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
}
PENDING = dict(copy.deepcopy(TICKET), ticket_id="AS-1002", status="awaiting_buyer_response",
               negotiation={"count": 1, "last_outcome": "pending",
                            "pending": {"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                                        "refund_amount": 30000, "proposed_at": "2024-06-01T12:00:00+08:00",
                                        "edits": 0, "evidence_count": 1}})
AT = "2024-06-02T10:00:00+08:00"


def copy_rules(target: Path) -> Path:
    target.mkdir()
    for path in RULES.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


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

def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


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


# -- reload: SIGHUP and admin (one worker, no polling) ---------------------------------------------

def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def reword_reject_message(rules: Path, new: str) -> None:
    """A valid policy change: the message in every version that has the rule (changing it in one
    version only would be an undeclared change between versions, which the loader refuses)."""
    files = [p for p in sorted(rules.glob("*.yaml")) if REJECT_MESSAGE in p.read_text(encoding="utf-8")]
    assert files
    for path in files:
        replace_in(path, REJECT_MESSAGE, new)


def reject_message(url: str) -> str:
    response = httpx.post(url + "/v1/decide", json={"ticket": TICKET, "actor": "merchant", "at": AT},
                          headers={"connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["actions"]["reject"]["denials"][0]["message"]


@pytest.fixture()
def hup(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    server = Server(tmp_path, rules, "--poll", "0")
    server.rules = rules
    yield server
    server.stop()


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sighup_reloads(hup):
    before = httpx.get(hup.url + "/readyz", headers=ADMIN).json()
    reword_reject_message(hup.rules, "经 SIGHUP 重新加载的文案")
    time.sleep(0.3)
    assert reject_message(hup.url) == REJECT_MESSAGE  # polling is off: nothing happens by itself
    hup.signal(signal.SIGHUP)
    wait_for(lambda: httpx.get(hup.url + "/readyz", headers=ADMIN).json()["generation"] == before["generation"] + 1, what="reload")
    ready = httpx.get(hup.url + "/readyz", headers=ADMIN).json()
    assert ready["bundle_hash"] != before["bundle_hash"] and ready["last_reload"]["reason"] == "SIGHUP"
    assert reject_message(hup.url) == "经 SIGHUP 重新加载的文案"


def test_admin_reload_reports_a_broken_bundle_and_keeps_serving(hup):
    (hup.rules / f"{LATEST}.yaml").write_text("version: [unclosed\n", encoding="utf-8")
    response = httpx.post(hup.url + "/admin/reload", headers=ADMIN)
    error = error_of(response, 422)
    assert error["code"] == "reload_failed" and error["problems"]
    ready = httpx.get(hup.url + "/readyz", headers=ADMIN).json()
    assert ready["generation"] == 1 and ready["last_reload_error"]["code"] == "PolicyError"
    assert reject_message(hup.url) == REJECT_MESSAGE


def test_a_reload_that_loads_but_cannot_answer_every_buyer_keeps_the_old_policy(hup):
    """Past the loader: the outcome rule for accepting an invitation to cancel is removed from every
    version (so no version differs from the next and the files load), but then `apply` could not
    answer such a buyer. The build refuses it exactly as `aftersale validate` does."""
    for path in hup.rules.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        block = re.search(r"(?ms)^  - id: outcome\.accept\.cancel\n.*?(?=^  - id: |\Z)", text).group(0)
        path.write_text(text.replace(block, ""), encoding="utf-8")
    error = error_of(httpx.post(hup.url + "/admin/reload", headers=ADMIN), 422)
    assert error["code"] == "reload_failed"
    assert {p["code"] for p in error["problems"]} == {"outcome_missing"}
    assert "`accept` on a `invite_cancel` proposal" in error["problems"][0]["message"]
    ready = httpx.get(hup.url + "/readyz", headers=ADMIN).json()
    assert ready["generation"] == 1 and ready["last_reload_error"]["code"] == "PolicyError"
    assert reject_message(hup.url) == REJECT_MESSAGE


def test_removing_the_version_in_force_is_refused_unless_declared(hup):
    (hup.rules / f"{LATEST}.yaml").unlink()
    hup.signal(signal.SIGHUP)
    wait_for(lambda: (httpx.get(hup.url + "/readyz", headers=ADMIN).json()["last_reload_error"] or {}).get("code")
             == "undeclared_removal", what="the refusal")
    ready = httpx.get(hup.url + "/readyz", headers=ADMIN).json()
    assert ready["generation"] == 1 and LATEST in ready["versions"] and ready["last_reload"]["status"] == "refused"
    assert error_of(httpx.post(hup.url + "/admin/reload", headers=ADMIN), 409)["code"] == "undeclared_removal"
    assert reject_message(hup.url) == REJECT_MESSAGE
    response = httpx.post(hup.url + "/admin/reload", headers=ADMIN, json={"remove": [LATEST]})
    assert response.status_code == 200 and response.json()["status"] == "reloaded", response.text
    assert LATEST not in httpx.get(hup.url + "/readyz", headers=ADMIN).json()["versions"]


def test_admin_needs_the_token_with_one_worker_too_and_readyz_hides_details_without_it(hup):
    assert error_of(httpx.post(hup.url + "/admin/reload"), 401)["code"] == "unauthorized"
    assert error_of(httpx.post(hup.url + "/admin/reload", headers={"authorization": "Bearer wrong"}), 401)
    public = httpx.get(hup.url + "/readyz").json()
    assert public["ready"] is True and "rules_dir" not in public and "last_reload_error" not in public
    assert str(hup.rules) not in json.dumps(public)
    assert httpx.get(hup.url + "/readyz", headers=ADMIN).json()["rules_dir"] == str(hup.rules.resolve())


# -- reload under load: two workers, polling -------------------------------------------------------

@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    rules = copy_rules(tmp / "rules")
    server = Server(tmp, rules, "--workers", "2", "--poll", "0.2")
    server.wait_ready(workers=2)
    server.rules = rules
    yield server
    server.stop()


class Load:
    """Clients deciding in a loop on keep-alive connections while the test reloads."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url, self.stop, self.results = url, threading.Event(), []
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/v1/decide", json={"ticket": TICKET, "actor": "merchant", "at": AT})
                    message = response.json()["actions"]["reject"]["denials"][0]["message"] \
                        if response.status_code == 200 else response.text
                    self.results.append((response.status_code, message))
                except Exception as exc:  # noqa: BLE001 - recorded as a failure
                    self.results.append((0, repr(exc)))

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def ready_of_every_worker(server: Server, workers: int = 2) -> dict[int, dict]:
    seen: dict[int, dict] = {}
    for _ in range(40):
        body = httpx.get(server.url + "/readyz", headers={"connection": "close", **ADMIN}).json()
        seen[body["pid"]] = body
        if len(seen) == workers:
            break
    return seen


def test_broken_rules_keep_the_old_policy_serving_under_load(fleet):
    path = fleet.rules / f"{LATEST}.yaml"
    original = path.read_text(encoding="utf-8")
    with Load(fleet.url) as load:
        time.sleep(0.3)
        path.write_text(original.replace("rules:", "rules: [this is not yaml", 1), encoding="utf-8")
        wait_for(lambda: all(r["last_reload_error"] for r in ready_of_every_worker(fleet).values())
                 and len(ready_of_every_worker(fleet)) == 2, what="both workers to report the failed reload")
        time.sleep(0.3)
    assert load.results and all(status == 200 for status, _ in load.results), load.results[:3]
    assert {message for _, message in load.results} == {REJECT_MESSAGE}
    path.write_text(original, encoding="utf-8")  # back to what is served: the error clears
    wait_for(lambda: not any(r["last_reload_error"] for r in ready_of_every_worker(fleet).values()),
             what="the error to clear")


def test_good_reload_switches_without_a_failed_request(fleet):
    before = {r["bundle_hash"] for r in ready_of_every_worker(fleet).values()}
    with Load(fleet.url) as load:
        time.sleep(0.3)
        reword_reject_message(fleet.rules, "热更新后的文案")
        wait_for(lambda: all(reject_message(fleet.url) == "热更新后的文案" for _ in range(6)), what="new policy")
        time.sleep(0.3)
    assert load.results and all(status == 200 for status, _ in load.results), \
        [r for r in load.results if r[0] != 200][:3]
    messages = [message for _, message in load.results]
    assert set(messages) == {REJECT_MESSAGE, "热更新后的文案"}
    assert messages[-1] == "热更新后的文案"
    after = ready_of_every_worker(fleet)
    assert len(after) == 2 and not ({r["bundle_hash"] for r in after.values()} & before)


def test_sighup_to_the_supervisor_reaches_every_worker(fleet):
    generations = {pid: r["generation"] for pid, r in ready_of_every_worker(fleet).items()}
    fleet.signal(signal.SIGHUP)  # rules unchanged: each worker answers "unchanged", none restarts
    wait_for(lambda: all((r["last_reload"] or {}).get("reason") == "SIGHUP"
                         for r in ready_of_every_worker(fleet).values()), what="every worker to see SIGHUP")
    after = ready_of_every_worker(fleet)
    assert set(after) == set(generations) and {p: r["generation"] for p, r in after.items()} == generations
    assert {r["last_reload"]["status"] for r in after.values()} == {"unchanged"}
    assert os.kill(fleet.process.pid, 0) is None  # the supervisor is still up



def test_admin_reload_moves_every_worker_together(fleet):
    """The supervisor validates once and hands the bundle to both workers; when POST /admin/reload
    answers, every worker already serves the new generation (before: 1–2 s of mixed bundles)."""
    unchanged = httpx.post(fleet.url + "/admin/reload", headers=ADMIN)
    assert unchanged.status_code == 200 and unchanged.json()["status"] == "unchanged"  # no rebuild for nothing
    before = ready_of_every_worker(fleet)
    current = reject_message(fleet.url)   # earlier tests may have reworded it
    for path in fleet.rules.glob("*.yaml"):
        path.write_text(path.read_text(encoding="utf-8").replace(current, "一起切换的文案"), encoding="utf-8")
    response = httpx.post(fleet.url + "/admin/reload", headers=ADMIN, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "reloaded"
    after = ready_of_every_worker(fleet)
    assert len(after) == 2
    assert {r["generation"] for r in after.values()} == {body["generation"]}
    assert {r["bundle_hash"] for r in after.values()} == {body["bundle_hash"]}
    assert body["generation"] > max(r["generation"] for r in before.values())
    assert all(reject_message(fleet.url) == "一起切换的文案" for _ in range(6))


def test_removing_a_version_in_force_needs_a_declaration_in_every_worker(fleet):
    path = fleet.rules / f"{LATEST}.yaml"
    saved = path.read_bytes()
    before = ready_of_every_worker(fleet)
    generation = {r["generation"] for r in before.values()}
    path.unlink()   # the version in force now: the poll notices, the supervisor refuses
    wait_for(lambda: all((r["last_reload_error"] or {}).get("code") == "undeclared_removal"
                         for r in ready_of_every_worker(fleet).values()), what="both workers to report the refusal")
    after = ready_of_every_worker(fleet)
    assert {r["generation"] for r in after.values()} == generation and all(LATEST in r["versions"] for r in after.values())
    refused = httpx.post(fleet.url + "/admin/reload", headers=ADMIN, timeout=60)
    error = error_of(refused, 409)
    assert error["code"] == "undeclared_removal" and error["problems"][0]["path"] == "/remove"
    assert LATEST in error["message"]
    declared = httpx.post(fleet.url + "/admin/reload", headers=ADMIN, json={"remove": [LATEST]}, timeout=60)
    assert declared.status_code == 200 and declared.json()["status"] == "reloaded", declared.text
    moved = ready_of_every_worker(fleet)
    assert all(LATEST not in r["versions"] and r["last_reload_error"] is None for r in moved.values())
    path.write_bytes(saved)  # adding a version back needs no declaration
    wait_for(lambda: all(LATEST in r["versions"] for r in ready_of_every_worker(fleet).values()), what="restore")


def metric_samples(url: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", headers={"connection": "close"}).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and all(dict(pairs).get(k) == v for k, v in labels.items()))


def test_metrics_are_summed_across_workers(fleet):
    # a reload of its own (rules unchanged: answered `unchanged`), so the reload counter does not
    # depend on which tests ran before on this fleet
    assert httpx.post(fleet.url + "/admin/reload", headers=ADMIN, timeout=60).status_code == 200
    before = metric_samples(fleet.url)
    for _ in range(10):   # new connections: the kernel spreads them over both workers
        response = httpx.post(fleet.url + "/v1/decide", json={"ticket": TICKET, "actor": "merchant", "at": AT},
                              headers={"connection": "close"})
        assert response.status_code == 200
    assert httpx.post(fleet.url + "/v1/decide", json={"actor": "merchant"}).status_code == 422
    after = metric_samples(fleet.url)
    decided = {"kind": "decide", "actor": "merchant", "version": LATEST}
    assert total(after, "aftersale_decisions_total", **decided) - total(before, "aftersale_decisions_total", **decided) == 10
    ok = {"route": "/v1/decide", "status": "200"}
    assert total(after, "aftersale_http_responses_total", **ok) - total(before, "aftersale_http_responses_total", **ok) == 10
    bad = {"route": "/v1/decide", "status": "422"}
    assert total(after, "aftersale_http_responses_total", **bad) - total(before, "aftersale_http_responses_total", **bad) == 1
    assert total(after, "aftersale_request_duration_seconds_count", route="/v1/decide") >= 11
    bundle = ready_of_every_worker(fleet)
    (served,) = {r["bundle_hash"] for r in bundle.values()}
    assert total(after, "aftersale_bundle_in_force", bundle_hash=served) == 1
    assert total(after, "aftersale_reloads_total") >= 1
    assert ("aftersale_decision_log_queue_depth", ()) in after


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
