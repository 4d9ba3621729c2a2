"""A policy version ready to answer: the model, the compiled policy (pure data), the prepared
evaluator (its durable_rules rulesets open) and the precomputed tables. Built by the pipeline
(engine/pipeline/stages.py), consumed by decide / check / apply."""
from __future__ import annotations

from dataclasses import dataclass

from engine.decisions.tables import VersionTables
from engine.policy.model import Policy
from engine.rules.compile import CompiledPolicy
from engine.rules.evaluator import DurableEvaluator


@dataclass(frozen=True, eq=False)
class PreparedVersion:
    policy: Policy
    compiled: CompiledPolicy
    evaluator: DurableEvaluator
    tables: VersionTables

    @property
    def version(self) -> str:
        return self.policy.version

    @classmethod
    def of(cls, policy: Policy, compiled: CompiledPolicy, evaluator: DurableEvaluator) -> "PreparedVersion":
        return cls(policy, compiled, evaluator, VersionTables(policy, compiled))

    def close(self) -> None:
        self.evaluator.close()
