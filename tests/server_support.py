"""The one way the suite starts the real service: `aftersale serve --port 0` in a subprocess,
spoken to over HTTP (tests/test_service.py, tests/test_policy_cases_http.py); and `Recorder`, which
keeps an engine's last answer as plain JSON so a library's and a service's can be compared whole."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from engine.core.errors import EngineError

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}   # /readyz details and /admin/* need it


class Server:
    """`aftersale serve --port 0 ...` in a subprocess; the URL is read from its first stderr line."""

    def __init__(self, tmp: Path, rules: Path, *args: str, env: dict[str, str] | None = None,
                 preexec_fn=None) -> None:
        self.stderr_path = tmp / "server.stderr"
        self.stderr = open(self.stderr_path, "w")
        environ = dict(os.environ, AFTERSALE_SERVE_ADMIN_TOKEN=ADMIN_TOKEN)
        environ.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "serve", "--rules", str(rules), "--port", "0",
             "--log-level", "warning", *args],
            stdout=subprocess.DEVNULL, stderr=self.stderr, cwd=REPO, env=environ, preexec_fn=preexec_fn)
        self.url = self._wait_for_url()
        self.wait_ready()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", self.stderr_path.read_text())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.stderr_path.read_text()}")
            time.sleep(0.05)
        raise AssertionError("server did not start: " + self.stderr_path.read_text())

    def wait_ready(self, workers: int = 1) -> None:
        deadline, seen = time.monotonic() + 30, set()
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.url + "/readyz", headers={"connection": "close"}, timeout=2)
                if response.status_code == 200:
                    seen.add(response.json()["pid"])
                    if len(seen) >= workers:
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready: " + self.stderr_path.read_text())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


# -- shared by the service tests (test_service.py, test_service_reload.py) -------------------------

LATEST = "2024-05-31"
AT = "2024-06-02T10:00:00+08:00"
REJECT_MESSAGE = "当前售后场景不支持直接拒绝，需先使用「售后协商」与买家沟通"

TICKET = {
    "ticket_id": "AS-1001", "type": "refund_only", "status": "merchant_processing",
    "scenario": "not_received", "buyer_reason": "未收到货", "created_at": "2024-06-01T10:00:00+08:00",
    "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1, "shipped": True},
    "request": {"refund_amount": 40000, "quantity": 1, "evidence_count": 0},
}


def copy_rules(target: Path) -> Path:
    target.mkdir()
    for path in RULES.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def workers_on_copied_rules(tmp: Path, poll: str, workers: int = 2) -> Server:
    """A server on its own copy of the rules (`server.rules`, for the test to edit), every worker up."""
    rules = copy_rules(tmp / "rules")
    server = Server(tmp, rules, "--workers", str(workers), "--poll", poll)
    server.wait_ready(workers=workers)
    server.rules = rules
    return server


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


class Recorder:
    """Passes the runner's questions on and keeps the last answer, or the exception raised, as
    plain JSON, so that the library's and the service's can be compared whole."""

    def __init__(self, engine) -> None:
        self.engine, self.last = engine, None

    def __getattr__(self, name):  # versions, compiled
        return getattr(self.engine, name)

    def _record(self, method, *args, **kwargs):
        try:
            answer = getattr(self.engine, method)(*args, **kwargs)
        except EngineError as exc:
            self.last = {"raised": type(exc).__name__, "message": str(exc), "problems": getattr(exc, "problems", None)}
            raise
        self.last = json.loads(json.dumps(answer.to_json() if hasattr(answer, "to_json") else answer, ensure_ascii=False))
        return answer

    def decide(self, *args, **kwargs):
        return self._record("decide", *args, **kwargs)

    def check(self, *args, **kwargs):
        return self._record("check", *args, **kwargs)

    def apply(self, *args, **kwargs):
        return self._record("apply", *args, **kwargs)


def ready_of_every_worker(server: Server, workers: int = 2, *, all_seen: bool = False) -> dict[int, dict]:
    """/readyz of each worker, by pid (new connections land on either worker). `all_seen`: assert
    that every worker answered."""
    seen: dict[int, dict] = {}
    for _ in range(40):
        body = httpx.get(server.url + "/readyz", headers={"connection": "close", **ADMIN}).json()
        seen[body["pid"]] = body
        if len(seen) == workers:
            break
    if all_seen:
        assert len(seen) == workers
    return seen


def metric_samples(url: str) -> dict[tuple, float]:
    """/metrics parsed: (sample name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", headers={"connection": "close"}).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: dict[tuple, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and all(dict(pairs).get(k) == v for k, v in labels.items()))
