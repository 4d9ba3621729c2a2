"""engine/checks: the schema and the semantic checks on broken copies of a small valid policy, and
the bundle checks across versions. Each broken copy changes one thing and asserts the exact place
(line:column, JSON pointer) and message of the problem it causes."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.policy import checks
from engine.core import vocabulary
from engine.policy.bundle import load_directory, load_files
from engine.policy.memo import DocumentMemo
from engine.core.problems import Diagnostic
from engine.core.errors import PolicyError
from engine.core.factnames import FACTS

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
VALID = FIXTURES / "valid" / "2024-03-22.yaml"
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "policy.schema.json").read_text("utf-8"))


def broken(tmp_path: Path, *edits: tuple[str, str], name: str = "2024-03-22.yaml") -> tuple[str, list[Diagnostic]]:
    """Write the valid fixture with textual edits; return (text, diagnostics of loading it)."""
    text = VALID.read_text("utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"edit target must be unique: {old!r}"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_files([path])
    # the way a hot reload loads it (DocumentMemo: the compiled schema validator first) says the same
    with pytest.raises(PolicyError) as remembered:
        DocumentMemo().load_directory(tmp_path)
    assert remembered.value.diagnostics == caught.value.diagnostics
    return text, caught.value.diagnostics


def where(text: str, snippet: str, offset: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the first occurrence of `snippet` (+ offset characters)."""
    index = text.index(snippet) + offset
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [d.format() for d in diagnostics]
    return diagnostics[0]


# --- the valid fixture and the schema itself -------------------------------------------------

def test_valid_fixture_loads():
    bundle = load_directory(FIXTURES / "valid")
    assert bundle.versions == ["2024-03-22"]
    assert len(bundle.content_hash) == 64


def test_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _schemas(node, path="#"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{path}/{index}")


def test_schema_is_strict_and_described():
    for path, node in _schemas(SCHEMA):
        if node.get("type") == "object" and "properties" in node:
            # every object with named properties refuses others (conditions: facts go to comparisons)
            assert "additionalProperties" in node, path
            if path != "#/$defs/condition":
                assert node["additionalProperties"] is False, path
            for name, prop in node["properties"].items():
                assert prop.get("description"), f"{path}/properties/{name} has no description"


def test_schema_enums_agree_with_vocabulary():
    defs, props = SCHEMA["$defs"], SCHEMA["properties"]
    assert defs["action"]["enum"] == list(vocabulary.RULE_ACTIONS)
    assert defs["unlock"]["properties"]["kind"]["enum"] == list(vocabulary.UNLOCK_KINDS)
    assert set(defs["comparison"]["properties"]) == set(vocabulary.CONDITION_OPS)
    rule = defs["rule"]["properties"]
    assert rule["stage"]["enum"] == list(vocabulary.STAGES)
    assert [alt["required"][0] for alt in defs["rule"]["oneOf"]] == list(vocabulary.EFFECTS)
    assert rule["outcome"]["properties"]["status"]["enum"] == list(vocabulary.TICKET_STATUSES)
    assert rule["outcome"]["properties"]["effect"]["enum"] == list(vocabulary.OUTCOME_EFFECTS)
    assert list(props["features"]["properties"]) == list(vocabulary.FEATURES)
    assert props["message_placeholders"]["items"]["enum"] == list(vocabulary.KNOWN_PLACEHOLDERS)
    assert props["scenarios"]["items"]["properties"]["rejection"]["enum"] == list(vocabulary.REJECTION_MODES)


def test_effective_from_needs_an_offset():
    pattern = SCHEMA["properties"]["effective_from"]["pattern"]
    import re

    assert re.match(pattern, "2024-05-31T00:00:00+08:00")
    assert re.match(pattern, "2024-05-31T00:00:00Z")
    assert not re.match(pattern, "2024-05-31T00:00:00")
    assert not re.match(pattern, "2024-05-31")


# --- schema diagnostics ------------------------------------------------------------------------

def test_wrong_type(tmp_path):
    text, found = broken(tmp_path, ("buyer_response_hours: {value: 48,", 'buyer_response_hours: {value: "48",'))
    d = only(found)
    assert (d.code, d.path, d.message) == ("wrong_type", "/timeouts/buyer_response_hours/value",
                                           "`value` must be integer, not string `48`")
    assert (d.line, d.column) == where(text, '"48"')


def test_unknown_key_points_at_the_key_with_a_suggestion(tmp_path):
    text, found = broken(tmp_path, ("    buyer_may_accept: false", "    buyer_may_acept: false"))
    assert {d.code for d in found} == {"unknown_field", "missing_field"}
    unknown = next(d for d in found if d.code == "unknown_field")
    assert (unknown.path, unknown.message, unknown.hint) == (
        "/negotiation_types/1/buyer_may_acept", "unknown field `buyer_may_acept` (known: id, label, platform_code, changeable_fields, fixed_fields, buyer_may_accept, section, illustrative)",
        "did you mean `buyer_may_accept`?")
    assert (unknown.line, unknown.column) == where(text, "buyer_may_acept")
    missing = next(d for d in found if d.code == "missing_field")
    assert (missing.path, missing.message) == ("/negotiation_types/1/buyer_may_accept",
                                               "`buyer_may_accept` is required")
    assert (missing.line, missing.column) == where(text, "- id: request_evidence", 2)


def test_unknown_enum_value_with_suggestion(tmp_path):
    text, found = broken(tmp_path, ("    rejection: guided", "    rejection: guidded"))
    d = only(found)
    assert (d.code, d.path, d.hint) == ("unknown_value", "/scenarios/0/rejection", "did you mean `guided`?")
    assert d.message == "`guidded` is not a known rejection (known: allowed, guided, negotiation_required)"
    assert (d.line, d.column) == where(text, "guidded")


def test_effective_from_without_offset(tmp_path):
    text, found = broken(tmp_path, ('effective_from: "2024-03-22T00:00:00+08:00"', 'effective_from: "2024-03-22T00:00:00"'))
    d = only(found)
    assert (d.code, d.path, d.line, d.column) == ("bad_format", "/effective_from", 4, 17)
    assert d.message.startswith("effective_from is an ISO 8601 date-time with an offset")


def test_rule_with_two_effects(tmp_path):
    text, found = broken(tmp_path, ("    restrict: {refund_types: [refund_only]}",
                                    "    restrict: {refund_types: [refund_only]}\n    advise: {code: X, message: y}"))
    d = only(found)
    assert d.code == "one_effect" and d.path == "/rules/3"
    assert d.message == ("a rule has exactly one effect: deny, restrict, advise, violation, outcome; "
                         "found `restrict`, `advise`")


def test_unknown_condition_operator(tmp_path):
    text, found = broken(tmp_path, ("category_allows_return: {eq: false}", "category_allows_return: {equals: false}"))
    codes = {(d.code, d.path) for d in found}
    assert ("unknown_field", "/rules/3/when/category_allows_return/equals") in codes
    d = next(d for d in found if d.code == "unknown_field")
    assert (d.line, d.column) == where(text, "equals")


def test_unlock_fields_must_fit_the_kind(tmp_path):
    _, found = broken(tmp_path, ("unlock: {kind: never}", "unlock: {kind: never, needs: evidence}"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("not_allowed", "/rules/2/deny/unlock",
                                           "kind `never` takes neither `needs` nor `at`")
    _, found = broken(tmp_path, ("unlock: {kind: never}", "unlock: {kind: input}"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("missing_field", "/rules/2/deny/unlock/needs", "`needs` is required")


def test_unknown_rule_action(tmp_path):
    text, found = broken(tmp_path, ("    action: reject\n", "    action: rejekt\n"))
    d = only(found)
    assert (d.code, d.path, d.hint) == ("unknown_value", "/rules/1/action", "did you mean `reject`?")
    assert (d.line, d.column) == where(text, "rejekt")


# --- semantic diagnostics ----------------------------------------------------------------------

def test_dangling_reason_reference(tmp_path):
    text, found = broken(tmp_path, ("modify_request: [amount_only]", "modify_request: [amount_onyl]"))
    d = only(found)
    assert (d.code, d.path, d.message, d.hint) == (
        "unknown_reference", "/scenarios/0/reasons/modify_request/0", "reason `amount_onyl` is not defined in reasons",
        "did you mean `amount_only`?")
    assert (d.line, d.column) == where(text, "amount_onyl")


def test_reason_under_the_wrong_negotiation_type(tmp_path):
    text, found = broken(tmp_path, ("request_evidence: [contact_failed]", "request_evidence: [amount_only]"))
    d = only(found)
    assert (d.code, d.path) == ("wrong_negotiation_type", "/scenarios/0/reasons/request_evidence/0")
    assert d.message == "reason `amount_only` belongs to `modify_request`, not `request_evidence`"
    assert (d.line, d.column) == where(text, "request_evidence: [amount_only]", 19)


def test_scenario_offering_a_type_the_policy_lacks(tmp_path):
    _, found = broken(tmp_path, ("      request_evidence: [contact_failed]\n",
                                 "      request_evidence: [contact_failed]\n      invite_cancel: []\n"))
    d = only(found)
    assert (d.code, d.path) == ("unknown_reference", "/scenarios/0/reasons/invite_cancel")


def test_duplicate_ids(tmp_path):
    text, found = broken(tmp_path, ("  - id: fresh_food", "  - id: general"))
    d = only(found)
    assert (d.code, d.path) == ("duplicate_id", "/categories/1/id")
    assert d.message == f"duplicate id `general` in categories (first at line {where(text, '- id: general')[0]})"


def test_duplicate_rule_ids(tmp_path):
    _, found = broken(tmp_path, ("  - id: outcome.timeout", "  - id: outcome.accept.refund_only"))
    d = only(found)
    assert (d.code, d.path) == ("duplicate_id", "/rules/6/id")


def test_unknown_fact_with_suggestion(tmp_path):
    text, found = broken(tmp_path, ("negotiations_used: {gte:", "negotiation_used: {gte:"))
    d = only(found)
    assert (d.code, d.path, d.message, d.hint) == ("unknown_fact", "/rules/2/when/negotiation_used",
                                                   "unknown fact `negotiation_used`", "did you mean `negotiations_used`?")
    assert (d.line, d.column) == where(text, "negotiation_used")


def test_fact_value_outside_its_vocabulary(tmp_path):
    text, found = broken(tmp_path, ("status: {eq: awaiting_buyer_response}", "status: {eq: awaiting_buyer_respons}"))
    d = only(found)
    assert (d.code, d.path, d.hint) == ("unknown_value", "/rules/0/when/status/eq", "did you mean `awaiting_buyer_response`?")
    assert (d.line, d.column) == where(text, "awaiting_buyer_respons")


def test_fact_compared_with_the_wrong_type(tmp_path):
    _, found = broken(tmp_path, ("category_allows_return: {eq: false}", 'category_allows_return: {eq: "no"}'))
    d = only(found)
    assert (d.code, d.path, d.message) == ("fact_type_mismatch", "/rules/3/when/category_allows_return/eq",
                                           "fact `category_allows_return` is a boolean, compared with string `no`")


def test_payload_fact_in_a_gate_rule(tmp_path):
    _, found = broken(tmp_path, ("category_allows_return: {eq: false}", "p_refund_amount: {gt: 0}"))
    d = only(found)
    assert (d.code, d.path) == ("fact_stage_mismatch", "/rules/3/when/p_refund_amount")


def test_param_that_does_not_resolve(tmp_path):
    text, found = broken(tmp_path, ("{param: limits.negotiations_per_ticket}", "{param: limits.negotiation_per_ticket}"))
    d = only(found)
    assert (d.code, d.path) == ("unknown_param", "/rules/2/when/negotiations_used/gte/param")
    assert "negotiation_per_ticket" in d.message
    assert (d.line, d.column) == where(text, "limits.negotiation_per_ticket")


def test_unknown_time_fact_in_unlock(tmp_path):
    _, found = broken(tmp_path, ("at: {fact: buyer_response_deadline}", "at: {fact: buyer_deadline}"))
    assert only(found).path == "/rules/0/deny/unlock/at/fact"


def test_effect_outside_its_stage(tmp_path):
    text, found = broken(tmp_path, ("    section: 三-3.1.1-(2)\n    stage: gate\n", "    section: 三-3.1.1-(2)\n    stage: payload\n"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("effect_stage_mismatch", "/rules/1/advise",
                                           "a `payload` rule cannot have effect `advise` (allowed: violation)")
    assert (d.line, d.column) == where(text, "advise: {code: REJECTION")


def test_outcome_rule_action_and_actor(tmp_path):
    _, found = broken(tmp_path, ("    action: accept_negotiation", "    action: agree"))
    assert only(found).code == "action_stage_mismatch"
    _, found = broken(tmp_path, ("    action: [agree, reject, negotiate]", "    action: [agree, cancel_aftersale]"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("action_actor_mismatch", "/rules/0/action/1",
                                           "`cancel_aftersale` is not a merchant action")


def test_impossible_numbers(tmp_path):
    _, found = broken(tmp_path, ("buyer_response_hours: {value: 48,", "buyer_response_hours: {value: 0,"),
                      ("proposal_edits: {value: 1,", "proposal_edits: {value: -1,"))
    assert [(d.code, d.path) for d in found] == [
        ("impossible_number", "/timeouts/buyer_response_hours/value"),
        ("impossible_number", "/limits/proposal_edits/value")]
    assert found[1].message == "a limit of -1 is impossible"


def test_no_limit_must_be_marked_illustrative(tmp_path):
    _, found = broken(tmp_path, ("negotiations_per_ticket: {value: 2, section: 二-2.1-(3)}",
                                 "negotiations_per_ticket: {value: null, section: 二-2.1-(3)}"))
    assert only(found).code == "unmarked_no_limit"


def test_template_placeholders(tmp_path):
    _, found = broken(
        tmp_path,
        ("    text: 无法联系或联系不上买家\n", "    text: 无法联系或联系不上买家\n    template: 退款{refund_amount_yuan}元，{refund_amont}\n"),
        ("  message_templates: {enabled: false,", "  message_templates: {enabled: true,"),
        ("rules:\n", "message_placeholders: [paid_amount_yuan]\nrules:\n"))
    assert [(d.code, d.message) for d in found] == [  # same place: sorted by message
        ("unknown_placeholder", "placeholder `{refund_amont}` is not a known placeholder"),
        ("unknown_placeholder", "placeholder `{refund_amount_yuan}` is not in message_placeholders")]
    assert found[0].hint == "did you mean `refund_amount_yuan`?"
    assert found[0].path == "/reasons/1/template"


def test_template_needs_the_feature(tmp_path):
    _, found = broken(tmp_path, ("    text: 无法联系或联系不上买家\n", "    text: 无法联系或联系不上买家\n    template: 您好\n"))
    d = only(found)
    assert (d.code, d.path) == ("feature_disabled", "/reasons/1/template")


def test_enabled_feature_missing_its_settings(tmp_path):
    text, found = broken(tmp_path, ("extend_receipt: {enabled: false,", "extend_receipt: {enabled: true,"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("feature_without_settings", "/features/extend_receipt/enabled",
                                           "feature `extend_receipt` is enabled but the policy has no timeouts.receipt_extension")
    assert (d.line, d.column) == where(text, "extend_receipt: {enabled: true,", 26)


def test_file_name_must_be_the_version(tmp_path):
    _, found = broken(tmp_path, name="2024-03-23.yaml")
    d = only(found)
    assert (d.code, d.path, d.line, d.column) == ("version_mismatch", "/version", 3, 10)
    assert d.message == "version `2024-03-22` differs from the file name `2024-03-23.yaml`"


def test_all_problems_of_a_file_in_one_run_sorted(tmp_path):
    _, found = broken(tmp_path, ("modify_request: [amount_only]", "modify_request: [nope]"),
                      ("status: {eq: awaiting_buyer_response}", "stauts: {eq: awaiting_buyer_response}"),
                      ("  - id: fresh_food", "  - id: general"))
    assert [d.code for d in found] == ["unknown_reference", "duplicate_id", "unknown_fact"]
    assert found == sorted(found)


# --- bundles -----------------------------------------------------------------------------------

def _version(text: str, version: str, effective_from: str | None = None) -> str:
    return text.replace('version: "2024-03-22"', f'version: "{version}"').replace(
        'effective_from: "2024-03-22T00:00:00+08:00"', f'effective_from: "{effective_from or version + "T00:00:00+08:00"}"')


def test_bundle_only_top_level_yaml_sorted_with_hash(tmp_path):
    text = VALID.read_text("utf-8")
    (tmp_path / "2024-03-22.yaml").write_text(text, "utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "cases.yaml").write_text("not: [a policy", "utf-8")
    (tmp_path / "notes.txt").write_text("ignored", "utf-8")
    first = load_directory(tmp_path)
    assert [d.path.name for d in first.documents] == ["2024-03-22.yaml"]
    assert load_directory(tmp_path).content_hash == first.content_hash  # stable
    (tmp_path / "2024-03-22.yaml").write_text(text + "\n", "utf-8")
    assert load_directory(tmp_path).content_hash != first.content_hash  # any byte counts


def test_problems_from_every_file_in_one_run(tmp_path):
    text = VALID.read_text("utf-8")
    (tmp_path / "2024-03-22.yaml").write_text(text.replace("rejection: guided", "rejection: x"), "utf-8")
    (tmp_path / "2024-05-31.yaml").write_text("version: [\n", "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_directory(tmp_path)
    assert [(Path(d.file).name, d.code) for d in caught.value.diagnostics] == [
        ("2024-03-22.yaml", "unknown_value"), ("2024-05-31.yaml", "yaml_syntax")]


def test_versions_must_increase_in_file_name_order(tmp_path, monkeypatch):
    # only the version checks: the declared-changes check (another module) would also diff these
    from engine.policy.checks import versions

    monkeypatch.setattr(checks, "_BUNDLE_CHECKS", [versions.unique_versions, versions.effective_from_increases])
    text = VALID.read_text("utf-8")
    # 2024-03-22T23:00-12:00 is 2024-03-23 11:00 UTC, after 2024-03-23T00:00+08:00 (03-22 16:00 UTC)
    (tmp_path / "2024-03-22.yaml").write_text(_version(text, "2024-03-22", "2024-03-22T23:00:00-12:00"), "utf-8")
    (tmp_path / "2024-03-23.yaml").write_text(_version(text, "2024-03-23"), "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_directory(tmp_path)
    d = only(caught.value.diagnostics)
    assert (Path(d.file).name, d.code, d.path, d.line, d.column) == ("2024-03-23.yaml", "version_order", "/effective_from", 4, 17)
    (tmp_path / "2024-03-22.yaml").write_text(text, "utf-8")
    bundle = load_directory(tmp_path)
    assert bundle.versions == ["2024-03-22", "2024-03-23"]


def test_duplicate_versions(tmp_path, monkeypatch):
    from engine.policy.checks import versions

    monkeypatch.setattr(checks, "_BUNDLE_CHECKS", [versions.unique_versions])
    text = VALID.read_text("utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "2024-03-22.yaml").write_text(text, "utf-8")
    (tmp_path / "b" / "2024-03-22.yaml").write_text(text, "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_files([tmp_path / "a" / "2024-03-22.yaml", tmp_path / "b" / "2024-03-22.yaml"])
    assert [d.code for d in caught.value.diagnostics] == ["duplicate_version"]


def test_registered_bundle_check_plugs_in(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "_BUNDLE_CHECKS", [])

    def everything_is_wrong(bundle):
        document = bundle.documents[0]
        yield document.diagnostic("declared_change_unmatched", "/changes/0", "no computed change matches")

    assert checks.register_bundle_check(everything_is_wrong) is everything_is_wrong
    checks.register_bundle_check(everything_is_wrong)  # twice: once
    assert checks.bundle_checks() == (everything_is_wrong,)
    with pytest.raises(PolicyError) as caught:
        load_directory(FIXTURES / "valid")
    d = only(caught.value.diagnostics)
    assert (d.code, d.path, d.line, d.column) == ("declared_change_unmatched", "/changes/0", 7, 5)


def test_crashing_check_is_a_diagnostic_not_a_traceback(monkeypatch):
    def broken_check(document):
        raise KeyError("oops")

    monkeypatch.setattr(checks, "_DOCUMENT_CHECKS", [broken_check])
    with pytest.raises(PolicyError) as caught:
        load_directory(FIXTURES / "valid")
    assert only(caught.value.diagnostics).code == "check_crashed"


def test_fact_table_covers_design_catalogue():
    for name in ("pending_stage", "p_amount_changed", "receipt_seconds_left", "answer", "p_type"):
        assert name in FACTS


def test_outcome_status_and_effect_must_agree(tmp_path):
    text, found = broken(tmp_path, ("outcome: {status: refunding, effect: auto_refund, refund_amount: proposal}",
                                    "outcome: {status: cancelled, effect: return_flow, refund_amount: proposal}"))
    assert [(d.code, d.path, d.message) for d in found] == [
        ("outcome_mismatch", "/rules/5/outcome/status", "effect `return_flow` leads to status awaiting_buyer_return, not `cancelled`"),
        ("outcome_mismatch", "/rules/5/outcome/refund_amount", "`refund_amount` belongs to effect `auto_refund`, not `return_flow`"),
    ]
    assert (found[0].line, found[0].column) == where(text, "cancelled, effect: return_flow")


def test_illustrative_names_must_be_keys_of_the_item(tmp_path):
    text, found = broken(tmp_path, ("    illustrative: true   # the guide does not state this",
                                    "    illustrative: [rejection, templat]"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("unknown_reference", "/scenarios/0/illustrative/1",
                                           "`templat` is marked illustrative but the item has no such key")
    assert (d.line, d.column) == where(text, "templat]")



def test_refund_type_only_on_modify_request_reasons(tmp_path):
    text, found = broken(tmp_path, ("    ticket_types: [refund_only]\n    section: 三-3.1.2 注意事项c",
                                    "    ticket_types: [refund_only]\n    refund_type: refund_only\n    section: 三-3.1.2 注意事项c"))
    d = only(found)
    assert (d.code, d.path, d.message) == (
        "refund_type_misplaced", "/reasons/1/refund_type",
        "a `request_evidence` reason carries no refund type (its proposals keep the ticket's)")
    assert (d.line, d.column) == where(text, "refund_type: refund_only")


def test_refund_type_must_be_reachable_from_the_reason_ticket_types(tmp_path):
    # amount_only applies to both ticket types; with the refund type not changeable, a refund-only
    # ticket cannot carry return_refund
    text, found = broken(tmp_path,
                         ("    changeable_fields: [refund_type, refund_amount]", "    changeable_fields: [refund_amount]"),
                         ("    platform_code: 10\n", "    platform_code: 10\n    refund_type: return_refund\n"))
    d = only(found)
    assert (d.code, d.path) == ("refund_type_unreachable", "/reasons/0/refund_type")
    assert d.message.startswith("a `refund_only` ticket cannot be proposed as `return_refund`")
    assert (d.line, d.column) == where(text, "refund_type: return_refund", len("refund_type: "))


def test_refund_type_no_category_allows(tmp_path):
    _, found = broken(tmp_path,
                      ("    refund_types: [refund_only, return_refund]", "    refund_types: [refund_only]"),
                      ("    platform_code: 10\n", "    platform_code: 10\n    refund_type: return_refund\n"))
    d = only(found)
    assert (d.code, d.path, d.message) == ("refund_type_unreachable", "/reasons/0/refund_type",
                                           "no category allows `return_refund`: the reason would never be offered")


def test_a_reachable_refund_type_loads(tmp_path):
    path = tmp_path / "2024-03-22.yaml"
    path.write_text(VALID.read_text("utf-8").replace(
        "    platform_code: 10\n", "    platform_code: 10\n    refund_type: refund_only\n", 1), "utf-8")
    bundle = load_files([path])
    assert bundle.versions == ["2024-03-22"]
    assert bundle.documents[0].data["reasons"][0]["refund_type"] == "refund_only"


def test_bundle_api_and_locate():
    from engine.policy.bundle import load_document, locate

    document = load_document(VALID)
    assert document.version == "2024-03-22" and document.file == str(VALID)
    assert document.effective_from.isoformat() == "2024-03-22T00:00:00+08:00"
    assert document.data_at("/rules/0/deny/code") == "AWAITING_BUYER_RESPONSE"
    assert document.data_at("/rules/99") is None
    text = VALID.read_text("utf-8")
    assert locate(document, "/rules/0/deny/code") == where(text, "AWAITING_BUYER_RESPONSE")
    assert locate(document, "/rules/0/deny/code", at_key=True) == where(text, "code: AWAITING_BUYER_RESPONSE")
    assert locate(document, "/rules/0/deny/nothing") == where(text, "code: AWAITING_BUYER_RESPONSE")
    bundle = load_directory(FIXTURES / "valid")
    assert bundle.document("2024-03-22").version == "2024-03-22" and bundle.document("1999-01-01") is None


def test_diagnostic_format_json_and_order():
    a = Diagnostic("x", "second", "a.yaml", 3, 1, "/b", hint="do this")
    b = Diagnostic("y", "first", "a.yaml", 2, 9, "/a")
    c = Diagnostic("z", "other file", "0.yaml", 9, 9, "")
    assert a.format() == "a.yaml:3:1: /b: second (hint: do this)"
    assert c.format() == "0.yaml:9:9: /: other file"
    assert a.to_json() == {"code": "x", "message": "second", "file": "a.yaml", "line": 3, "column": 1,
                           "path": "/b", "hint": "do this", "severity": "error"}
    assert sorted([a, b, c]) == [c, b, a]
    assert str(PolicyError([a, b])) == "a.yaml:3:1: /b: second (hint: do this)\na.yaml:2:9: /a: first"
