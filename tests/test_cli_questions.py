"""`aftersale decide | check | apply` end to end through engine.cli.main (bundled rules)."""
import functools
import json
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "tickets"


@pytest.fixture(autouse=True)
def one_engine(request, monkeypatch):
    """Load the bundled rules once for this module (a load takes 0.3-2 s on a busy machine); the
    first test still goes through the real loading path."""
    if request.node.name == "test_decide_prints_the_decision":
        return
    from engine.api import Engine

    shared = _shared_engine()
    monkeypatch.setattr(Engine, "from_directory", classmethod(lambda cls, path=None: shared))


@functools.lru_cache(maxsize=1)
def _shared_engine():
    from engine.api import Engine

    return Engine.from_directory(None)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_decide_prints_the_decision(capsys):
    code, decision, _ = run(capsys, "decide", "--ticket", str(EXAMPLES / "new-not-received.json"),
                            "--actor", "merchant", "--at", "2024-06-02T10:00:00+08:00")
    assert code == 0
    assert decision["policy"]["version"] == "2024-05-31"
    assert decision["actions"]["reject"]["denials"][0]["code"] == "NEGOTIATION_REQUIRED_FIRST"


def test_decide_picks_the_version_in_force_or_the_one_asked_for(capsys):
    args = ["decide", "--ticket", str(EXAMPLES / "new-not-received.json"), "--actor", "merchant"]
    _, decision, _ = run(capsys, *args, "--at", "2024-03-15T10:00:00+08:00")
    assert decision["policy"]["version"] == "2024-03-11"
    _, decision, _ = run(capsys, *args, "--at", "2024-06-02T10:00:00+08:00", "--version", "2024-03-22")
    assert decision["policy"]["version"] == "2024-03-22"


def test_naive_at_is_a_clear_error(capsys):
    code, out, err = run(capsys, "decide", "--ticket", str(EXAMPLES / "new-not-received.json"),
                         "--actor", "merchant", "--at", "2024-06-02T10:00:00")
    assert code == 1 and out is None
    assert "--at" in err and "UTC offset" in err and "Traceback" not in err


def test_invalid_ticket_is_located(capsys, tmp_path):
    ticket = json.loads((EXAMPLES / "new-not-received.json").read_text(encoding="utf-8"))
    ticket["order"]["paid_amount"] = -5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(ticket), encoding="utf-8")
    code, _, err = run(capsys, "decide", "--ticket", str(path), "--actor", "buyer", "--at", "2024-06-02T10:00:00+08:00")
    assert code == 1 and "/order/paid_amount" in err


def test_check_exit_code_follows_validity(capsys, tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"type": "modify_request", "reason": "amount_only", "refund_type": "refund_only",
                                   "refund_amount": 99999, "evidence_count": 1}), encoding="utf-8")
    code, result, _ = run(capsys, "check", "--ticket", str(EXAMPLES / "new-not-received.json"),
                          "--action", "negotiate", "--payload", str(payload), "--at", "2024-06-02T10:00:00+08:00")
    assert code == 1 and result["valid"] is False
    assert [v["code"] for v in result["violations"]] == ["AMOUNT_ABOVE_PAID"]
    code, result, _ = run(capsys, "check", "--ticket", str(EXAMPLES / "new-not-received.json"),
                          "--action", "agree", "--at", "2024-06-02T10:00:00+08:00")
    assert code == 0 and result["valid"] is True


def test_malformed_payload_is_an_error_not_a_violation(capsys, tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"type": "modify_request", "reason": "amount_only", "refund_amount": -1}),
                       encoding="utf-8")
    code, out, err = run(capsys, "check", "--ticket", str(EXAMPLES / "new-not-received.json"),
                         "--action", "negotiate", "--payload", str(payload), "--at", "2024-06-02T10:00:00+08:00")
    assert code == 1 and out is None and "/refund_amount" in err


def test_apply_accept_and_early_timeout(capsys):
    ticket = str(EXAMPLES / "pending-amount-proposal.json")
    code, result, _ = run(capsys, "apply", "--ticket", ticket, "--answer", "accept", "--at", "2024-06-02T10:00:00+08:00")
    assert code == 0 and result["effects"] == [{"effect": "auto_refund", "refund_amount": 30000}]
    code, result, _ = run(capsys, "apply", "--ticket", ticket, "--answer", "timeout", "--at", "2024-06-02T10:00:00+08:00")
    assert code == 1 and result["violations"][0]["code"] == "NOT_TIMED_OUT"


def test_unknown_answer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["apply", "--ticket", str(EXAMPLES / "pending-amount-proposal.json"), "--answer", "maybe"])
    assert info.value.code == 2


WECHAT_ORDER = {
    "errcode": 0, "errmsg": "ok",
    "after_sale_order": {
        "after_sale_order_id": "2000002468828209", "order_id": "3731610521722299136",
        "status": "USER_WAIT_CONFIRM_UPDATE", "type": "REFUND", "sub_type": "DEFAULT",
        "reason": "10000581", "reason_text": "材质/面料/品牌与描述不符",
        "create_time": 1761232710, "update_time": 1761236310, "deadline": 1761409110,
        "product_info": {"product_id": "10000233879473", "sku_id": "3472860951", "count": 1},
        "refund_info": {"amount": 40000},
        "return_info": {"waybill_id": "", "delivery_id": "", "delivery_name": ""},
        "details": {"desc": "按约定退款400元", "receive_product": True, "prove_imgs": [], "media_id_list": ["GG4BISQz80rP"]},
        "merchant_update_detail": {
            "merchant_update_type": 3, "update_reason_type": 10, "merchant_update_desc": "已与您沟通，退款调整为300元",
            "old_after_sale_type": 1, "new_after_sale_type": 1, "old_after_sale_amount": 40000,
            "new_after_sale_amount": 30000, "media_ids": ["MEDIA_ID_1"]}},
}


def test_wechat_input_is_mapped_before_deciding(capsys, tmp_path):
    path = tmp_path / "wx.json"
    path.write_text(json.dumps({"order": WECHAT_ORDER, "context": {
        "paid_amount": 40000, "category": "general", "scenario": "not_as_described", "negotiations_used": 1}}),
        encoding="utf-8")
    code, result, _ = run(capsys, "apply", "--input", "wechat", "--ticket", str(path), "--answer", "accept",
                          "--at", "2025-10-24T10:00:00+08:00")
    assert code == 0 and result["effects"] == [{"effect": "auto_refund", "refund_amount": 30000}]
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"after_sale_order_id": "2000002468828209", "type": 1, "amount": 50000,
                                "merchant_update_desc": "x", "update_reason_type": 10, "merchant_update_type": 3,
                                "media_ids": ["a"]}), encoding="utf-8")
    code, result, _ = run(capsys, "check", "--input", "wechat", "--ticket", str(path), "--payload", str(body),
                          "--at", "2025-10-24T10:00:00+08:00")
    assert code == 1 and result["action"] == "modify_negotiation"
    assert [v["code"] for v in result["violations"]] == ["AMOUNT_ABOVE_PAID"]
    path.write_text(json.dumps({"context": {}}), encoding="utf-8")
    code, _, err = run(capsys, "decide", "--input", "wechat", "--ticket", str(path), "--actor", "buyer")
    assert code == 1 and "/order" in err


def test_wechat_input_answers_in_the_platforms_terms_too(capsys):
    """--input wechat: the platform's order + context in, the platform's errcodes out beside ours."""
    wechat = ROOT / "examples" / "wechat"
    at = "2025-10-24T01:18:30+08:00"
    code, decision, _ = run(capsys, "decide", "--input", "wechat", "--actor", "merchant", "--at", at,
                            "--ticket", str(wechat / "order-merchant-processing.json"))
    assert code == 0
    assert decision["actions"]["reject"]["platform"] == {
        "endpoint": "rejectapply", "errcode": 10021068,
        "errmsg": decision["actions"]["reject"]["platform"]["errmsg"]}
    assert decision["actions"]["agree"]["platform"]["errcode"] == 0
    code, result, _ = run(capsys, "check", "--input", "wechat", "--at", at,
                          "--ticket", str(wechat / "order-merchant-processing.json"),
                          "--payload", str(wechat / "update-amount-no-images.json"))
    assert code == 1
    assert [v["code"] for v in result["violations"]] == ["EVIDENCE_REQUIRED"]
    assert result["platform"]["endpoint"] == "merchantupdateaftersale"

