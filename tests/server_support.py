"""The one way the suite starts the real service: `aftersale serve --port 0` in a subprocess,
spoken to over HTTP (tests/test_service.py, tests/test_policy_cases_http.py)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

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


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]
