"""The only module that imports durable_rules' C extension. `RulesetRunner` drives it directly
(not `durable.engine.Host`: its Python glue is ~85 % of its cost and its 0.2 s timer threads drain
actions of every session, stealing results under threads). See docs/design.md and
../shared/notes/durable-rules.md for the measured behaviour this relies on.

One evaluation = assert the fact on one fixed session id, drain the actions it queued (their
names are the rules that fired), retract the fact. An evaluation spans several C calls and the C
library has no locks of its own, so every sequence of durable calls (create, evaluate, reset,
delete) runs under one process-wide lock: any thread may then use any ruleset, e.g. a hot reload
building and cross-checking the next policy in a worker thread while requests evaluate on the
event loop. The GIL already lets only one C call run at a time, so the lock costs no parallelism.
"""
from __future__ import annotations

import itertools
import json
import threading
from typing import Any, Mapping

import durable_rules_engine as _dre
import msgspec

from engine.policy.conditions import MAX_SAFE_INT, STR
from engine.core.errors import EngineError

_SID = "0"
# durable_rules 2.0.28 frees an uninitialized pointer in delete_state (segfault / "free(): invalid
# pointer") when no action was ever started on the ruleset: e.g. close() after evaluations that
# matched nothing. Every ruleset therefore gets a primer rule, fired once at creation, matching only
# a fact with the reserved key below (once per ruleset is enough: measured, a session created after
# a reset is then deleted safely too; tests/test_runtime.py runs both cases in a subprocess).
_PRIME_RULE = "__runtime_prime__"
_PRIME_KEY = "__runtime_prime__"
_RESERVED = ("id", "sid", _PRIME_KEY)   # set by the runner: message id, session id, primer
_MAX_PROPERTIES = 250             # durable refuses facts with more than 255 properties (error 302)
_ASSERTED, _NO_MATCH = 0, 1       # assert_fact result codes; others are faults
# Non-ASCII must stay raw UTF-8: durable compares the raw bytes of strings, so `\u4e2d` in a fact
# never equals `中` in a rule. msgspec writes UTF-8 unescaped and compact, ~5x faster than the
# stdlib encoder on a fact dict (bench/bench_decide.py).
_encode = msgspec.json.Encoder().encode
_DURABLE = threading.Lock()        # see the module docstring: one durable call sequence at a time


class RuntimeFault(EngineError):
    """durable_rules failed during an evaluation. The runner reset its session and is usable."""


class FactError(EngineError):
    """A fact dict is not normalized (ints, bools, strings; no None/float; types the rules expect)."""


class FactValidator:
    """Cheap check (one pass, set lookups) that durable and the plain evaluator will read a fact
    dict the same way: only int (|n| <= 2**53), bool and str values, no reserved names, at most
    250 facts, and each fact the conditions compare of the type group they compare it with
    (`fact_types`: name → "str" | "num"; durable compares across groups erratically: `"" == 0`)."""

    def __init__(self, fact_types: Mapping[str, str] | None = None) -> None:
        types = dict(fact_types or {})
        self._str_facts = frozenset(k for k, g in types.items() if g == STR)
        self._num_facts = frozenset(k for k, g in types.items() if g != STR)

    def __call__(self, facts: Mapping[str, Any]) -> None:
        if not isinstance(facts, Mapping):
            raise FactError(f"facts must be a mapping, got {type(facts).__name__}")
        if len(facts) > _MAX_PROPERTIES:
            raise FactError(f"too many facts ({len(facts)} > {_MAX_PROPERTIES})")
        str_facts, num_facts = self._str_facts, self._num_facts
        for key, value in facts.items():
            kind = type(value)
            if kind is str:
                if key in num_facts:
                    raise FactError(f"fact `{key}` must be an integer or boolean, got {value!r}")
            elif kind is bool:
                if key in str_facts:
                    raise FactError(f"fact `{key}` must be a string, got {value!r}")
            elif kind is int:
                if key in str_facts:
                    raise FactError(f"fact `{key}` must be a string, got {value!r}")
                if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
                    raise FactError(f"fact `{key}`: integer {value} out of range (|n| <= 2**53)")
            else:
                raise FactError(f"fact `{key}`: {kind.__name__} is not allowed (only int, bool, str; no None/float)")
        if "id" in facts or "sid" in facts or _PRIME_KEY in facts:
            raise FactError(f"fact names {', '.join(_RESERVED)} are reserved by the runtime")


def validate_facts(facts: Mapping[str, Any], fact_types: Mapping[str, str] | None = None) -> None:
    """One-off form of `FactValidator(fact_types)(facts)`."""
    FactValidator(fact_types)(facts)


class RulesetRunner:
    """One durable ruleset (already compiled to JSON) and its single fixed session."""

    _names_in_use: set[str] = set()  # guarded by _DURABLE

    def __init__(self, name: str, definition: dict[str, Any] | str) -> None:
        """`name` must be unique in the process while the runner is open (durable's rule)."""
        rules = json.loads(definition) if isinstance(definition, str) else dict(definition)
        if _PRIME_RULE in rules:
            raise RuntimeFault(f"rule name `{_PRIME_RULE}` is reserved by the runtime")
        rules[_PRIME_RULE] = {"all": [{"m": {"$ex": {_PRIME_KEY: 1}}}]}
        text = json.dumps(rules, ensure_ascii=False, separators=(",", ":"))
        with _DURABLE:
            if name in self._names_in_use:
                raise RuntimeFault(f"ruleset name `{name}` is already in use in this process")
            try:
                self._handle = _dre.create_ruleset(name, text)
            except Exception as exc:  # durable_rules_engine.error, MemoryError
                raise RuntimeFault(f"durable_rules rejected ruleset `{name}`: {exc}") from exc
            self._names_in_use.add(name)
        self.name = name
        self._ids = itertools.count(1)   # unique message id per fact: no MessageObserved on repeats
        self._closed = False
        with _DURABLE:
            try:
                self._prime()
            except BaseException:
                _dre.delete_ruleset(self._handle)
                self._names_in_use.discard(name)
                raise

    def _prime(self) -> None:
        message = '{"id":%d,"sid":"0","%s":1}' % (next(self._ids), _PRIME_KEY)
        if self._evaluate(message) != [_PRIME_RULE]:
            raise RuntimeFault(f"durable_rules did not fire the primer rule of `{self.name}`")

    def fired(self, facts: Mapping[str, Any]) -> list[str]:
        """Names of the rules that fired for `facts`, in durable's order, duplicates kept (a rule
        fires once per true branch of an `$or`). `facts` must already pass `validate_facts`."""
        body = _encode(facts).decode()
        with _DURABLE:
            if self._closed:
                raise RuntimeFault(f"ruleset `{self.name}` is closed")
            head = '{"id":%d,"sid":"0"' % next(self._ids)
            message = head + ("," + body[1:] if len(body) > 2 else "}")
            return self._evaluate(message)

    def _evaluate(self, message: str) -> list[str]:
        handle = self._handle
        names: list[str] = []
        asserted = False
        try:
            code, state = _dre.assert_fact(handle, message)
            asserted = True
            if code == _ASSERTED:
                action = _dre.start_action_for_state(handle, state)
                queued = action[1] if action else None
                while queued:
                    # '{"r12":{"m":{...}}}': the action name is the first key; no need to parse it
                    names.append(queued[2:queued.index('"', 2)])
                    queued = _dre.complete_and_start_action(handle, state)
            elif code != _NO_MATCH:
                raise RuntimeFault(f"durable_rules assert_fact returned code {code}")
        except BaseException as exc:
            self._reset()
            asserted = False  # the reset removed the fact with the session
            if isinstance(exc, RuntimeFault) or not isinstance(exc, Exception):
                raise
            raise RuntimeFault(f"durable_rules failed in `{self.name}`: {exc}") from exc
        finally:
            if asserted:
                try:
                    _dre.retract_fact(handle, message)
                except Exception:  # keep the runner usable: a fresh session is the safe state
                    self._reset()
        return names

    def _reset(self) -> None:
        # an exception between start_action_for_state and the end of the drain leaves the session
        # leased for 30 s (later evaluations silently see nothing): deleting the state is the reset
        try:
            _dre.delete_state(self._handle, _SID)
        except Exception:  # no session (error 309): nothing to reset
            pass

    def session_facts(self) -> list[dict[str, Any]]:
        """The facts durable still holds in the session (diagnostics: [] between evaluations)."""
        with _DURABLE:
            try:
                facts: list[dict[str, Any]] = json.loads(_dre.get_facts(self._handle, _SID))
                return facts
            except Exception:  # no session yet (error 309) or after a reset
                return []

    def close(self) -> None:
        """Delete the session and the ruleset (hot reload). Idempotent."""
        with _DURABLE:
            if self._closed:
                return
            self._closed = True
            self._reset()  # delete_ruleset without delete_state leaks ~1 MB
            try:
                _dre.delete_ruleset(self._handle)
            finally:
                self._names_in_use.discard(self.name)

    def __enter__(self) -> "RulesetRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
