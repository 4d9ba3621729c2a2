"""Issue 10: inputs the engine used to read silently or crash on, and the policy's own markers.

Policy behaviour lives in rules/tests/fidelity.yaml (every version an item applies to); the
decide/check agreement is the property test in tests/test_decide_check_agree.py.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.api import Engine
from engine.cli.main import main
from engine.core.errors import InputError, TicketError
from engine.wechat import platform_view, request_from_platform, ticket_from_platform

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "wechat"
AT = "2025-10-24T01:18:30+08:00"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_directory()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def problems_of(exc: pytest.ExceptionInfo) -> set[tuple[str, str]]:
    return {(p.code, p.path) if hasattr(p, "code") else (p["code"], p["path"]) for p in exc.value.problems}


# -- item 14: epoch milliseconds ----------------------------------------------------------------------

def test_epoch_milliseconds_are_a_located_error_not_a_crash(engine):
    doc = fixture("status_MERCHANT_WAIT_RECEIPT")
    order = doc["order"]["after_sale_order"]
    for key in ("create_time", "update_time", "deadline"):
        order[key] *= 1000
    doc["context"]["signed_at"] = order["update_time"]  # a context time in ms too
    with pytest.raises(InputError) as exc:
        ticket_from_platform(doc["order"], doc["context"], policy=engine)
    assert problems_of(exc) == {("epoch_milliseconds", "/after_sale_order/create_time"),
                                ("epoch_milliseconds", "/after_sale_order/update_time"),
                                ("epoch_milliseconds", "/after_sale_order/deadline"),
                                ("epoch_milliseconds", "/context/signed_at")}
    assert f"send {order['create_time'] // 1000}" in str(exc.value)


def test_the_largest_epoch_in_seconds_is_still_read():
    from engine.wechat.reader import EPOCH_MILLISECONDS_FROM, Problems, Reader

    problems = Problems()
    reader = Reader({"t": EPOCH_MILLISECONDS_FROM - 1, "u": EPOCH_MILLISECONDS_FROM}, "", problems)
    assert reader.epoch("t") == EPOCH_MILLISECONDS_FROM - 1
    assert reader.epoch("u") is None and [p.code for p in problems.items] == ["epoch_milliseconds"]


def test_cli_answers_milliseconds_with_a_located_error(tmp_path, capsys):
    doc = fixture("status_MERCHANT_PROCESSING")
    doc["order"]["after_sale_order"]["create_time"] *= 1000
    path = tmp_path / "ms.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code = main(["decide", "--input", "wechat", "--ticket", str(path), "--actor", "merchant", "--at", AT])
    err = capsys.readouterr().err
    assert code == 1
    assert "/order/after_sale_order/create_time" in err and "epoch milliseconds" in err
    assert "Traceback" not in err and "out of range" not in err


# -- item 16: the current documentation's values ------------------------------------------------------

def test_platform_processing_is_the_platform_stepping_in(engine):
    doc = fixture("status_PLATFORM_PROCESSING")
    ticket = ticket_from_platform(doc["order"], doc["context"], policy=engine)
    assert ticket["status"] == "platform_intervention"
    decision = platform_view(engine.decide(ticket, "merchant", at=AT))
    assert decision["actions"]["agree"]["platform"]["errcode"] == 10021041


def test_reship_is_answered_as_out_of_scope(engine):
    doc = fixture("status_MERCHANT_PROCESSING")
    doc["order"]["after_sale_order"]["type"] = "RESHIP"
    with pytest.raises(InputError) as exc:
        ticket_from_platform(doc["order"], doc["context"], policy=engine)
    assert problems_of(exc) == {("out_of_scope", "/after_sale_order/type")}
    assert "补发" in str(exc.value)


# -- item 17: acceptapply and rejectapply bodies ------------------------------------------------------

def test_a_rejectapply_body_is_refused_with_10021068_where_a_negotiation_must_come_first(engine):
    doc = fixture("status_MERCHANT_PROCESSING")  # not_received: negotiation required from 2024-04-22
    ticket = ticket_from_platform(doc["order"], doc["context"], policy=engine)
    body = {"after_sale_order_id": ticket["ticket_id"], "reject_reason_type": 1, "reject_reason": "已发货"}
    action, payload = request_from_platform(body, ticket, engine, at=AT)
    assert (action, payload) == ("reject", {})
    result = platform_view(engine.check(ticket, action, payload, at=AT))
    assert result["platform"] == {"endpoint": "rejectapply", "errcode": 10021068,
                                  "errmsg": "当前售后暂不支持直接拒绝，需先使用「售后协商」与买家沟通"}


def test_a_rejectapply_body_with_an_open_complaint_answers_10021051(engine):
    doc = fixture("complaint_MERCHANT_REJECT_REFUND")
    ticket = ticket_from_platform(doc["order"], doc["context"], policy=engine)
    assert ticket["complaint"] == {"open": True}
    action, payload = request_from_platform({"after_sale_order_id": ticket["ticket_id"], "reject_reason_type": 6},
                                            ticket, engine, at=AT)
    result = platform_view(engine.check(ticket, action, payload, at=AT))
    assert result["platform"]["errcode"] == 10021051 and result["platform"]["errmsg"] == "存在进行中的纠纷单"
    closed = dict(doc["context"], platform_intervention=False)  # the complaint is over
    ticket = ticket_from_platform(doc["order"], closed, policy=engine)
    assert "complaint" not in ticket
    assert "OPEN_COMPLAINT" not in {v["code"] for v in engine.check(ticket, "reject", {}, at=AT)["violations"]}


def test_an_acceptapply_body_is_agree(engine):
    doc = fixture("status_MERCHANT_PROCESSING")
    ticket = ticket_from_platform(doc["order"], doc["context"], policy=engine)
    action, payload = request_from_platform({"after_sale_order_id": ticket["ticket_id"], "accept_type": 2},
                                            ticket, engine, at=AT)
    result = platform_view(engine.check(ticket, action, payload, at=AT))
    assert action == "agree" and result["platform"] == {"endpoint": "acceptapply", "errcode": 0}
    with pytest.raises(InputError) as exc:  # 1 agrees to a return: this after-sale is refund-only
        request_from_platform({"after_sale_order_id": ticket["ticket_id"], "accept_type": 1}, ticket, engine, at=AT)
    assert problems_of(exc) == {("contradicts_type", "/accept_type")}


def test_which_endpoint_a_body_is_for(engine):
    doc = fixture("status_MERCHANT_PROCESSING")
    ticket = ticket_from_platform(doc["order"], doc["context"], policy=engine)
    tid = ticket["ticket_id"]
    # only after_sale_order_id: acceptapply when said so
    assert request_from_platform({"after_sale_order_id": tid}, ticket, engine, at=AT, endpoint="acceptapply")[0] == "agree"
    with pytest.raises(InputError) as exc:
        request_from_platform({"after_sale_order_id": tid, "reject_reason_type": 1, "accept_type": 2},
                              ticket, engine, at=AT, base="/body")
    assert problems_of(exc) == {("ambiguous_endpoint", "/body")}
    with pytest.raises(InputError) as exc:  # said rejectapply, sent a negotiation's keys
        request_from_platform({"after_sale_order_id": tid, "merchant_update_type": 3}, ticket, engine, at=AT,
                              endpoint="rejectapply", base="/body")
    assert ("unknown_field", "/body/merchant_update_type") in problems_of(exc)
    assert ("missing_field", "/body/reject_reason_type") in problems_of(exc) or \
        ("missing", "/body/reject_reason_type") in problems_of(exc)
    with pytest.raises(InputError) as exc:
        request_from_platform({"after_sale_order_id": "other", "reject_reason_type": 1}, ticket, engine, at=AT)
    assert problems_of(exc) == {("wrong_ticket", "/after_sale_order_id")}


def test_cli_checks_a_rejectapply_body(tmp_path, capsys):
    order = tmp_path / "order.json"
    order.write_text(json.dumps(fixture("status_MERCHANT_PROCESSING")), encoding="utf-8")
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"after_sale_order_id": "2000002468828201"}), encoding="utf-8")
    code = main(["check", "--input", "wechat", "--ticket", str(order), "--payload", str(body),
                 "--endpoint", "rejectapply", "--at", AT])
    out = capsys.readouterr()
    assert code == 1 and "/reject_reason_type" in out.err  # rejectapply needs its reason type
    body.write_text(json.dumps({"after_sale_order_id": "2000002468828201", "reject_reason_type": 1}), encoding="utf-8")
    code = main(["check", "--input", "wechat", "--ticket", str(order), "--payload", str(body), "--at", AT])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["action"] == "reject" and result["platform"]["errcode"] == 10021068


# -- item 19: no spurious error without merchant_update_detail ----------------------------------------

def test_a_pending_status_without_its_proposal_reports_that_alone(engine):
    doc = fixture("status_USER_WAIT_CONFIRM_UPDATE")
    del doc["order"]["after_sale_order"]["merchant_update_detail"]
    with pytest.raises(InputError) as exc:
        ticket_from_platform(doc["order"], doc["context"], policy=engine)
    paths = {path for _, path in problems_of(exc)}
    assert paths == {"/after_sale_order/merchant_update_detail"}
    assert "last_outcome" not in str(exc.value)


# -- items 10 and 12: tickets refused as inconsistent or incomplete -----------------------------------

def plain_ticket(**changes) -> dict:
    ticket = {"ticket_id": "T1", "type": "refund_only", "status": "merchant_processing", "scenario": "no_reason_7d",
              "buyer_reason": "七天无理由", "created_at": "2024-06-01T10:00:00+08:00",
              "order": {"paid_amount": 40000, "category": "general", "goods_kind": "physical", "quantity": 1,
                        "shipped": True},
              "request": {"refund_amount": 40000, "quantity": 1}}
    ticket.update(changes)
    return ticket


@pytest.mark.parametrize("negotiation", [{"count": 2}, {"count": 1, "last_outcome": "none"}])
def test_negotiations_used_without_the_last_outcome_are_refused(engine, negotiation):
    with pytest.raises(TicketError) as exc:
        engine.decide(plain_ticket(negotiation=negotiation), "buyer", at="2024-06-10T10:00:00+08:00")
    assert problems_of(exc) == {("last_outcome_missing", "/negotiation/last_outcome")}
    assert "count is" in str(exc.value)


def test_a_return_refund_proposal_without_its_stage_is_refused(engine):
    pending = {"type": "modify_request", "reason": "return_plan_agreed", "refund_type": "return_refund",
               "refund_amount": 100, "proposed_at": "2024-06-10T09:00:00+08:00"}
    ticket = plain_ticket(type="return_refund", status="awaiting_buyer_response",
                          negotiation={"count": 1, "last_outcome": "pending", "pending": pending})
    with pytest.raises(TicketError) as exc:
        engine.apply(ticket, "accept", at="2024-06-10T10:00:00+08:00")
    assert problems_of(exc) == {("missing_field", "/negotiation/pending/stage")}
    refund_only = plain_ticket(status="awaiting_buyer_response", negotiation={"count": 1, "last_outcome": "pending",
                               "pending": dict(pending, reason="amount_only", refund_type="refund_only")})
    assert engine.apply(refund_only, "accept", at="2024-06-10T10:00:00+08:00")["allowed"] is True


# -- items 6, 8, 9: what the guide does not say is marked; codes 6-11 cite their source ---------------

def rule(policy, rule_id):
    return next(r for r in policy.raw["rules"] if r["id"] == rule_id)


@pytest.mark.parametrize("rule_id", ["merchant.negotiate.status", "buyer.intervention.already",
                                     "merchant.intercept_logistics.after_negotiation"])
def test_rules_the_guide_does_not_state_are_marked_illustrative(engine, rule_id):
    versions = [v.version for v in engine.versions()]
    having = [v for v in versions if any(r["id"] == rule_id for r in engine.policy(v).raw["rules"])]
    assert having
    for version in having:
        assert rule(engine.policy(version), rule_id).get("illustrative"), (version, rule_id)


def test_reasons_with_platform_codes_cite_the_platform_and_the_guide_words_its_reason(engine):
    for info in engine.versions():
        reasons = engine.policy(info.version).raw["reasons"]
        for reason in reasons:
            if reason.get("platform_code") is not None:
                assert "update_reason_type" in reason.get("source", ""), (info.version, reason["id"])
        contact = next(r for r in reasons if r["id"] == "contact_failed")
        assert contact["text"] == "联系不上买家"  # 三-3.1.2 注意事项c


def test_item_7_the_kept_window_is_said_to_be_an_interpretation():
    import yaml

    text = (REPO / "rules" / "tests" / "window-across-versions.yaml").read_text(encoding="utf-8")
    assert "interpretation" in yaml.safe_load(text)["description"]
    from engine.decisions import situation  # where the kept window is computed, once per question

    assert "interpretation" in (situation.__doc__ or "")


def test_the_same_proposal_mapped_twice_gives_the_same_ticket(engine):
    doc = fixture("status_USER_WAIT_CONFIRM_UPDATE")
    first = ticket_from_platform(copy.deepcopy(doc["order"]), doc["context"], policy=engine)
    assert ticket_from_platform(doc["order"], doc["context"], policy=engine) == first
