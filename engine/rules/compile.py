"""Policy document → `CompiledPolicy`: per stage a durable_rules ruleset definition, a rule index
with the same conditions as Python predicates, and the generated feature rules.

Works on the raw policy dict (what yaml.safe_load gives for `rules/<version>.yaml`, validated by the
loader); `{param}` operands are resolved here, so a compiled policy needs nothing else.
Durable rule names are `r0, r1, ...` (rule ids contain dots, which durable reads as nesting); the
mapping is kept in `CompiledRule.durable_name` / `CompiledPolicy.durable_names`.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.policy.conditions import (STR, CompileError, NeverFires, anchored, compile_condition,
                               make_predicate)
from engine.policy.model import Policy
from engine.rules.plain import PlainStage
from engine.rules.durable import FactError, FactValidator
from engine.core.vocabulary import BUYER_ACTIONS, MERCHANT_ACTIONS, STAGES
from engine.core.vocabulary import EFFECTS as EFFECT_KINDS

if TYPE_CHECKING:
    from engine.rules.evaluator import DurableEvaluator

FEATURE_DENY_CODE = "FEATURE_NOT_IN_POLICY"

# durable ruleset names must be unique in the process: a counter lets a hot reload compile the same
# version again while the old one still serves requests
_ruleset_serial = itertools.count(1)


@dataclass(frozen=True, eq=False)
class CompiledRule:
    id: str
    stage: str
    actions: tuple[str, ...]
    effect_kind: str                 # deny | restrict | advise | violation | outcome
    effect: dict[str, Any]                     # the effect mapping as written (params inside are not resolved)
    section: str
    predicate: Callable[[Mapping[str, Any]], bool]   # same semantics as the durable rule (anchors included)
    dropped: bool = False            # never fires (a `{param}` is null); not in any ruleset
    drop_reason: str | None = None
    actor: str | None = None
    durable_name: str | None = None  # `r<n>`; None when dropped
    condition: dict[str, Any] | None = None    # durable expression of `when` (None: always / dropped)
    python: str = "False"            # Python expression of `when` over `f`
    generated: bool = False          # a feature rule made by the compiler, not written in the file
    index: int = 0                   # rule order (feature rules first, then the file's order)


@dataclass(eq=False)
class CompiledPolicy:
    """One version compiled: pure data (rule index, durable ruleset definitions, fact types, the
    plain evaluator's generated functions). Nothing is opened in durable_rules: `open()` gives the
    prepared evaluator (engine/rules/evaluator.py), a separate object that owns the rulesets."""

    version: str
    rules: dict[str, CompiledRule]                 # id → rule, in rule order, dropped included
    definitions: dict[str, dict[str, Any]]                   # stage → durable ruleset definition
    ruleset_names: dict[str, str]                  # stage → unique durable ruleset name
    durable_names: dict[str, str]                  # `r<n>` → rule id
    fact_types: dict[str, str]                     # fact → "str" | "num" (what the conditions compare)
    _plain: dict[str, PlainStage] = field(repr=False, default_factory=dict)
    _validate: FactValidator = field(repr=False, default_factory=FactValidator)
    # stage → the facts its conditions read: only those are sent to durable (less JSON to build
    # and parse; a fact no condition names cannot change which rules fire)
    _reads: dict[str, tuple[str, ...]] = field(repr=False, default_factory=dict)
    # The gate once more, split by actor and by action: `gate@merchant` holds the gate rules naming
    # a merchant action, `gate@buyer` those naming a buyer action, `gate@negotiate` those naming
    # negotiate. A decision for one actor evaluates its actor's ruleset, a check or an answer its
    # action's: durable then neither matches nor drains rules the question ignores (a buyer
    # decision on the full gate drained ~10 rules to use ~1; a check of negotiate ~9 to use ~1).
    # Cross-checked like every stage.
    actor_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)   # `gate@<actor|action>` → definition
    actor_ruleset_names: dict[str, str] = field(default_factory=dict)  # `gate@<actor|action>` → durable name

    @property
    def dropped(self) -> dict[str, str]:
        """id → why the rule never fires."""
        return {r.id: r.drop_reason or "" for r in self.rules.values() if r.dropped}

    def rules_in(self, stage: str) -> list[CompiledRule]:
        return [r for r in self.rules.values() if r.stage == stage]

    def ruleset_json(self, stage: str) -> str:
        return json.dumps(self.definitions[stage], ensure_ascii=False, separators=(",", ":"))

    def reads(self, stage: str) -> tuple[str, ...]:
        """The facts the conditions of `stage` (or of `gate@<actor>`) read."""
        return self._reads[stage]

    def actor_rules(self, group: str) -> frozenset[str]:
        """Ids of the gate rules in `gate@<group>`, an actor or an action (dropped rules aside)."""
        return frozenset(self.durable_names[name] for name in self.actor_definitions[f"gate@{group}"])

    def fired_plain(self, stage: str, facts: Mapping[str, Any]) -> list[str]:
        """Ids of the rules of `stage` whose conditions hold for `facts`, in rule order, on the
        plain-Python evaluator (the build-time cross-check of durable_rules, and the bench floor)."""
        self.check_facts(stage, facts)
        return self._plain[stage].fired(facts)

    def check_facts(self, stage: str, facts: Mapping[str, Any]) -> None:
        """FactError unless `facts` are normalized for `stage` (engine/rules/durable.FactValidator)."""
        if stage not in self._plain:
            raise FactError(f"unknown stage `{stage}` (known: {', '.join(STAGES)})")
        self._validate(facts)
        if facts.get("stage") != stage:
            raise FactError(f"facts are for stage `{facts.get('stage')}`, evaluated as `{stage}`")

    def open(self) -> "DurableEvaluator":
        """Create every stage's durable ruleset: the prepared evaluator (close it when done)."""
        from engine.rules.evaluator import DurableEvaluator

        return DurableEvaluator(self)


def _actions(rule: Mapping[str, Any], path: str) -> tuple[str, ...]:
    action = rule.get("action")
    items = [action] if isinstance(action, str) else action
    if not isinstance(items, list) or not items or not all(isinstance(a, str) and a for a in items):
        raise CompileError(f"{path}/action", "`action` must be an action name or a non-empty list of them")
    return tuple(items)


def _effect(rule: Mapping[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    kinds = [k for k in EFFECT_KINDS if k in rule]
    if len(kinds) != 1:
        raise CompileError(path, f"a rule needs exactly one effect of {', '.join(EFFECT_KINDS)}; found {kinds or 'none'}")
    effect = rule[kinds[0]]
    if not isinstance(effect, Mapping):
        raise CompileError(f"{path}/{kinds[0]}", "an effect must be a mapping")
    return kinds[0], dict(effect)


def _feature_rules(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    features = doc.get("features") or {}
    if not isinstance(features, Mapping):
        raise CompileError("/features", "`features` must be a mapping")
    out = []
    for name, spec in features.items():
        if name in MERCHANT_ACTIONS + BUYER_ACTIONS and isinstance(spec, Mapping) and spec.get("enabled") is False:
            out.append({"id": f"feature.{name}.disabled", "stage": "gate", "action": name,
                        "actor": "merchant" if name in MERCHANT_ACTIONS else "buyer",
                        "section": spec.get("section", ""),
                        "deny": {"code": FEATURE_DENY_CODE, "message": f"该版本的政策不提供此功能：{name}",
                                 "unlock": {"kind": "never"}},
                        "_path": f"/features/{name}"})
    return out


def _merge_types(into: dict[str, str], types: Mapping[str, str], path: str) -> None:
    for name, group in types.items():
        seen = into.setdefault(name, group)
        if seen != group:
            raise CompileError(path, f"fact `{name}` is compared with a {group} value here and a {seen} value elsewhere")


def _unify_pairs(types: dict[str, str], pairs: list[tuple[str, str, str]]) -> None:
    """`{fact: other}` comparisons: both sides must be of one type group."""
    changed = True
    while changed:
        changed = False
        for left, right, path in pairs:
            a, b = types.get(left), types.get(right)
            if a and b and a != b:
                raise CompileError(path, f"facts `{left}` ({a}) and `{right}` ({b}) cannot be compared")
            if a and not b:
                types[right], changed = a, True
            elif b and not a:
                types[left], changed = b, True


def _ruleset_name(version: str, stage: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", version)
    return f"v{safe}_{stage}_{next(_ruleset_serial)}"


def compile_policy(source: Policy | Mapping[str, Any]) -> CompiledPolicy:
    """Compile a policy version. Raises CompileError (with a document path) for what cannot be
    compiled; a rule whose `{param}` is null is kept in `rules` with `dropped=True`.

    From a `Policy` (the pipeline's path) the rules' shapes are not checked again: the policy
    checks proved them (one effect, a known stage, actions, unique ids) before the model was built.
    A raw document (tools and tests that compile a fragment) has its rule shapes checked here."""
    if isinstance(source, Policy):
        doc: Mapping[str, Any] = source.raw
        items = [_shaped(rule, rule["_path"]) for rule in _feature_rules(doc)] + [
            _shaped(rule, f"/rules/{i}") for i, rule in enumerate(doc.get("rules") or [])]
    else:
        doc = source
        items = _checked_rules(doc)
    return _compile(doc, str(doc["version"]), items)


def _shaped(rule: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A rule the checks proved well-shaped, in the compiler's terms."""
    kind = next(k for k in EFFECT_KINDS if k in rule)
    action = rule["action"]
    return {"id": rule["id"], "stage": rule["stage"], "actions": (action,) if isinstance(action, str) else tuple(action),
            "kind": kind, "effect": dict(rule[kind]), "section": str(rule.get("section", "")),
            "actor": rule.get("actor"), "path": path, "when": rule.get("when"),
            "generated": path.startswith("/features")}


def _checked_rules(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rule shapes of a raw document, checked (what the policy checks prove for a bundle)."""
    if not isinstance(doc, Mapping):
        raise CompileError("/", "a policy document must be a mapping")
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise CompileError("/version", "`version` must be a non-empty string")
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise CompileError("/rules", "`rules` must be a list")
    items = []
    seen: set[str] = set()
    for path, raw in [(r["_path"], r) for r in _feature_rules(doc)] + [(f"/rules/{i}", r) for i, r in enumerate(raw_rules)]:
        if not isinstance(raw, Mapping):
            raise CompileError(path, "a rule must be a mapping")
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            raise CompileError(f"{path}/id", "a rule needs a non-empty string `id`")
        if rid in seen:
            raise CompileError(f"{path}/id", f"duplicate rule id `{rid}`")
        seen.add(rid)
        if raw.get("stage") not in STAGES:
            raise CompileError(f"{path}/stage", f"`stage` must be one of {', '.join(STAGES)}, got {raw.get('stage')!r}")
        _effect(raw, path)
        _actions(raw, path)
        items.append(_shaped(raw, path))
    return items


def _compile(doc: Mapping[str, Any], version: str, items: list[dict[str, Any]]) -> CompiledPolicy:
    rules: dict[str, CompiledRule] = {}
    fact_types: dict[str, str] = {"ticket_id": STR, "stage": STR}
    pairs: list[tuple[str, str, str]] = []
    bodies: dict[str, dict[str, Any]] = {stage: {} for stage in STAGES}
    durable_names: dict[str, str] = {}
    reads: dict[str, set[str]] = {stage: {"ticket_id", "stage"} for stage in STAGES}
    names_read: dict[str, set[str]] = {}
    for index, item in enumerate(items):
        path, rid, stage = item["path"], item["id"], item["stage"]
        common = dict(id=rid, stage=stage, actions=item["actions"], effect_kind=item["kind"], effect=item["effect"],
                      section=item["section"], actor=item["actor"], generated=item["generated"], index=index)
        try:
            cond = compile_condition(item["when"], doc, f"{path}/when")
        except NeverFires as never:
            rules[rid] = CompiledRule(**common, predicate=_never, dropped=True, drop_reason=never.reason)
            continue
        _merge_types(fact_types, cond.fact_types, f"{path}/when")
        pairs.extend((a, b, f"{path}/when") for a, b in sorted(cond.fact_pairs))
        name = f"r{index}"
        durable_names[name] = rid
        bodies[stage][name] = anchored(cond.durable, stage)
        reads[stage].update(cond.names)
        names_read[rid] = set(cond.names)
        rules[rid] = CompiledRule(**common, predicate=make_predicate(cond.python, stage, rid),
                                  durable_name=name, condition=cond.durable, python=cond.python)
    _unify_pairs(fact_types, pairs)
    actor_bodies: dict[str, dict[str, Any]] = {}
    groups = [("merchant", MERCHANT_ACTIONS), ("buyer", BUYER_ACTIONS)] + [
        (action, (action,)) for action in MERCHANT_ACTIONS + BUYER_ACTIONS]
    for group, group_actions in groups:
        key = f"gate@{group}"
        members = [r for r in rules.values() if r.stage == "gate" and r.durable_name is not None
                   and any(a in group_actions for a in r.actions)]
        # (members all have a durable_name: the walrus re-states the filter above for the type checker)
        actor_bodies[key] = {dn: bodies["gate"][dn] for r in members if (dn := r.durable_name) is not None}
        reads[key] = {"ticket_id", "stage"}.union(*(names_read[r.id] for r in members))

    plain = {stage: PlainStage(stage, [(r.id, r.python) for r in rules.values()
                                       if r.stage == stage and not r.dropped]) for stage in STAGES}
    return CompiledPolicy(version=version, rules=rules, definitions=bodies,
                          ruleset_names={stage: _ruleset_name(version, stage) for stage in STAGES},
                          durable_names=durable_names, fact_types=fact_types, _plain=plain,
                          _validate=FactValidator(fact_types),
                          _reads={stage: tuple(sorted(names)) for stage, names in reads.items()},
                          actor_definitions=actor_bodies,
                          actor_ruleset_names={key: _ruleset_name(version, key.replace("@", "_")) for key in actor_bodies})


def _never(facts: Mapping[str, Any]) -> bool:
    return False
