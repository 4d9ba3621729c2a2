"""Hot reload over HTTP, end to end: `hup` (one worker, polling off) for SIGHUP and POST
/admin/reload; `fleet` (two workers, polling every 0.2 s) for reloads under concurrent load and the
metrics summed across workers. Each reload test edits its own copy of the rules directory."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from server_support import (ADMIN, AT, LATEST, REJECT_MESSAGE, TICKET, Server, copy_rules, error_of, metric_samples,
                            ready_of_every_worker, total, workers_on_copied_rules)


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
    server = workers_on_copied_rules(tmp_path_factory.mktemp("fleet"), poll="0.2")
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
