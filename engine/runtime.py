"""The only module that imports durable_rules' C extension. `RulesetRunner` drives it directly
(not `durable.engine.Host`: its Python glue is ~85 % of its cost and its 0.2 s timer threads drain
actions of every session, stealing results under threads). See docs/design.md and
../shared/notes/durable-rules.md for the measured behaviour this relies on.

One evaluation = assert the fact on one fixed session id, drain the actions it queued (their
names are the rules that fired), retract the fact. The C state is shared and an evaluation spans
several C calls, so evaluations on one ruleset are serialized by a lock.
"""
from __future__ import annotations

import itertools
import json
import threading
from typing import Mapping

import durable_rules_engine as _dre

from engine.conditions import MAX_SAFE_INT, STR
from engine.errors import EngineError

_SID = "0"
_RESERVED = ("id", "sid")         # set by the runner: durable's message id and session id
_MAX_PROPERTIES = 250             # durable refuses facts with more than 255 properties (error 302)
_ASSERTED, _NO_MATCH = 0, 1       # assert_fact result codes; others are faults


class RuntimeFault(EngineError):
    """durable_rules failed during an evaluation. The runner reset its session and is usable."""


class FactError(EngineError):
    """A fact dict is not normalized (ints, bools, strings; no None/float; types the rules expect)."""


def validate_facts(facts: Mapping, fact_types: Mapping[str, str] | None = None) -> None:
    """Cheap check that durable and the plain evaluator will read `facts` the same way.
    `fact_types` (from the compiler) names the facts conditions compare with a string (`str`)
    or a number/bool (`num`): durable compares across those groups erratically (`"" == 0`)."""
    if not isinstance(facts, Mapping):
        raise FactError(f"facts must be a mapping, got {type(facts).__name__}")
    if len(facts) > _MAX_PROPERTIES:
        raise FactError(f"too many facts ({len(facts)} > {_MAX_PROPERTIES})")
    for key, value in facts.items():
        kind = type(value)
        if kind is str or kind is bool:
            continue
        if kind is int:
            if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
                continue
            raise FactError(f"fact `{key}`: integer {value} out of range (|n| <= 2**53)")
        raise FactError(f"fact `{key}`: {kind.__name__} is not allowed (only int, bool, str; no None/float)")
    for key in _RESERVED:
        if key in facts:
            raise FactError(f"fact name `{key}` is reserved by the runtime")
    if fact_types:
        for key, group in fact_types.items():
            if key in facts and (type(facts[key]) is str) != (group == STR):
                want = "a string" if group == STR else "an integer or boolean"
                raise FactError(f"fact `{key}` must be {want}, got {facts[key]!r}")


class RulesetRunner:
    """One durable ruleset (already compiled to JSON) and its single fixed session."""

    _names_in_use: set[str] = set()
    _registry_lock = threading.Lock()

    def __init__(self, name: str, definition: dict | str) -> None:
        """`name` must be unique in the process while the runner is open (durable's rule)."""
        text = definition if isinstance(definition, str) else json.dumps(
            definition, ensure_ascii=False, separators=(",", ":"))
        with self._registry_lock:
            if name in self._names_in_use:
                raise RuntimeFault(f"ruleset name `{name}` is already in use in this process")
            try:
                # ensure_ascii=False is required: durable compares the raw bytes of strings, so
                # `\u4e2d` in a fact never equals `中` in a rule.
                self._handle = _dre.create_ruleset(name, text)
            except Exception as exc:  # durable_rules_engine.error, MemoryError
                raise RuntimeFault(f"durable_rules rejected ruleset `{name}`: {exc}") from exc
            self._names_in_use.add(name)
        self.name = name
        self._lock = threading.Lock()
        self._ids = itertools.count(1)   # unique message id per fact: no MessageObserved on repeats
        self._closed = False

    def fired(self, facts: Mapping) -> list[str]:
        """Names of the rules that fired for `facts`, in durable's order, duplicates kept (a rule
        fires once per true branch of an `$or`). `facts` must already pass `validate_facts`."""
        body = json.dumps(facts, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
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
            if isinstance(exc, RuntimeFault):
                raise
            raise RuntimeFault(f"durable_rules failed in `{self.name}`: {exc}") from exc
        finally:
            if asserted:
                try:
                    _dre.retract_fact(handle, message)
                except Exception:  # the state was reset above, or the fact is gone already
                    self._reset()
        return names

    def _reset(self) -> None:
        # an exception between start_action_for_state and the end of the drain leaves the session
        # leased for 30 s (later evaluations silently see nothing): deleting the state is the reset
        try:
            _dre.delete_state(self._handle, _SID)
        except Exception:
            pass

    def close(self) -> None:
        """Delete the session and the ruleset (hot reload). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reset()  # delete_ruleset without delete_state leaks ~1 MB
            try:
                _dre.delete_ruleset(self._handle)
            finally:
                with self._registry_lock:
                    self._names_in_use.discard(self.name)

    def __enter__(self) -> "RulesetRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
