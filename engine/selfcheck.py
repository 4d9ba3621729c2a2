"""`aftersale validate`'s steps past loading: compile every version into durable_rules rulesets and
cross-check the engine against the plain evaluator on generated facts.

A version that loads but cannot be compiled, or on which the two evaluators disagree, must not be
served: the service runs the same steps before it swaps a reload in (`Engine` compiles on build).
"""
from __future__ import annotations

from typing import Iterator

from engine.bundle import Bundle
from engine.compile import compile_policy
from engine.conditions import CompileError
from engine.crosscheck import crosscheck_policy
from engine.diagnostics import Diagnostic

CROSSCHECK_FACTS = 2000  # per version: enough to hit every boundary the conditions name (~0.2 s each)


def compile_and_crosscheck(bundle: Bundle, facts_per_version: int = CROSSCHECK_FACTS) -> Iterator[Diagnostic]:
    for document in bundle.documents:
        try:
            compiled = compile_policy(document.data).open()
        except CompileError as exc:
            yield document.diagnostic("compile_error", exc.path, exc.detail)
            continue
        try:
            for mismatch in crosscheck_policy(compiled, count=facts_per_version, seed=0)[:5]:
                yield document.diagnostic(
                    "engine_disagreement", "/rules",
                    "durable_rules and the plain evaluator disagree: " + mismatch.describe(),
                    hint="a bug in the compiler or runtime, not in the policy: report it")
        finally:
            compiled.close()
