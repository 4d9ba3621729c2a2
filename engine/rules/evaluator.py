"""The prepared evaluator of one compiled version: its durable_rules rulesets, open, one fixed
session each (engine/rules/durable.py), and everything per ruleset that a call would otherwise
redo (the facts each stage reads, durable rule name → compiled rule).

`CompiledPolicy` is pure data and may be inspected, diffed or cross-checked without durable_rules;
a `DurableEvaluator` owns C resources and must be closed (hot reload closes the old one when its
last request ends).
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.core.vocabulary import STAGES
from engine.rules.compile import CompiledPolicy, CompiledRule
from engine.rules.durable import FactError, RulesetRunner, RuntimeFault


class DurableEvaluator:
    """`fired(stage, facts)` on durable_rules, for any caller (facts validated); `fired_rules` for
    the decision path, whose facts are built by engine/decisions/facts.py (see there)."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        self.version = compiled.version
        self.rules = compiled.rules
        self._runners: dict[str, RulesetRunner] = {}
        try:
            for stage in STAGES:  # a version durable refuses fails here, at build, never in a request
                self._runners[stage] = RulesetRunner(compiled.ruleset_names[stage], compiled.definitions[stage])
            for key, definition in compiled.actor_definitions.items():  # gate@merchant, gate@buyer
                self._runners[key] = RulesetRunner(compiled.actor_ruleset_names[key], definition)
        except BaseException:
            self.close()
            raise
        self._reads = {stage: compiled.reads(stage) for stage in self._runners}
        self._by_name: dict[str, CompiledRule] = {
            name: compiled.rules[rule_id] for name, rule_id in compiled.durable_names.items()}
        self._closed = False

    # -- the decision path -----------------------------------------------------------------------
    def fired_rules(self, stage: str, facts: Mapping[str, Any]) -> list[CompiledRule]:
        """The compiled rules of `stage` (gate, payload, outcome, or `gate@merchant` / `gate@buyer`:
        the gate rules naming that actor's actions) that durable_rules fires for `facts`, once
        each, in rule order. The facts are trusted: built by engine/decisions/facts.py from a validated ticket,
        of the types the fact catalogue declares, and the policy checks proved every condition
        compares a fact with a value of its type (so the per-call FactValidator pass is done once,
        at build: tests/test_facts.py checks the builder against the validator)."""
        runner = self._runners.get(stage)
        if runner is None:
            raise RuntimeFault(f"policy {self.version} was closed (reloaded); use the new one")
        names = runner.fired({k: facts[k] for k in self._reads[stage] if k in facts})
        by_name = self._by_name
        if len(names) < 2:
            return [by_name[n] for n in names]
        unique = {n: by_name[n] for n in names}  # `$or` with k true branches fires k times
        return sorted(unique.values(), key=_rule_order)

    # -- any caller ------------------------------------------------------------------------------
    def fired(self, stage: str, facts: Mapping[str, Any]) -> list[str]:
        """Ids of the rules of `stage` that fire for `facts` on durable_rules, once each, in rule
        order. Raises FactError for facts that are not normalized, RuntimeFault if durable fails."""
        if stage not in self._reads:
            raise FactError(f"unknown stage `{stage}` (known: {', '.join(STAGES)})")
        self.compiled.check_facts(stage.split("@")[0], facts)
        return [rule.id for rule in self.fired_rules(stage, facts)]

    def fired_plain(self, stage: str, facts: Mapping[str, Any]) -> list[str]:
        return self.compiled.fired_plain(stage, facts)

    def __getattr__(self, name: str) -> Any:
        """The compiled policy's data (rules, definitions, durable_names, fact_types, ...)."""
        if name.startswith("__") or name == "compiled":
            raise AttributeError(name)
        return getattr(self.compiled, name)

    def runner(self, stage: str) -> RulesetRunner:
        return self._runners[stage]

    def close(self) -> None:
        """Release the durable rulesets. Idempotent; `fired` fails afterwards, `fired_plain` works."""
        runners, self._runners = list(self._runners.values()), {}
        self._closed = True
        for runner in runners:
            runner.close()

    @property
    def closed(self) -> bool:
        return self._closed


def _rule_order(rule: CompiledRule) -> int:
    return rule.index
