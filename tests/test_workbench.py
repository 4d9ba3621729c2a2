"""The workbench's JSON endpoints and static files, over real HTTP against `aftersale serve`
(the browser tests in test_workbench_browser.py drive the pages themselves)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re

import httpx
import pytest

from engine.cli.validate import validate
from engine.core.problems import Diagnostic
from engine.policy.yamlsafe import MAX_BYTES
from engine.workbench import drafts
from server_support import REPO, RULES, Server

IN_FORCE = "2024-05-31"
STATIC = REPO / "engine" / "workbench" / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("workbench-api"), RULES, "--poll", "0")
    yield server
    server.stop()


def get(server, path: str) -> httpx.Response:
    return httpx.get(server.url + path, timeout=60)


def post(server, path: str, body) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def ticket(name: str) -> dict:
    return json.loads((REPO / "examples" / "tickets" / f"{name}.json").read_text(encoding="utf-8"))


def rules_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(RULES.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_the_page_and_its_assets_are_served_from_the_package(server):
    bare = get(server, "/workbench")
    assert bare.status_code == 307 and bare.headers["location"].endswith("/workbench/")
    page = get(server, "/workbench/")
    assert page.status_code == 200 and "售后协商政策工作台" in page.text
    for asset in ("app.js", "common.js", "style.css", "pages/try.js", "vendor/preact-htm.mjs",
                  "vendor/codemirror.js", "vendor/codemirror-yaml.js", "vendor/chart.umd.min.js"):
        assert get(server, f"/workbench/{asset}").status_code == 200, asset


def test_no_asset_is_fetched_from_another_host():
    """No CDN: the scripts and the page load only relative URLs (the machines may be offline)."""
    for path in [STATIC / "index.html", *STATIC.glob("*.js"), *STATIC.glob("pages/*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert not re.search(r"""import[^'"]*['"](https?:)?//""", text), path
    for licence in ("LICENSE.htm", "LICENSE.codemirror", "LICENSE.chartjs"):
        assert (STATIC / "vendor" / licence).stat().st_size > 500


def test_versions_timeline_with_changelog_rows_and_counts(server):
    data = get(server, "/workbench/api/versions").json()
    assert data["in_force"] == IN_FORCE
    newest = data["versions"][-1]
    assert newest["in_force"] and newest["date"] == "2024年5月31日"
    assert newest["counts"]["rules"] > 40 and newest["counts"]["scenarios"] == 9
    row = newest["changelog"][0]
    assert row["text"].startswith("新增售后协商关联功能介绍") and row["section"] == "四" and row["change_count"] > 0


def test_policy_items_say_where_they_are_written(server):
    data = get(server, f"/workbench/api/policy/{IN_FORCE}").json()
    lines = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8").splitlines()
    for row in data["reason_table"][:20]:
        reason = row["reason"]
        assert lines[reason["where"]["line"] - 1].strip() == f"- id: {reason['id']}"
    amount = next(r for r in data["reason_table"] if r["reason"]["id"] == "amount_only")
    assert "129.00元" in amount["reason"]["message"] and amount["reason"]["platform_code"] == 10
    not_received = next(s for s in data["scenarios"] if s["id"] == "not_received")
    assert not_received["rejection"] == "negotiation_required" and not_received["illustrative"] is True
    window = next(t for t in data["timeouts"] if t["id"] == "buyer_response_hours")
    assert window["values"] == {"value": 48} and "buyer_response_hours" in lines[window["where"]["line"] - 1]
    assert get(server, "/workbench/api/policy/1999-01-01").status_code == 404


def test_compare_groups_the_diff_by_declared_change_and_replays_the_corpus(server):
    data = get(server, "/workbench/api/compare?from=2024-04-22&to=2024-05-31").json()
    declared = [g for g in data["groups"] if g["declared"]]
    assert declared[0]["declared"]["id"] == "related-features-documented"
    assert sum(len(g["changes"]) for g in data["groups"]) == data["count"] > 0
    assert not [g for g in data["groups"] if g["declared"] is None]  # the bundled versions declare everything
    moved = data["decisions"]["counts"]["merchant"]["modify_return_logistics"]
    assert moved.get("denied_to_allowed", 0) > 0


def test_decide_and_the_timeline_show_an_unlock_at_the_deadline(server):
    body = {"ticket": ticket("pending-amount-proposal"), "actor": "merchant", "at": "2024-06-02T10:00:00+08:00"}
    negotiate = post(server, "/workbench/api/decide", body).json()["decision"]["actions"]["negotiate"]
    assert not negotiate["allowed"]
    assert negotiate["denials"][0]["unlock"] == {"kind": "time", "available_at": "2024-06-03T12:00:00+08:00"}
    line = post(server, "/workbench/api/timeline", {"ticket": body["ticket"], "actor": "merchant"}).json()
    assert any(m["at"] == "2024-06-03T12:00:00+08:00" for m in line["marks"])
    before = next(s for s in line["samples"] if s["at"] == "2024-06-03T11:59:59+08:00")
    after = next(s for s in line["samples"] if s["at"] == "2024-06-03T12:00:00+08:00")
    assert "negotiate" not in before["allowed"] and "negotiate" in after["allowed"]


def test_timeline_marks_a_version_boundary(server):
    old = dict(ticket("new-not-received"), created_at="2024-05-29T10:00:00+08:00")
    line = post(server, "/workbench/api/timeline", {"ticket": old, "actor": "merchant"}).json()
    boundary = next(m for m in line["marks"] if m["kind"] == "version")
    assert boundary["at"] == "2024-05-31T00:00:00+08:00"
    versions = {s["version"] for s in line["samples"]}
    assert versions == {"2024-04-22", "2024-05-31"}


def test_bad_input_is_a_located_4xx(server):
    response = post(server, "/workbench/api/decide", {"ticket": {"ticket_id": "x"}, "actor": "merchant"})
    assert response.status_code == 422 and response.json()["error"]["problems"]
    assert post(server, "/workbench/api/decide", {"ticket": ticket("new-not-received"), "actor": "merchant",
                                                   "at": "yesterday"}).status_code == 422
    raw = httpx.post(server.url + "/workbench/api/decide", content=b"{not json", timeout=10)
    assert raw.status_code == 400


def test_a_broken_draft_has_the_same_located_errors_as_validate(server, tmp_path):
    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    broken = source.replace("buyer_response_hours: {value: 48", "buyer_response_hours: {value: -1")
    answer = post(server, "/workbench/api/draft/validate", {"text": broken, "name": "draft.yaml"}).json()
    assert not answer["valid"] and answer["file"] == f"{IN_FORCE}.yaml"
    # the CLI on the same bundle (the served versions with this file in place of 2024-05-31)
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in RULES.glob("*.yaml"):
        (rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (rules / f"{IN_FORCE}.yaml").write_text(broken, encoding="utf-8")
    _bundle, expected = validate([rules])
    got = [(p["code"], p["line"], p["column"], p["path"], p["message"]) for p in answer["problems"]]
    assert got == [(d.code, d.line, d.column, d.path, d.message) for d in expected if isinstance(d, Diagnostic)]
    assert got[0][1] == next(i for i, t in enumerate(broken.splitlines(), 1) if "buyer_response_hours" in t)


def test_a_draft_yaml_bomb_gets_the_loaders_limits(server):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    answer = post(server, "/workbench/api/draft/validate", {"text": bomb, "name": "bomb.yaml"}).json()
    assert not answer["valid"] and any("alias" in p["message"] for p in answer["problems"])
    too_big = post(server, "/workbench/api/draft/validate", {"text": "#" * (MAX_BYTES + 1)})
    assert too_big.status_code == 413


def test_draft_cases_impact_and_markdown_never_touch_rules(server):
    before = rules_digest()
    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    draft = source.replace("    rejection: negotiation_required\n", "    rejection: allowed\n", 1) \
                  .replace("      - features/extend_receipt\n",
                           "      - features/extend_receipt\n      - scenarios/not_received/rejection\n", 1)
    cases = post(server, "/workbench/api/draft/cases", {"text": draft}).json()
    assert cases["ok"] and cases["failed"] > 0 and cases["passed"] > 100
    assert any("rejection.yaml" in c["file"] for c in cases["cases"] if not c["passed"])
    impact = post(server, "/workbench/api/draft/impact", {"text": draft}).json()
    assert impact["from"] == IN_FORCE and impact["counts"]["merchant"]["reject"]["denied_to_allowed"] > 0
    diff = post(server, "/workbench/api/draft/diff", {"text": draft}).json()
    assert "场景「未收到货」" in diff["markdown"] and "related-features-documented" in diff["markdown"]
    refused = post(server, "/workbench/api/draft/cases", {"text": source.replace("value: 48", "value: 24", 1)}).json()
    assert refused["ok"] is False and refused["problems"][0]["code"] == "undeclared_change"
    assert rules_digest() == before


def test_a_draft_job_past_its_time_limit_is_stopped_and_the_next_one_runs(monkeypatch):
    runner = drafts.DraftRunner()
    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    try:
        monkeypatch.setitem(drafts.TIME_LIMITS, "cases", 0.05)  # far less than building an engine takes
        with pytest.raises(drafts.DraftTimeout):
            asyncio.run(runner.run("cases", source, "draft.yaml", str(RULES)))
        monkeypatch.setitem(drafts.TIME_LIMITS, "validate", 60.0)
        answer = asyncio.run(runner.run("validate", source, "draft.yaml", str(RULES)))
        assert answer["valid"]
    finally:
        runner.close()


def test_the_served_engine_keeps_answering_while_a_draft_runs(server):
    """A draft job runs in the child process: decisions are answered meanwhile."""
    import threading
    import time

    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    job = threading.Thread(target=post, args=(server, "/workbench/api/draft/cases", {"text": source}))
    job.start()
    time.sleep(0.2)
    started = time.monotonic()
    body = {"ticket": ticket("new-not-received"), "actor": "merchant", "at": "2024-06-02T10:00:00+08:00"}
    assert httpx.post(server.url + "/v1/decide", json=body, timeout=30).status_code == 200
    answered = time.monotonic() - started
    job.join()
    assert answered < 1.0, f"a decision waited {answered:.2f} s behind a draft"


def test_every_static_file_is_package_data():
    """pyproject's package-data globs ship every file of the page (a wheel without them serves 404s)."""
    import fnmatch
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["engine.workbench"]
    package = REPO / "engine" / "workbench"
    files = [p.relative_to(package).as_posix() for p in (package / "static").rglob("*") if p.is_file()]
    assert len(files) > 10
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)] == []
