"""A reload pays only for what changed, and triggers that come while one runs share one follow-up.

In process: the document memo (parse + per-document checks) and `Engine(reuse=)` count what they
did, so the tests assert *how many* files were parsed, checked and built (never how long it took);
the supervisor's `Coordinator` runs with no worker attached; the single-worker `EngineHolder` runs
with its real loader held at a gate (the slow reload). Over HTTP: a real `aftersale serve
--workers 2`, its Prometheus counters, and the policy corpus answered by the reloaded service
against a fresh in-process Engine of the same directory."""
from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path

import httpx
import pytest
from server_support import (ADMIN, AT, LATEST, REJECT_MESSAGE, RULES, TICKET, Recorder, Server, copy_rules, error_of,
                            metric_samples, ready_of_every_worker, total, workers_on_copied_rules)

from engine.api import Engine
from engine.core.errors import PolicyError
from engine.policy.bundle import load_directory
from engine.policy.checks.declared_changes import _PAIRS
from engine.policy.memo import DocumentMemo
from engine.policytests.files import load_cases
from engine.policytests.runner import all_rule_ids, run_case

CASES = load_cases([RULES / "tests"])
VERSIONS = sorted(p.stem for p in RULES.glob("*.yaml"))
NEW_MESSAGE = "请先与买家协商（增量重载）"


def append_comment(path: Path, text: str = "# touched") -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(f"\n{text}\n")


def reword(rules: Path, new: str = NEW_MESSAGE) -> list[str]:
    """A real change, valid across versions: the reject message in every version that has it.
    Returns the versions changed."""
    changed = []
    for path in sorted(rules.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if REJECT_MESSAGE in text:
            path.write_text(text.replace(REJECT_MESSAGE, new), encoding="utf-8")
            changed.append(path.stem)
    assert changed and len(changed) < len(VERSIONS)
    return changed


def break_effective_from(path: Path) -> int:
    """A schema error on one line of one file; returns that line."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("effective_from: "))
    lines[index] = lines[index].replace("effective_from: ", "effective_from: not-a-date-", 1)
    path.write_text("".join(lines), encoding="utf-8")
    return index + 1


def reject_message(engine) -> str:
    answer = engine.decide(copy.deepcopy(TICKET), "merchant", at=AT)   # a Decision, or JSON over HTTP
    answer = answer.to_json() if hasattr(answer, "to_json") else answer
    return answer["actions"]["reject"]["denials"][0]["message"]


def answers_differ(engine, fresh) -> list[str]:
    """The policy cases whose answer (or raised error) differs between two engines (every case)."""
    known = all_rule_ids(fresh)
    differing = []
    for case in CASES:
        ours, theirs = Recorder(engine), Recorder(fresh)
        mine, reference = run_case(ours, case, known), run_case(theirs, case, known)
        if ours.last != theirs.last or (mine.outcome, mine.error) != (reference.outcome, reference.error):
            differing.append(case.name)
    return differing


@pytest.fixture()
def rules(tmp_path):
    return copy_rules(tmp_path / "rules")


# -- the memo and Engine(reuse=) ---------------------------------------------------------------------

def test_a_changed_reload_parses_checks_and_builds_only_the_changed_files(rules):
    memo = DocumentMemo()
    first = Engine.from_directory(rules, memo=memo)
    assert (memo.stats.parsed, memo.stats.checked, first.built_versions) == (5, 5, tuple(VERSIONS))
    changed = reword(rules)
    second = Engine.from_directory(rules, reuse=first, memo=memo)
    try:
        assert (memo.stats.parsed, memo.stats.parse_reused) == (len(changed), 5 - len(changed))
        assert (memo.stats.checked, memo.stats.check_reused) == (len(changed), 5 - len(changed))
        assert sorted(second.built_versions) == changed
        assert sorted(second.reused_versions) == sorted(set(VERSIONS) - set(changed))
        for version in second.reused_versions:        # the very same prepared version, not a copy
            assert second.prepared(version) is first.prepared(version)
        fresh = Engine.from_directory(rules)
        try:
            assert second.bundle_hash == fresh.bundle_hash != first.bundle_hash
            assert [v.to_json() for v in second.versions()] == [v.to_json() for v in fresh.versions()]
            assert reject_message(second) == NEW_MESSAGE and reject_message(first) == REJECT_MESSAGE
            assert answers_differ(second, fresh) == []
        finally:
            fresh.close()
    finally:
        first.close()
        second.close()


def test_closing_the_old_engine_leaves_the_shared_versions_open_for_the_new(rules):
    first = Engine.from_directory(rules)
    append_comment(rules / f"{LATEST}.yaml")
    second = Engine.from_directory(rules, reuse=first)
    shared = second.prepared(VERSIONS[0])
    assert second.built_versions == (LATEST,) and shared is first.prepared(VERSIONS[0])
    first.close()
    first.close()  # idempotent: a second close must not release the new engine's share
    assert not shared.evaluator.closed and not second.prepared(LATEST).evaluator.closed
    assert reject_message(second) == REJECT_MESSAGE
    assert first.prepared(LATEST).evaluator.closed                # its own, unshared version is released
    third = Engine.from_directory(rules, reuse=first)             # a closed engine lends nothing
    assert third.reused_versions == ()
    third.close()
    second.close()
    assert shared.evaluator.closed                                 # the last holder released it


def test_a_version_is_not_taken_from_an_engine_that_cross_checked_less(rules):
    bundle = load_directory(rules)
    quick = Engine(bundle, crosscheck_facts=0)
    full = Engine(bundle, reuse=quick)           # the default cross-check is larger: build anew
    again = Engine(bundle, crosscheck_facts=0, reuse=full)
    try:
        assert full.reused_versions == () and sorted(full.built_versions) == VERSIONS
        assert again.built_versions == () and sorted(again.reused_versions) == VERSIONS
    finally:
        for engine in (quick, full, again):
            engine.close()


def test_a_bad_edit_to_one_file_is_refused_located_and_the_engine_in_force_keeps_answering(rules):
    memo = DocumentMemo()
    first = Engine.from_directory(rules, memo=memo)
    path = rules / f"{LATEST}.yaml"
    good = path.read_bytes()
    line = break_effective_from(path)
    with pytest.raises(PolicyError) as raised:
        Engine.from_directory(rules, reuse=first, memo=memo)
    assert (memo.stats.checked, memo.stats.check_reused) == (1, 4)
    problems = [(d.code, Path(d.file).name, d.line, d.column) for d in raised.value.diagnostics]
    assert problems == [("bad_format", f"{LATEST}.yaml", line, 17)]
    with pytest.raises(PolicyError) as fresh:   # exactly what a load without the memo says
        load_directory(rules)
    assert fresh.value.diagnostics == raised.value.diagnostics
    assert reject_message(first) == REJECT_MESSAGE and not first.prepared(LATEST).evaluator.closed
    path.write_bytes(good)                       # back to what is served: nothing to build
    again = Engine.from_directory(rules, reuse=first, memo=memo)
    assert again.built_versions == () and memo.stats.checked == 0
    again.close()
    first.close()


def test_the_checks_across_versions_run_although_every_other_file_is_remembered(rules):
    memo = DocumentMemo()
    first = Engine.from_directory(rules, memo=memo)
    path = rules / f"{LATEST}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(REJECT_MESSAGE, NEW_MESSAGE), encoding="utf-8")
    with pytest.raises(PolicyError) as raised:   # a change between versions nobody declared
        Engine.from_directory(rules, reuse=first, memo=memo)
    assert memo.stats.check_reused == 4
    _PAIRS.clear()                               # nothing remembered: every pair of versions diffed anew
    with pytest.raises(PolicyError) as fresh:
        load_directory(rules)
    assert raised.value.diagnostics == fresh.value.diagnostics
    assert any(Path(d.file).name == f"{LATEST}.yaml" for d in raised.value.diagnostics)
    first.close()


# -- the supervisor's validation (no worker attached) ------------------------------------------------

def test_the_supervisor_validates_only_the_changed_file_and_refuses_a_bad_one_located(rules):
    from engine.service.generations import Coordinator

    coordinator = Coordinator(rules, poll_interval=0)
    try:
        assert sorted(coordinator.last_build["built"]) == VERSIONS
        append_comment(rules / f"{LATEST}.yaml")
        outcome = coordinator.reload("test", [])
        assert (outcome.status, outcome.generation) == ("reloaded", 2)
        assert coordinator.last_build["built"] == (LATEST,) and len(coordinator.last_build["reused"]) == 4
        assert (coordinator.last_build["checked"], coordinator.last_build["check_reused"]) == (1, 4)

        path = rules / f"{VERSIONS[0]}.yaml"
        good = path.read_bytes()
        line = break_effective_from(path)
        failed = coordinator.reload("test", [])
        assert (failed.status, failed.generation, coordinator.number) == ("failed", 2, 2)
        assert [(p["code"], Path(p["file"]).name, p["line"]) for p in failed.error["problems"]] == \
               [("bad_format", path.name, line)]
        assert coordinator.last_build["checked"] == 1
        assert not coordinator.engine.prepared(VERSIONS[0]).evaluator.closed   # the validated engine kept

        path.write_bytes(good)
        assert coordinator.reload("test", []).status == "unchanged"
        fresh = Engine.from_directory(rules)
        try:
            assert coordinator.bundle_hash == fresh.bundle_hash
            assert answers_differ(coordinator.engine, fresh) == []
        finally:
            fresh.close()
    finally:
        coordinator.close()


# -- coalescing, one worker (the holder), with the real loader held at a gate -----------------------

class GatedLoader:
    """The service's own loader; the first `hold` calls, once they have read and built, wait
    until the test opens the gate (a slow build)."""

    def __init__(self, hold: int = 1) -> None:
        from engine.service.app import _engine_loader

        self.load, self.calls, self.hold = _engine_loader(), 0, hold
        self.entered, self.gate = threading.Event(), threading.Event()

    def __call__(self, rules_dir, previous=None):
        self.calls += 1
        engine = self.load(rules_dir, previous)
        if self.calls <= self.hold:
            self.entered.set()
            assert self.gate.wait(60)
        return engine


async def _wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.01)


async def _first_reload_held(rules, loader: "GatedLoader"):
    """A holder on `rules` whose first reload (of an edited file) is loading, held at the gate."""
    from engine.service.reload import EngineHolder

    holder = EngineHolder.start(rules, loader.load, incremental=True)
    holder.loader = loader
    append_comment(rules / f"{LATEST}.yaml")
    first = asyncio.ensure_future(holder.reload("POST /admin/reload"))
    await _wait_for(loader.entered)
    return holder, first


def test_triggers_during_a_reload_share_one_follow_up_and_none_hears_a_stale_unchanged(rules):
    loader = GatedLoader()

    async def scenario():
        holder, first = await _first_reload_held(rules, loader)
        others = [asyncio.ensure_future(holder.reload(reason))
                  for reason in ["POST /admin/reload"] * 6 + ["SIGHUP", "rules directory changed"]]
        await asyncio.sleep(0.05)
        loader.gate.set()
        outcomes = await asyncio.gather(first, *others)
        assert [(o.status, o.generation) for o in outcomes] == [("reloaded", 2)] * 9
        assert holder.reloads_run == 2 and loader.calls == 1   # the follow-up found nothing new to load
        assert holder.current.engine.built_versions == (LATEST,)
        holder.current.engine.close()

    asyncio.run(scenario())


def test_a_change_made_during_a_reload_is_loaded_by_the_one_follow_up(rules):
    loader = GatedLoader()

    async def scenario():
        holder, first = await _first_reload_held(rules, loader)
        changed = reword(rules)                          # a second change while the first is loading
        others = [asyncio.ensure_future(holder.reload("POST /admin/reload")) for _ in range(5)]
        await asyncio.sleep(0.05)
        loader.gate.set()
        outcomes = await asyncio.gather(first, *others)
        assert (outcomes[0].status, outcomes[0].generation) == ("reloaded", 2)
        assert {(o.status, o.generation) for o in outcomes[1:]} == {("reloaded", 3)}
        assert holder.reloads_run == 2 and loader.calls == 2
        assert sorted(holder.current.engine.built_versions) == changed
        assert reject_message(holder.current.engine) == NEW_MESSAGE
        holder.current.engine.close()

    asyncio.run(scenario())


# -- over HTTP: two workers, polling off ---------------------------------------------------------------

def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture()
def pair(tmp_path):
    server = workers_on_copied_rules(tmp_path, poll="0")
    yield server
    server.stop()


def generation_of(url: str) -> int:
    return httpx.get(url + "/readyz", headers={"connection": "close", **ADMIN}).json()["generation"]


def test_concurrent_admin_reloads_during_a_changed_reload_make_at_most_two_and_all_see_the_change(pair):
    before_generation, before = generation_of(pair.url), metric_samples(pair.url)
    for path in sorted(pair.rules.glob("*.yaml")):   # every file: the first reload builds them all
        append_comment(path)
    start, answers = threading.Barrier(8), []

    def ask() -> None:
        with httpx.Client(timeout=120) as client:
            start.wait()
            answers.append(client.post(pair.url + "/admin/reload", headers=ADMIN))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
    bodies = [r.json() for r in answers]
    assert [(b["status"], b["generation"]) for b in bodies] == [("reloaded", before_generation + 1)] * 8
    after = metric_samples(pair.url)
    assert delta(before, after, "aftersale_reload_triggers_total", source="POST /admin/reload") == 8
    assert 1 <= delta(before, after, "aftersale_reloads_total") <= 2
    assert delta(before, after, "aftersale_reloads_total", outcome="reloaded") == 1
    assert {r["generation"] for r in ready_of_every_worker(pair, all_seen=True).values()} == {before_generation + 1}


def test_a_changed_reload_builds_only_the_changed_files_and_serves_what_a_fresh_engine_would(pair):
    from engine.policytests.http import HttpEngine

    before = metric_samples(pair.url)
    changed = reword(pair.rules)
    response = httpx.post(pair.url + "/admin/reload", headers=ADMIN, timeout=120)
    assert response.status_code == 200 and response.json()["status"] == "reloaded", response.text
    after = metric_samples(pair.url)
    name = "aftersale_reload_versions_total"
    assert delta(before, after, name, role="supervisor", how="built") == len(changed)
    assert delta(before, after, name, role="supervisor", how="reused") == len(VERSIONS) - len(changed)
    assert delta(before, after, name, role="worker", how="built") == 2 * len(changed)
    assert delta(before, after, name, role="worker", how="reused") == 2 * (len(VERSIONS) - len(changed))

    fresh = Engine.from_directory(pair.rules)
    try:
        assert {r["bundle_hash"] for r in ready_of_every_worker(pair, all_seen=True).values()} == {fresh.bundle_hash}
        with HttpEngine(pair.url, local=fresh) as remote:
            assert reject_message(remote) == NEW_MESSAGE
            assert answers_differ(remote, fresh) == []
    finally:
        fresh.close()

    path = pair.rules / f"{LATEST}.yaml"
    line = break_effective_from(path)
    error = error_of(httpx.post(pair.url + "/admin/reload", headers=ADMIN, timeout=120), 422)
    assert [(p["code"], Path(p["file"]).name, p["line"]) for p in error["problems"]] == \
           [("bad_format", path.name, line)]
    assert {r["bundle_hash"] for r in ready_of_every_worker(pair, all_seen=True).values()} == {fresh.bundle_hash}


def test_one_worker_reloads_incrementally_too(tmp_path):
    rules = copy_rules(tmp_path / "rules")
    server = Server(tmp_path, rules, "--poll", "0")
    try:
        before = metric_samples(server.url)
        append_comment(rules / f"{LATEST}.yaml")
        response = httpx.post(server.url + "/admin/reload", headers=ADMIN, timeout=120)
        assert response.status_code == 200 and response.json()["status"] == "reloaded", response.text
        after = metric_samples(server.url)
        assert delta(before, after, "aftersale_reload_versions_total", role="worker", how="built") == 1
        assert delta(before, after, "aftersale_reload_versions_total", role="worker", how="reused") == 4
    finally:
        server.stop()

