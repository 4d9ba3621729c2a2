"""engine/wechat: platform payloads in, the same answers out as from hand-written ticket facts.

Fixtures (tests/fixtures/wechat/):
- `<name>.json`: a `--input wechat` file `{"order": <getaftersaleorder response>, "context": {...}}`;
- `expected/<name>.json`: the same after-sale written by hand in the engine's terms (`ticket`, `at`),
  or the `error` reading it must raise;
- `requests/<name>.json`: a merchantupdateaftersale body, the order fixture it targets and the
  hand-written equivalent `(action, payload)`.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import pytest

from engine.api import Engine
from engine.core.errors import InputError
from engine.decisions.facts import build_facts
from engine.decisions.ticket import validate_ticket
from engine.wechat import platform_view, proposal_from_platform, ticket_from_platform
from engine.wechat import codes
from engine.cli.wechat_input import load_platform_ticket, platform_ticket_from_document

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
ORDER_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))
REQUEST_FIXTURES = sorted(p.stem for p in (FIXTURES / "requests").glob("*.json"))

# The status enum as the API note lists it: every value must map or be refused by name.
NOTE_STATUSES = """USER_CANCELD MERCHANT_PROCESSING MERCHANT_REJECT_REFUND MERCHANT_REJECT_RETURN USER_WAIT_RETURN
RETURN_CLOSED MERCHANT_WAIT_RECEIPT MERCHANT_OVERDUE_REFUND MERCHANT_REFUND_SUCCESS MERCHANT_RETURN_SUCCESS
PLATFORM_REFUNDING PLATFORM_REFUND_FAIL USER_WAIT_CONFIRM MERCHANT_REFUND_RETRY_FAIL MERCHANT_FAIL
USER_WAIT_CONFIRM_UPDATE USER_WAIT_HANDLE_MERCHANT_AFTER_SALE WAIT_PACKAGE_INTERCEPT MERCHANT_REJECT_EXCHANGE
MERCHANT_REJECT_RESHIP USER_WAIT_RECEIPT MERCHANT_EXCHANGE_SUCCESS""".split() + [
    "PLATFORM_PROCESSING",  # 平台审核中: in the current documentation, not in the older note's list
]


def load(name: str, sub: str = "") -> dict:
    return json.loads((FIXTURES / sub / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_directory()


def problem_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    first = exc.value.problems[0]
    return first.code, first.path


# -- fixtures cover the platform ------------------------------------------------------------------

def test_every_status_of_the_note_is_mapped_or_refused_and_has_a_fixture():
    assert set(codes.ALL_STATUSES) == set(NOTE_STATUSES)
    assert not set(codes.STATUS_TO_TICKET) & set(codes.NOT_NEGOTIABLE)
    for status in NOTE_STATUSES:
        assert f"status_{status}" in ORDER_FIXTURES, status


def test_every_negotiation_type_has_a_fixture():
    types = {load(name)["order"]["after_sale_order"].get("merchant_update_detail", {}).get("merchant_update_type")
             for name in ORDER_FIXTURES}
    assert {1, 2, 3} <= types


# -- the same answers from platform payloads as from hand-written facts ---------------------------

@pytest.mark.parametrize("name", ORDER_FIXTURES)
def test_platform_payload_decides_like_the_hand_written_ticket(name, engine):
    expected = load(name, "expected")
    if "error" in expected:
        with pytest.raises(InputError) as exc:
            load_platform_ticket(str(FIXTURES / f"{name}.json"), policy=engine)
        assert problem_of(exc) == (expected["error"]["code"], expected["error"]["path"])
        return
    ticket = load_platform_ticket(str(FIXTURES / f"{name}.json"), policy=engine)
    assert validate_ticket(ticket) is ticket
    hand = expected["ticket"]
    assert ticket["status"] == hand["status"] and ticket["type"] == hand["type"]
    at = datetime.fromisoformat(expected["at"])
    policy = engine.policy(engine.version_at(at))
    for actor in ("merchant", "buyer"):
        # every fact, including those no rule reads yet (buyer evidence, goods kind)
        assert build_facts(policy, ticket, actor, at) == build_facts(policy, hand, actor, at), actor
        assert engine.decide(ticket, actor, at=at) == engine.decide(hand, actor, at=at), actor


@pytest.mark.parametrize("name", REQUEST_FIXTURES)
def test_platform_request_checks_like_the_hand_written_payload(name, engine):
    case = load(name, "requests")
    expected = load(case["order_fixture"], "expected")
    ticket = load_platform_ticket(str(FIXTURES / f"{case['order_fixture']}.json"), policy=engine)
    policy = engine.policy(engine.version_at(expected["at"]))
    action, payload = proposal_from_platform(case["body"], ticket, policy)
    assert (action, payload) == (case["equivalent"]["action"], case["equivalent"]["payload"])
    ours = engine.check(ticket, action, payload, at=expected["at"])
    theirs = engine.check(expected["ticket"], action, case["equivalent"]["payload"], at=expected["at"])
    assert ours == theirs


@pytest.mark.parametrize("name, valid, codes_found", [
    ("negotiate_amount_only", True, []),
    ("negotiate_media_missing", False, ["EVIDENCE_REQUIRED"]),     # a policy finding, not a mapping error
    ("negotiate_amount_above_paid", False, ["AMOUNT_ABOVE_PAID"]),
    ("negotiate_invite_cancel", True, []),
    ("negotiate_request_evidence", True, []),
    ("modify_pending_amount", True, []),
    ("receiving_stage_amount", True, []),
    ("receiving_stage_type_change", False, ["TYPE_CHANGE_AT_RECEIVING_STAGE"]),
])
def test_request_fixtures_reach_the_expected_verdict(name, valid, codes_found, engine):
    case = load(name, "requests")
    expected = load(case["order_fixture"], "expected")
    ticket = load_platform_ticket(str(FIXTURES / f"{case['order_fixture']}.json"), policy=engine)
    action, payload = proposal_from_platform(case["body"], ticket, engine.policy(engine.version_at(expected["at"])))
    result = engine.check(ticket, action, payload, at=expected["at"])
    assert result["valid"] is valid
    for code in codes_found:
        assert code in [v["code"] for v in result["violations"]]


# -- mapping details ---------------------------------------------------------------------------------

def sample() -> tuple[dict, dict]:
    document = load("status_USER_WAIT_CONFIRM_UPDATE")
    return document["order"], document["context"]


def test_pending_proposal_is_read_from_merchant_update_detail(engine):
    order, context = sample()
    pending = ticket_from_platform(order, context, policy=engine)["negotiation"]["pending"]
    assert pending == {"type": "modify_request", "reason": "amount_only", "proposed_at": "2025-10-24T00:18:30+08:00",
                       "refund_type": "refund_only", "refund_amount": 30000, "edits": 0, "evidence_count": 1,
                       "message": "已与您沟通，退款调整为300元", "stage": "merchant_processing"}


def test_bare_after_sale_order_object_is_accepted_and_paths_follow_it(engine):
    order, context = sample()
    inner = order["after_sale_order"]
    assert ticket_from_platform(inner, context, policy=engine) == ticket_from_platform(order, context, policy=engine)
    inner = copy.deepcopy(inner)
    inner["refund_info"]["amount"] = 400.0
    with pytest.raises(InputError) as exc:
        ticket_from_platform(inner, context, policy=engine)
    assert problem_of(exc) == ("wrong_type", "/refund_info/amount")


def test_times_become_aware_iso_in_shanghai(engine):
    order, context = sample()
    ticket = ticket_from_platform(order, context, policy=engine)
    assert ticket["created_at"] == "2025-10-23T23:18:30+08:00"


def test_deadline_rule_seconds_left_and_absolute_agree(engine):
    absolute = ticket_from_platform(*_doc("status_MERCHANT_WAIT_RECEIPT"), policy=engine)
    seconds_left = ticket_from_platform(*_doc("deadline_seconds_left"), policy=engine)
    from_fetch = ticket_from_platform(*_doc("deadline_seconds_left_fetched_at"), policy=engine)
    assert load("deadline_seconds_left")["order"]["after_sale_order"]["deadline"] == 60 * 3600
    deadline = absolute["return_logistics"]["receipt_deadline"]
    assert deadline == "2025-10-27T17:18:30+08:00"
    assert seconds_left["return_logistics"]["receipt_deadline"] == deadline
    assert from_fetch["return_logistics"]["receipt_deadline"] == deadline


def test_deadline_as_seconds_left_without_an_anchor_is_a_located_error(engine):
    order, context = _doc("deadline_seconds_left")
    del order["after_sale_order"]["update_time"]
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    assert problem_of(exc) == ("deadline_without_anchor", "/after_sale_order/deadline")


def test_complaint_means_the_platform_stepped_in_unless_context_says_it_is_over(engine):
    order, context = _doc("complaint_MERCHANT_REJECT_REFUND")
    assert ticket_from_platform(order, context, policy=engine)["status"] == "platform_intervention"
    context["platform_intervention"] = False
    assert ticket_from_platform(order, context, policy=engine)["status"] == "merchant_rejected"


def test_receiving_stage_is_inferred_from_the_return_waybill(engine):
    order, context = _doc("negotiation_type3_receiving_stage")
    assert ticket_from_platform(order, context, policy=engine)["negotiation"]["pending"]["stage"] == "awaiting_merchant_receipt"
    order["after_sale_order"]["return_info"]["waybill_id"] = ""
    assert ticket_from_platform(order, context, policy=engine)["negotiation"]["pending"]["stage"] == "merchant_processing"


def _doc(name: str) -> tuple[dict, dict]:
    document = load(name)
    return document["order"], document["context"]


# -- bad input: one clear, located error each --------------------------------------------------------

def test_missing_after_sale_order():
    with pytest.raises(InputError) as exc:
        ticket_from_platform({"errcode": 0, "errmsg": "ok"}, {})
    assert problem_of(exc) == ("missing_field", "/after_sale_order")
    with pytest.raises(InputError) as exc:
        platform_ticket_from_document({"order": {"errcode": 0}, "context": {}})
    assert problem_of(exc) == ("missing_field", "/order/after_sale_order")


def test_platform_error_response_is_refused_with_its_errcode():
    with pytest.raises(InputError) as exc:
        ticket_from_platform({"errcode": 10021050, "errmsg": "after sale order not exist"}, {})
    assert problem_of(exc) == ("platform_error", "/errcode")
    assert "10021050" in str(exc.value)


def test_unknown_status_lists_the_known_ones():
    order, context = sample()
    order["after_sale_order"]["status"] = "MERCHANT_THINKING"
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context)
    assert problem_of(exc) == ("unknown_status", "/after_sale_order/status")
    assert "MERCHANT_PROCESSING" in str(exc.value)


def test_not_negotiable_status_names_the_platform_status():
    with pytest.raises(InputError) as exc:
        ticket_from_platform(*_doc("status_USER_WAIT_CONFIRM"))
    assert problem_of(exc) == ("status_not_negotiable", "/after_sale_order/status")
    assert "USER_WAIT_CONFIRM" in str(exc.value)


def test_exchange_type_is_out_of_scope():
    order, context = _doc("status_MERCHANT_PROCESSING")
    order["after_sale_order"]["type"] = "EXCHANGE"
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context)
    assert problem_of(exc) == ("out_of_scope", "/after_sale_order/type")


@pytest.mark.parametrize("where, value", [
    (("refund_info", "amount"), "40000"),
    (("refund_info", "amount"), True),
    (("merchant_update_detail", "new_after_sale_amount"), "30000"),
])
def test_amounts_are_never_coerced(where, value, engine):
    order, context = sample()
    order["after_sale_order"][where[0]][where[1]] = value
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    assert problem_of(exc) == ("wrong_type", f"/after_sale_order/{where[0]}/{where[1]}")


def test_context_amount_as_string_and_every_problem_reported_at_once(engine):
    order, context = sample()
    order["after_sale_order"]["refund_info"]["amount"] = "40000"
    context = dict(context, paid_amount="40000", colour="red")
    del context["scenario"]
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    found = {(p.code, p.path) for p in exc.value.problems}
    assert found == {("wrong_type", "/after_sale_order/refund_info/amount"), ("wrong_type", "/context/paid_amount"),
                     ("unknown_field", "/context/colour"), ("missing_field", "/context/scenario")}


def test_unknown_reason_code_in_a_pending_proposal_is_decided_anyway_and_flagged(engine):
    """Item 18: the platform adds reasons before the policy does; no decision reads the reason."""
    order, context = sample()
    known = ticket_from_platform(order, context, policy=engine)
    order["after_sale_order"]["merchant_update_detail"]["update_reason_type"] = 42
    warnings: list[dict] = []
    ticket = ticket_from_platform(order, context, policy=engine, warnings=warnings)
    assert "reason" not in ticket["negotiation"]["pending"]
    assert [(w["code"], w["path"]) for w in warnings] == [
        ("unknown_reason_code", "/after_sale_order/merchant_update_detail/update_reason_type")]
    assert "10 (amount_only)" in warnings[0]["message"]
    at = "2025-10-24T01:18:30+08:00"
    for actor in ("merchant", "buyer"):
        assert engine.decide(ticket, actor, at=at)["actions"] == engine.decide(known, actor, at=at)["actions"]
    flagged = platform_view(engine.decide(ticket, "merchant", at=at), warnings)
    assert flagged["warnings"][0]["code"] == "unknown_reason_code"
    assert "warnings" not in platform_view(engine.decide(known, "merchant", at=at), [])


def test_unknown_reason_code_is_flagged_by_the_cli(tmp_path, capsys):
    from engine.cli.main import main

    document = load("status_USER_WAIT_CONFIRM_UPDATE")
    document["order"]["after_sale_order"]["merchant_update_detail"]["update_reason_type"] = 42
    path = tmp_path / "order.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    code = main(["decide", "--input", "wechat", "--ticket", str(path), "--actor", "merchant",
                 "--at", "2025-10-24T01:18:30+08:00"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["warnings"][0]["code"] == "unknown_reason_code"


def test_outcome_of_an_earlier_negotiation_is_required(engine):
    order, context = _doc("status_MERCHANT_PROCESSING")
    context["negotiations_used"] = 1
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    assert problem_of(exc) == ("missing_field", "/context/last_outcome")


def test_context_that_contradicts_the_platform_status(engine):
    order, context = sample()
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, dict(context, last_outcome="rejected", negotiations_used=0), policy=engine)
    assert {p.path for p in exc.value.problems} == {"/context/last_outcome", "/context/negotiations_used"}
    order, context = _doc("status_WAIT_PACKAGE_INTERCEPT")
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, dict(context, intercept_requested=False), policy=engine)
    assert problem_of(exc) == ("contradicts_status", "/context/intercept_requested")


def test_cli_file_must_hold_order_and_context_only():
    with pytest.raises(InputError) as exc:
        platform_ticket_from_document({"order": {}, "extra": 1})
    assert {(p.code, p.path) for p in exc.value.problems} == {("missing_field", "/context"), ("unknown_field", "/extra")}


# -- merchantupdateaftersale bodies -------------------------------------------------------------------

def test_request_on_a_pending_proposal_is_modify_negotiation(engine):
    ticket = ticket_from_platform(*sample(), policy=engine)
    body = {"merchant_update_type": 3, "type": 1, "amount": 32000, "update_reason_type": 10, "media_ids": ["M"]}
    assert proposal_from_platform(body, ticket, engine.policy("2024-05-31"))[0] == "modify_negotiation"


def test_media_ids_missing_maps_to_no_evidence_not_an_error(engine):
    ticket = ticket_from_platform(*_doc("status_MERCHANT_PROCESSING"), policy=engine)
    body = {"merchant_update_type": 2, "update_reason_type": 7}
    assert proposal_from_platform(body, ticket, engine.policy("2024-05-31")) == (
        "negotiate", {"type": "request_evidence", "reason": "contact_failed", "message": "", "evidence_count": 0})


@pytest.mark.parametrize("body, code, path", [
    ({"merchant_update_type": 3, "type": 1, "amount": 100, "update_reason_type": 99}, "unknown_reason_code", "/update_reason_type"),
    ({"merchant_update_type": 3, "type": 1, "amount": "100", "update_reason_type": 10}, "wrong_type", "/amount"),
    ({"merchant_update_type": 3, "update_reason_type": 10, "amount": 100}, "missing_field", "/type"),
    ({"merchant_update_type": 4, "update_reason_type": 10}, "unknown_value", "/merchant_update_type"),
    ({"merchant_update_type": 2, "update_reason_type": 7, "media_ids": "M1"}, "wrong_type", "/media_ids"),
    ({"merchant_update_type": 2, "update_reason_type": 7, "reason": "x"}, "unknown_field", "/reason"),
    ({"after_sale_order_id": "1", "merchant_update_type": 2, "update_reason_type": 7}, "wrong_ticket", "/after_sale_order_id"),
])
def test_malformed_request_bodies(body, code, path, engine):
    ticket = ticket_from_platform(*_doc("status_MERCHANT_PROCESSING"), policy=engine)
    with pytest.raises(InputError) as exc:
        proposal_from_platform(body, ticket, engine.policy("2024-05-31"))
    assert problem_of(exc) == (code, path)


def test_unknown_reason_code_message_names_the_version_and_codes(engine):
    ticket = ticket_from_platform(*_doc("status_MERCHANT_PROCESSING"), policy=engine)
    with pytest.raises(InputError) as exc:
        proposal_from_platform({"merchant_update_type": 2, "update_reason_type": 99}, ticket, engine.policy("2024-05-31"))
    message = str(exc.value)
    assert "2024-05-31" in message and "7 (contact_failed)" in message and "11 (return_plan_agreed)" in message


# -- platform_view --------------------------------------------------------------------------------------

def test_platform_view_of_a_decision(engine):
    expected = load("status_MERCHANT_PROCESSING", "expected")
    decision = engine.decide(expected["ticket"], "merchant", at=expected["at"])
    before = copy.deepcopy(decision)
    view = platform_view(decision)
    assert decision == before  # the engine's answer is not modified
    assert view["actions"]["reject"]["platform"] == {"endpoint": "rejectapply", "errcode": 10021068,
                                                     "errmsg": codes.PLATFORM_ERROR_TEXT[10021068]}
    assert view["actions"]["agree"]["platform"] == {"endpoint": "acceptapply", "errcode": 0}
    assert view["actions"]["modify_negotiation"]["platform"]["errcode"] == 10021041  # NO_PENDING_PROPOSAL


def test_platform_view_fills_status_gaps_from_the_table(engine):
    expected = load("status_USER_WAIT_CONFIRM_UPDATE", "expected")
    view = platform_view(engine.decide(expected["ticket"], "merchant", at=expected["at"]))
    denial = view["actions"]["agree"]["denials"][0]
    assert denial["code"] == "AWAITING_BUYER_RESPONSE" and denial["platform_error"] == 10021041
    refunded = load("status_MERCHANT_REFUND_SUCCESS", "expected")
    view = platform_view(engine.decide(refunded["ticket"], "merchant", at=refunded["at"]))
    codes_seen = {d["code"]: d.get("platform_error") for d in view["actions"]["agree"]["denials"]}
    assert codes_seen["STATUS_NOT_ALLOWED"] == 10021041


def test_platform_view_of_a_check_and_of_buyer_answers(engine):
    case = load("negotiate_media_missing", "requests")
    expected = load(case["order_fixture"], "expected")
    result = engine.check(expected["ticket"], "negotiate", case["equivalent"]["payload"], at=expected["at"])
    view = platform_view(result)
    # the platform publishes no errcode for missing images: null, not a made-up code
    assert view["platform"] == {"endpoint": "merchantupdateaftersale", "errcode": None}
    buyer = engine.decide(expected["ticket"], "buyer", at=expected["at"])
    assert platform_view(buyer) == buyer


def test_platform_view_keeps_the_policys_own_code():
    result = {"action": "reject", "actor": "merchant", "valid": False,
              "violations": [{"code": "STATUS_NOT_ALLOWED", "platform_error": 10020001, "field": None},
                             {"code": "NEGOTIATION_REQUIRED_FIRST", "field": None}]}
    view = platform_view(result)
    assert [v["platform_error"] for v in view["violations"]] == [10020001, 10021068]
    assert view["platform"]["errcode"] == 10020001


def test_cli_loader_without_a_policy_uses_the_bundled_rules(engine):
    path = str(FIXTURES / "status_USER_WAIT_CONFIRM_UPDATE.json")
    assert load_platform_ticket(path) == load_platform_ticket(path, policy=engine)


def test_ticket_level_problems_point_at_the_payload_field(engine):
    order, context = sample()
    context = dict(context, paid_amount=35000)  # the buyer asks 40000 fen of an order paid 35000
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    assert problem_of(exc) == ("amount_above_paid", "/after_sale_order/refund_info/amount")
    assert "/request/refund_amount" in exc.value.problems[0].message


def test_pending_status_without_merchant_update_detail(engine):
    order, context = sample()
    del order["after_sale_order"]["merchant_update_detail"]
    with pytest.raises(InputError) as exc:
        ticket_from_platform(order, context, policy=engine)
    assert problem_of(exc) == ("missing_field", "/after_sale_order/merchant_update_detail")
