"""RulesetRunner: fact validation, repeat facts, one fixed session, thread safety, recovery."""
import random
import sys
import threading

import pytest

import engine.rules.durable as runtime
from engine.rules.compile import compile_policy
from engine.rules.durable import FactError, RulesetRunner, RuntimeFault, validate_facts


def body(cond):
    return {"all": [{"m": {"$and": [{"$ex": {"ticket_id": 1}}, {"stage": "gate"}, cond]}}]}


DEFINITION = {"r0": body({"a": 1}), "r1": body({"$gt": {"n": 10}}), "r2": body({"s": "中文"}),
              "r3": body({"$or": [{"a": 1}, {"n": 11}]})}

_serial = iter(range(10 ** 6))


@pytest.fixture()
def runner():
    r = RulesetRunner(f"test_runtime_{next(_serial)}", DEFINITION)
    yield r
    r.close()


def facts(**kv):
    return {"ticket_id": "T-1", "stage": "gate", **kv}


def test_fired_names_keep_duplicates_from_or_branches(runner):
    assert sorted(runner.fired(facts(a=1, n=11, s="中文"))) == ["r0", "r1", "r2", "r3", "r3"]
    assert runner.fired(facts(a=0, n=5, s="x")) == []  # code 1 (no match) is not an error


def test_identical_facts_twice_give_identical_results(runner):
    same = facts(a=1, n=3)
    results = [sorted(runner.fired(same)) for _ in range(5)]
    assert results == [["r0", "r3"]] * 5


def test_non_ascii_strings_match(runner):
    assert runner.fired(facts(s="中文")) == ["r2"]
    assert runner.fired(facts(s="中")) == []


def test_session_is_empty_between_evaluations(runner):
    for i in range(200):
        runner.fired(facts(a=i % 2, n=i))
    assert runner.session_facts() == []


@pytest.mark.parametrize("bad, text", [
    (facts(a=None), "NoneType"), (facts(a=1.5), "float"), (facts(a=[1]), "list"),
    (facts(a=2 ** 60), "out of range"), (facts(id=3), "reserved"), (facts(sid="1"), "reserved"),
    ({f"k{i}": 1 for i in range(300)}, "too many"), ([1], "mapping"),
])
def test_validate_facts_refuses_unnormalized_facts(bad, text):
    with pytest.raises(FactError, match=text):
        validate_facts(bad)


def test_validate_facts_checks_type_groups():
    validate_facts(facts(n=1, flag=True, s="x"), {"n": "num", "flag": "num", "s": "str"})
    validate_facts(facts(), {"n": "num"})  # absent is allowed: comparisons on it are false
    with pytest.raises(FactError, match="`n` must be an integer or boolean"):
        validate_facts(facts(n="1"), {"n": "num"})
    with pytest.raises(FactError, match="`s` must be a string"):
        validate_facts(facts(s=0), {"s": "str"})


def test_duplicate_live_name_is_refused_and_reusable_after_close():
    first = RulesetRunner("test_runtime_dup", DEFINITION)
    with pytest.raises(RuntimeFault, match="already in use"):
        RulesetRunner("test_runtime_dup", DEFINITION)
    first.close()
    first.close()  # idempotent
    with pytest.raises(RuntimeFault, match="closed"):
        first.fired(facts(a=1))
    with RulesetRunner("test_runtime_dup", DEFINITION) as again:
        assert again.fired(facts(a=1)) == ["r0", "r3"]


def test_invalid_ruleset_raises_runtime_fault():
    with pytest.raises(RuntimeFault, match="rejected"):
        RulesetRunner("test_runtime_bad", {"r0": {"all": [{"m": {"$in": {"a": [1, 2]}}}]}})


class _Flaky:
    """The C module, failing once in a chosen call (an error mid-drain leaves the sid leased)."""

    def __init__(self, real, fail_in):
        self._real, self._fail_in, self.failed = real, fail_in, False

    def __getattr__(self, name):
        fn = getattr(self._real, name)
        if name != self._fail_in:
            return fn

        def wrapper(*args):
            if not self.failed:
                self.failed = True
                raise self._real.error("injected failure")
            return fn(*args)
        return wrapper


@pytest.mark.parametrize("fail_in", ["assert_fact", "start_action_for_state", "complete_and_start_action",
                                     "retract_fact"])
def test_runner_recovers_after_a_failure(runner, monkeypatch, fail_in):
    flaky = _Flaky(runtime._dre, fail_in)
    monkeypatch.setattr(runtime, "_dre", flaky)
    both = facts(a=1, n=11, s="中文")
    if fail_in == "retract_fact":  # the result is complete; the session is reset instead
        assert sorted(runner.fired(both)) == ["r0", "r1", "r2", "r3", "r3"]
    else:
        with pytest.raises(RuntimeFault, match="injected failure"):
            runner.fired(both)
    assert flaky.failed
    for _ in range(3):  # usable at once, with full results (no 30 s lease, no leftover fact)
        assert sorted(runner.fired(both)) == ["r0", "r1", "r2", "r3", "r3"]
    assert runner.session_facts() == []


def run_switching_often(threads: list) -> None:
    """Start and join `threads` with the interpreter switching threads every microsecond, i.e.
    between the C calls of one evaluation (the thread tests fail without the runtime's lock)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)


def test_eight_threads_get_exactly_the_plain_results():
    doc = {"version": "threads", "rules": [
        {"id": f"rule{i}", "section": "s", "stage": "gate", "action": "agree",
         "when": {"all": [{"any": [{"n": {"gte": i}}, {"s": {"eq": f"v{i % 3}"}}]}, {"flag": {"eq": bool(i % 2)}}]},
         "deny": {"code": "C", "message": "m"}} for i in range(12)]}
    policy = compile_policy(doc).open()
    rng = random.Random(7)
    inputs = [facts(n=rng.randint(-1, 13), s=f"v{rng.randint(0, 3)}", flag=rng.random() < 0.5)
              for _ in range(64)]
    expected = [policy.fired_plain("gate", f) for f in inputs]
    assert any(expected) and not all(expected)
    errors = []

    def worker(offset):
        try:
            for k in range(400):
                i = (k + offset) % len(inputs)
                got = policy.fired("gate", inputs[i])
                if got != expected[i]:
                    errors.append((inputs[i], got, expected[i]))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    run_switching_often([threading.Thread(target=worker, args=(t * 8,)) for t in range(8)])
    try:
        assert errors == []
        assert policy._runners["gate"].session_facts() == []
    finally:
        policy.close()


def test_evaluations_stay_exact_while_another_thread_builds_and_closes_rulesets():
    """A hot reload builds the next policy in a worker thread (create rulesets, evaluate them for
    the cross-check, close the old ones) while requests evaluate on another thread: the runtime's
    process-wide lock keeps every durable call sequence whole."""
    doc = {"version": "serving", "rules": [
        {"id": f"rule{i}", "section": "s", "stage": "gate", "action": "agree",
         "when": {"all": [{"n": {"gte": i}}, {"flag": {"eq": bool(i % 2)}}]},
         "deny": {"code": "C", "message": "m"}} for i in range(8)]}
    serving = compile_policy(doc).open()
    inputs = [facts(n=n, flag=flag) for n in range(-1, 10) for flag in (True, False)]
    expected = [serving.fired_plain("gate", f) for f in inputs]
    errors, stop = [], threading.Event()

    def requests():
        try:
            while not stop.is_set():
                for f, want in zip(inputs, expected):
                    got = serving.fired("gate", f)
                    if got != want:
                        errors.append((f, got, want))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    def reloads():
        try:
            for round_ in range(25):
                nxt = compile_policy(dict(doc, version=f"next{round_}")).open()
                for f, want in zip(inputs, expected):
                    if nxt.fired("gate", f) != want:
                        errors.append(("next", f))
                nxt.close()
        except Exception as exc:
            errors.append(exc)
        finally:
            stop.set()

    run_switching_often([threading.Thread(target=requests) for _ in range(3)] + [threading.Thread(target=reloads)])
    try:
        assert errors == []
        assert serving._runners["gate"].session_facts() == []
    finally:
        serving.close()


CRASH_SCRIPT = r"""
import glob, yaml
from engine.rules.compile import compile_policy
docs = [yaml.safe_load(open(p, encoding="utf-8")) for p in sorted(glob.glob("rules/*.yaml"))]
docs.append({"version": "inline", "rules": [
    {"id": f"{stage}{i}", "section": "s", "stage": stage, "action": "agree", "deny": {"code": "C", "message": "m"},
     "when": {"all": [{"n": {"gte": i}}, {"s": {"in": ["a", "b"]}}, {"x": {"lt": {"fact": "y"}}}]}}
    for i in range(10) for stage in ("gate", "payload", "outcome")]})
for _ in range(20):
    for doc in docs:
        policy = compile_policy(doc).open()
        for stage in ("gate", "payload", "outcome"):
            bare = {"ticket_id": "T", "stage": stage, "zz": 1}  # only feature rules can match
            assert policy.fired(stage, bare) == policy.fired_plain(stage, bare)
        policy.close()
# a reset (what an error triggers), then only misses, then close
policy = compile_policy(docs[-1]).open()
runner = policy.runner("gate")
for _ in range(3):
    runner._reset()
    assert policy.fired("gate", {"ticket_id": "T", "stage": "gate"}) == []
policy.close()
print("ok")
"""


def test_close_after_evaluations_that_matched_nothing_does_not_crash():
    # durable 2.0.28's delete_state frees an uninitialized pointer unless an action was ever started
    # on the ruleset (seen: segfault / "free(): invalid pointer"); the runner's primer rule prevents
    # it. In a subprocess: a regression kills the interpreter.
    import subprocess
    from pathlib import Path
    done = subprocess.run([sys.executable, "-c", CRASH_SCRIPT], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_primer_names_are_reserved():
    with pytest.raises(FactError, match="reserved"):
        validate_facts(facts(__runtime_prime__=1))
    with pytest.raises(RuntimeFault, match="reserved"):
        RulesetRunner("test_runtime_prime", {"__runtime_prime__": body({"a": 1})})


def test_empty_ruleset_fires_nothing():
    with RulesetRunner("test_runtime_empty", {}) as empty:
        assert empty.fired(facts(a=1)) == []
        assert empty.session_facts() == []
