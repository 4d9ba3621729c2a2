"""The product as a service team gets it: build the wheel, install it into a fresh venv outside the
checkout, and run `aftersale validate`, `aftersale decide` and `aftersale serve` + one request from
there. Proves the schemas and the bundled rules travel inside the wheel (engine/_bundled, read by
engine.core.resources) instead of being found beside a checkout.

Slow (~30 s with a warm pip cache: `make setup` has already built durable-rules' wheel, which pip
reuses; a cold cache builds it from source once)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
AT = "2024-06-02T10:00:00+08:00"
SOURCE = ("engine", "schemas", "rules", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")

pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the venv's bin, a working directory outside the checkout, the environment to run in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    assert ROOT not in tmp.parents
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AFTERSALE_RULES", "VIRTUAL_ENV")}
    source = tmp / "source"  # a copy: the build writes build/ and *.egg-info next to setup.py
    for name in SOURCE:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(
            ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", source, cwd=tmp, env=env)
    wheel = next((tmp / "dist").glob("aftersale_policy-*.whl"))
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp, env=env)
    run(tmp / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp, env=env)
    work = tmp / "work"
    work.mkdir()
    shutil.copy2(ROOT / "examples" / "tickets" / "new-not-received.json", work / "ticket.json")
    return tmp / "venv" / "bin", work, env


def test_the_installed_package_reads_its_own_copies(installed):
    bin_dir, work, env = installed
    where = run(bin_dir / "python", "-c", "import engine, engine.core.resources as r; "
                "print(engine.__file__); print(r.SCHEMAS_DIR); print(r.default_rules_dir())", cwd=work, env=env)
    package, schemas, rules = where.stdout.split()
    venv = bin_dir.parent
    assert all(Path(p).is_relative_to(venv) for p in (package, schemas, rules)), where.stdout
    assert Path(schemas, "ticket.schema.json").is_file() and Path(rules, "2024-05-31.yaml").is_file()


def test_validate_and_decide_from_the_wheel(installed):
    bin_dir, work, env = installed
    validated = run(bin_dir / "aftersale", "validate", cwd=work, env=env)
    assert validated.stdout.startswith("ok: 5 version(s)"), validated.stdout
    decided = json.loads(run(bin_dir / "aftersale", "decide", "--ticket", "ticket.json", "--actor", "merchant",
                             "--at", AT, cwd=work, env=env).stdout)
    assert decided["policy"]["version"] == "2024-05-31" and decided["actions"]["agree"]["allowed"] is True


def test_serve_from_the_wheel_answers_a_decision(installed):
    bin_dir, work, env = installed
    log = work / "serve.stderr"
    with open(log, "w") as stderr:
        server = subprocess.Popen([str(bin_dir / "aftersale"), "serve", "--port", "0", "--log-level", "warning"],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            url = _listening(server, log)
            ticket = json.loads((work / "ticket.json").read_text(encoding="utf-8"))
            answer = _post_when_ready(url + "/v1/decide", {"ticket": ticket, "actor": "merchant", "at": AT})
            assert answer.status_code == 200, answer.text
            assert answer.json()["policy"]["version"] == "2024-05-31"
            # the workbench's page and vendored libraries are package data (issue 13)
            for asset in ("", "pages/draft.js", "vendor/codemirror.js", "vendor/LICENSE.chartjs"):
                assert httpx.get(f"{url}/workbench/{asset}", timeout=10).status_code == 200, asset
            assert httpx.get(f"{url}/workbench/api/policy/2024-05-31", timeout=10).json()["version"] == "2024-05-31"
        finally:
            server.terminate()
            server.wait(15)


def _listening(server: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        if found:
            return found.group(1)
        assert server.poll() is None, f"serve exited {server.returncode}: {log.read_text()}"
        time.sleep(0.1)
    raise AssertionError("serve did not start: " + log.read_text())


def _post_when_ready(url: str, body: dict[str, object]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.post(url, json=body, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
