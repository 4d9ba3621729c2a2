"""Cross-check: durable_rules and the plain evaluator must fire the same rules for the same facts.

`generate_facts` makes seeded random fact dicts around every boundary the conditions mention
(integer operand −1, =, +1; each string literal and two strings no rule names; both booleans;
fact-vs-fact comparisons near equality; sometimes a fact left out), and `crosscheck` compares the
two evaluators over any iterable of fact dicts. `aftersale validate` calls both.

`PASSED_CROSSCHECKS` remembers, per process, the cross-checks that found no disagreement, keyed
by a hash of exactly what the outcome depends on (`crosscheck_key`): the compiled conditions (the
durable ruleset definitions, the actor/action gate rulesets, each live rule's id, stage, order,
durable expression and Python expression, the dropped rules), the fact types and the facts each
ruleset reads, and the fact count and seed. Effects, messages, reasons, titles, comments — what a
policy edit most often changes — are not compiled into a condition, so a hot reload after such an
edit does not run the 500 generated facts through both evaluators again: the same definitions in
the same durable_rules build of this process fire the same rules (the generator is seeded). An
edit to any condition, a limit or threshold a condition uses, a rule's order or a fact type gives
another key and runs it. A disagreement is never remembered (it is re-run, and refused, each time).
"""
from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from engine.rules.compile import CompiledPolicy
from engine.rules.evaluator import DurableEvaluator
from engine.policy.conditions import STR
from engine.core.factnames import FACTS, FactSpec
from engine.core.vocabulary import STAGES

_DEFAULT_INT = (0, 1, 2, 3600, 86400)
_OTHER_STRINGS = ("", "zz_unknown_value")


@dataclass(frozen=True)
class Mismatch:
    version: str
    stage: str
    facts: dict[str, Any]
    durable: tuple[str, ...]
    plain: tuple[str, ...]

    def describe(self) -> str:
        only_d = sorted(set(self.durable) - set(self.plain))
        only_p = sorted(set(self.plain) - set(self.durable))
        return (f"{self.version} {self.stage}: durable only {only_d}, plain only {only_p}, "
                f"order durable {list(self.durable)} plain {list(self.plain)}; facts {self.facts}")


def crosscheck(compiled: DurableEvaluator, facts_iter: Iterable[Mapping[str, Any]], limit: int = 50) -> list[Mismatch]:
    """Every fact dict (its `stage` says which stage) through both evaluators; the disagreements
    (at most `limit`). Facts that fail validation raise FactError: fix the generator, not the rules."""
    out: list[Mismatch] = []
    members = {key: compiled.compiled.actor_rules(key[len("gate@"):]) for key in compiled.compiled.actor_definitions}
    plain_stages = compiled.compiled._plain
    for facts in facts_iter:
        stage = facts["stage"]
        durable = compiled.fired(stage, facts)  # validates the facts: the calls below reuse them
        plain = plain_stages[stage].fired(facts)
        if durable != plain:
            out.append(Mismatch(compiled.version, stage, dict(facts), tuple(durable), tuple(plain)))
        if stage == "gate":  # each actor's (action's) gate ruleset fires the plain gate's rules of it
            for key, ids in members.items():
                durable = [rule.id for rule in compiled.fired_rules(key, facts)]
                expected = [rule_id for rule_id in plain if rule_id in ids]
                if durable != expected:
                    out.append(Mismatch(compiled.version, key, dict(facts), tuple(durable), tuple(expected)))
        if len(out) >= limit:
            break
    return out


def crosscheck_policy(compiled: DurableEvaluator, count: int = 3000, seed: int = 0) -> list[Mismatch]:
    """`crosscheck` over `generate_facts(compiled, count, seed)`: what `aftersale validate` runs."""
    return crosscheck(compiled, generate_facts(compiled, count=count, seed=seed))


def crosscheck_key(compiled: CompiledPolicy, count: int, seed: int) -> str:
    """sha256 of everything `crosscheck_policy(compiled, count, seed)`'s outcome depends on (see the
    module's docstring), and of nothing else: no effect, message or ruleset name."""
    inputs = {
        "rules": [(r.id, r.stage, r.index, r.dropped, r.durable_name, r.condition, r.python)
                  for r in compiled.rules.values()],
        "definitions": compiled.definitions,
        "actor_definitions": compiled.actor_definitions,
        "durable_names": compiled.durable_names,
        "fact_types": compiled.fact_types,
        "reads": {key: compiled.reads(key) for key in [*compiled.definitions, *compiled.actor_definitions]},
        "count": count,
        "seed": seed,
    }
    text = json.dumps(inputs, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PassedCrosschecks:
    """The keys (`crosscheck_key`) of cross-checks that passed in this process, the newest
    `size` kept. A lock: engines are built in a thread (service reloads). `runs` / `remembered`
    count what `check` did (tests and the reload log read them)."""

    def __init__(self, size: int = 256) -> None:
        self._passed: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self.runs = 0
        self.remembered = 0

    def check(self, compiled: DurableEvaluator, count: int, seed: int = 0) -> list[Mismatch]:
        """`crosscheck_policy(compiled, count, seed)`, or [] at once if the same inputs passed."""
        key = crosscheck_key(compiled.compiled, count, seed)
        with self._lock:
            if key in self._passed:
                self._passed.move_to_end(key)
                self.remembered += 1
                return []
            self.runs += 1
        found = crosscheck_policy(compiled, count=count, seed=seed)
        if not found:
            with self._lock:
                self._passed[key] = None
                while len(self._passed) > self._size:
                    self._passed.popitem(last=False)
        return found

    def forget(self) -> None:
        with self._lock:
            self._passed.clear()


PASSED_CROSSCHECKS = PassedCrosschecks()


def _fact_specs() -> dict[str, FactSpec]:
    """engine/factnames.py's FACTS: name → spec with `type`, `values`, `stage`."""
    return dict(FACTS)


def _spec_values(spec: FactSpec) -> set[Any]:
    kind = spec.type
    if kind == "bool":
        return {True, False}
    if kind == "int":
        return set(_DEFAULT_INT)
    words = spec.values
    return set(words) | set(_OTHER_STRINGS) if isinstance(words, tuple) else set(_OTHER_STRINGS)


def fact_domains(compiled: CompiledPolicy | DurableEvaluator) -> dict[str, list[Any]]:
    """fact name → candidate values: the boundaries of every comparison that names it."""
    domains: dict[str, set[Any]] = {}
    for rule in compiled.rules.values():
        if rule.dropped:
            continue
        _collect(rule.condition, domains)
    for name, spec in _fact_specs().items():  # every fact the policy may name, not only those it does
        values = _spec_values(spec)
        if not domains.get(name) or spec.type == "str":
            domains.setdefault(name, set()).update(values)
    for name, group in compiled.fact_types.items():
        if name not in domains:
            domains[name] = set(_OTHER_STRINGS) if group == STR else set(_DEFAULT_INT)
    for name, values in domains.items():
        group = compiled.fact_types.get(name)
        if not values:  # only tested for presence or compared with another fact
            values.update(_OTHER_STRINGS if group == STR else _DEFAULT_INT)
        elif group == STR:
            values.update(_OTHER_STRINGS)
        elif all(isinstance(v, bool) for v in values):
            values.update((True, False))
    domains.pop("stage", None)
    domains.pop("ticket_id", None)
    return {name: sorted(values, key=repr) for name, values in sorted(domains.items())}


def _collect(expr: Any, domains: dict[str, set[Any]]) -> None:
    """Walk a durable expression, adding literal±1 around integer operands."""
    if isinstance(expr, list):
        for item in expr:
            _collect(item, domains)
        return
    if not isinstance(expr, Mapping):
        return
    for key, value in expr.items():
        if key in ("$and", "$or"):
            _collect(value, domains)
        elif key in ("$ex", "$nex"):
            for name in value:
                domains.setdefault(name, set())
        elif key.startswith("$"):
            _collect(value, domains)
        else:
            values = domains.setdefault(key, set())
            if isinstance(value, Mapping) and "$m" in value:
                domains.setdefault(value["$m"], set())
            elif type(value) is int:
                values.update((value - 1, value, value + 1))
            else:
                values.add(value)


def generate_facts(compiled: CompiledPolicy | DurableEvaluator, count: int = 3000, seed: int = 0,
                   missing_rate: float = 0.03) -> Iterator[dict[str, Any]]:
    """`count` seeded fact dicts, stages in turn, every fact of `fact_domains` drawn from its
    domain (left out with probability `missing_rate`); fact-vs-fact pairs often set near equal."""
    rng = random.Random(seed)
    domains = fact_domains(compiled)
    pairs = sorted({pair for rule in compiled.rules.values() if rule.condition  # the pairs found (None left out)
                    if (pair := _pair(rule.condition)) is not None})
    names = list(domains)
    specs = _fact_specs()
    only_in = {name: getattr(spec, "stage", None) for name, spec in specs.items()}
    for i in range(count):
        stage = STAGES[i % len(STAGES)]
        facts: dict[str, Any] = {"ticket_id": f"T-{i}", "stage": stage}
        for name in names:
            if only_in.get(name) not in (None, stage):  # a payload fact only in payload facts
                continue
            if rng.random() >= missing_rate:
                facts[name] = rng.choice(domains[name]) if domains[name] else rng.choice(_DEFAULT_INT)
        for left, right in pairs:
            if left in facts and right in facts and rng.random() < 0.5 and type(facts[right]) is int:
                facts[left] = facts[right] + rng.choice((-1, 0, 1))
        yield facts


def _pair(expr: Any) -> tuple[str, str] | None:
    """The first fact-vs-fact comparison in `expr` (enough for the catalogue's one or two)."""
    if isinstance(expr, list):
        for item in expr:
            found = _pair(item)
            if found:
                return found
        return None
    if isinstance(expr, Mapping):
        for key, value in expr.items():
            if isinstance(value, Mapping) and "$m" in value:
                return key, value["$m"]
            found = _pair(value)
            if found:
                return found
    return None
