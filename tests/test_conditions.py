"""The condition language → durable JSON and → Python, and the two agreeing on durable itself."""
import itertools

import pytest

from engine.policy.conditions import (NUM, STR, CompileError, NeverFires, anchored, compile_condition,
                               make_predicate, resolve_param)
from engine.rules.durable import RulesetRunner

DOC = {
    "version": "t",
    "limits": {"negotiations_per_ticket": {"value": 2, "section": "x"},
               "proposal_edits": {"value": None, "illustrative": True}},
    "timeouts": {"receipt_extension": {"window_hours": 72, "extension_hours": 96}},
    "scenarios": [{"id": "not_received", "rejection": "allowed"}],
}


def durable_of(when):
    return compile_condition(when, DOC).durable


def test_ops_translate_to_durable_operators():
    assert durable_of({"x": {"eq": 3}}) == {"x": 3}
    assert durable_of({"x": {"ne": "a"}}) == {"$neq": {"x": "a"}}  # durable rejects `$ne`
    assert durable_of({"x": {"lt": 1}}) == {"$lt": {"x": 1}}
    assert durable_of({"x": {"lte": 1}}) == {"$lte": {"x": 1}}
    assert durable_of({"x": {"gt": 1}}) == {"$gt": {"x": 1}}
    assert durable_of({"x": {"gte": 1}}) == {"$gte": {"x": 1}}
    assert durable_of({"x": {"exists": True}}) == {"$ex": {"x": 1}}
    assert durable_of({"x": {"exists": False}}) == {"$nex": {"x": 1}}


def test_in_and_not_in_expand_because_durable_has_no_in():
    assert durable_of({"s": {"in": ["a", "b"]}}) == {"$or": [{"s": "a"}, {"s": "b"}]}
    assert durable_of({"s": {"in": ["a"]}}) == {"s": "a"}
    assert durable_of({"s": {"not_in": ["a", "b"]}}) == {"$and": [{"$neq": {"s": "a"}}, {"$neq": {"s": "b"}}]}
    assert durable_of({"s": {"not_in": []}}) == {"$ex": {"s": 1}}


def test_nesting_and_bare_mapping_means_all():
    when = {"any": [{"a": {"eq": 1}, "b": {"eq": 2}}, {"all": [{"c": {"eq": True}}]}]}
    assert durable_of(when) == {"$or": [{"$and": [{"a": 1}, {"b": 2}]}, {"c": True}]}


def test_fact_operand_is_guarded_by_presence_of_the_other_fact():
    assert durable_of({"p": {"gt": {"fact": "paid"}}}) == {"$and": [{"$ex": {"paid": 1}}, {"$gt": {"p": {"$m": "paid"}}}]}


def test_params_resolve_with_units_and_list_ids():
    assert durable_of({"n": {"gte": {"param": "limits.negotiations_per_ticket"}}}) == {"$gte": {"n": 2}}
    assert durable_of({"s": {"gte": {"param": "timeouts.receipt_extension.window_hours", "unit": "hours"}}}) == \
        {"$gte": {"s": 72 * 3600}}
    assert resolve_param(DOC, "scenarios.not_received.rejection") == "allowed"


def test_null_param_means_never_fires():
    with pytest.raises(NeverFires, match="proposal_edits"):
        compile_condition({"e": {"gte": {"param": "limits.proposal_edits"}}}, DOC)


@pytest.mark.parametrize("when, path, text", [
    ({"x": {"between": 1}}, "/when/x/between", "unknown operator"),
    ({"x": {"eq": 1.5}}, "/when/x/eq", "float"),
    ({"x": {"eq": None}}, "/when/x/eq", "NoneType"),
    ({"a.b": {"eq": 1}}, "/when", "not a valid fact name"),
    ({"all": []}, "/when/all", "non-empty list"),
    ({"all": [{"x": {"eq": 1}}, {"x": {"eq": "a"}}]}, "/when/all/1/x/eq", "both a num and a str"),
    ({"x": {"in": []}}, "/when/x/in", "empty list"),
    ({"x": {"eq": {"param": "limits.nope"}}}, "/when/x/eq/param", "does not exist"),
    ({"x": {"eq": {"param": "timeouts.receipt_extension.window_hours", "unit": "weeks"}}}, "/when/x/eq/unit", "unit"),
    ({"x": {"eq": 2 ** 60}}, "/when/x/eq", "out of range"),
    ({"x": {"eq": 1, "ne": 2}}, "/when/x", "expected one"),
])
def test_bad_conditions_are_located(when, path, text):
    with pytest.raises(CompileError) as err:
        compile_condition(when, DOC)
    assert err.value.path == path
    assert text in str(err.value)


def test_fact_types_are_recorded_per_group():
    cond = compile_condition({"a": {"eq": "x"}, "b": {"eq": True}, "c": {"gt": 3}}, DOC)
    assert cond.fact_types == {"a": STR, "b": NUM, "c": NUM}


# --- agreement with durable itself ------------------------------------------------------------
CONDITIONS = [
    {"x": {"eq": 1}}, {"x": {"ne": 1}}, {"x": {"lt": 1}}, {"x": {"lte": 1}}, {"x": {"gt": 1}},
    {"x": {"gte": 1}}, {"x": {"eq": True}}, {"x": {"ne": False}}, {"x": {"in": [0, 2]}},
    {"x": {"not_in": [0, 2]}}, {"x": {"exists": True}}, {"x": {"exists": False}},
    {"s": {"eq": "中文"}}, {"s": {"ne": "a"}}, {"s": {"lt": "b"}}, {"s": {"gte": "b"}},
    {"s": {"in": ["a", "中文", 'q"x']}}, {"s": {"not_in": ["a", ""]}},
    {"x": {"gt": {"fact": "y"}}}, {"x": {"ne": {"fact": "y"}}}, {"x": {"eq": {"fact": "y"}}},
    {"any": [{"x": {"eq": 1}}, {"x": {"gte": 1}}, {"s": {"eq": "a"}}]},
    {"all": [{"any": [{"x": {"eq": 0}}, {"y": {"ne": 0}}]}, {"s": {"not_in": ["b"]}}]},
]
X_VALUES = ["MISSING", -1, 0, 1, 2, True, False]
S_VALUES = ["MISSING", "", "a", "b", "ab", "中文", 'q"x', "a\nb"]
Y_VALUES = ["MISSING", 0, 1, 2]


def test_python_predicates_agree_with_durable_on_every_value_combination():
    compiled = [compile_condition(c, DOC) for c in CONDITIONS]
    definition = {f"r{i}": anchored(c.durable, "gate") for i, c in enumerate(compiled)}
    predicates = [make_predicate(c.python, "gate") for c in compiled]
    checked = 0
    with RulesetRunner("test_conditions_agree", definition) as runner:
        for x, s, y in itertools.product(X_VALUES, S_VALUES, Y_VALUES):
            facts = {"ticket_id": "T", "stage": "gate"}
            for name, value in (("x", x), ("s", s), ("y", y)):
                if value != "MISSING":
                    facts[name] = value
            durable = {int(n[1:]) for n in runner.fired(facts)}
            plain = {i for i, p in enumerate(predicates) if p(facts)}
            assert durable == plain, (facts, [CONDITIONS[i] for i in durable ^ plain])
            checked += 1
    assert checked == len(X_VALUES) * len(S_VALUES) * len(Y_VALUES)


def test_missing_fact_makes_even_ne_false_on_both_sides():
    cond = compile_condition({"x": {"ne": 1}}, DOC)
    pred = make_predicate(cond.python, "gate")
    assert pred({"ticket_id": "T", "stage": "gate"}) is False
    assert pred({"ticket_id": "T", "stage": "gate", "x": 2}) is True
    assert pred({"ticket_id": "T", "stage": "payload", "x": 2}) is False  # stage anchor
    assert pred({"stage": "gate", "x": 2}) is False                       # ticket anchor
