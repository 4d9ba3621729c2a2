"""The semantic diff: one line per change a policy reader would name, id paths, Chinese labels."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from engine.policy.diff import render as diffrender
from engine.cli.main import main
from engine.policy.diff.semantic import diff_documents


def base_document() -> dict:
    return {
        "version": "2024-03-11",
        "effective_from": "2024-03-11T00:00:00+08:00",
        "title": "微信小店「售后协商」使用指南",
        "changes": [{"id": "x", "text": "t", "ref": "", "section": "二", "touches": ["timeouts"]}],
        "negotiation_types": [
            {"id": "modify_request", "label": "修改买家售后申请", "section": "三-3.1.2-(1)"},
            {"id": "request_evidence", "label": "邀请买家核实与补充凭证", "section": "三-3.1.2-(1)"},
        ],
        "reasons": [
            {"id": "contact_failed", "text": "无法联系或联系不上买家", "negotiation_type": "request_evidence",
             "template": "您好，请联系客服。", "section": "三-3.1.2 注意事项c"},
            {"id": "amount_only", "text": "仅修改退款金额", "negotiation_type": "modify_request",
             "section": "三-3.1.2-(2)"},
        ],
        "scenarios": [
            {"id": "not_received", "label": "未收到货", "rejection": "guided",
             "reasons": {"modify_request": ["amount_only"], "request_evidence": ["contact_failed"]},
             "section": "三-3.1.2-(3)", "illustrative": True},
            {"id": "quality_issue", "label": "商品质量问题", "rejection": "allowed",
             "reasons": {"modify_request": ["amount_only"], "request_evidence": []},
             "section": "三-3.1.2-(3)", "illustrative": True},
        ],
        "timeouts": {"buyer_response_hours": {"value": 24, "section": "二-2.1-(2)"}},
        "limits": {"negotiations_per_ticket": {"value": None, "section": "二-2.1-(3)", "illustrative": True}},
        "features": {"modify_negotiation": {"enabled": False, "section": "三-3.1.2-(3)"}},
        "rules": [
            {"id": "merchant.negotiate.limit", "section": "二-2.1-(3)", "stage": "gate", "actor": "merchant",
             "action": "negotiate", "when": {"all": [{"negotiations_used": {"gte": {"param": "limits.negotiations_per_ticket"}}}]},
             "deny": {"code": "NEGOTIATION_LIMIT_REACHED", "message": "协商次数已用完", "unlock": {"kind": "never"}}},
        ],
    }


def one(changes):
    assert len(changes) == 1, [c.to_json() for c in changes]
    return changes[0]


def edited(mutate):
    a = base_document()
    b = copy.deepcopy(a)
    mutate(b)
    return a, b


def test_identical_documents_have_no_changes():
    assert diff_documents(base_document(), base_document()) == []


def test_metadata_is_not_a_change():
    def mutate(b):
        b["version"], b["effective_from"] = "2024-03-22", "2024-03-22T00:00:00+08:00"
        b["changes"] = []
    assert diff_documents(*edited(mutate)) == []


def test_timeout_24_to_48_is_one_line():
    change = one(diff_documents(*edited(lambda b: b["timeouts"]["buyer_response_hours"].update(value=48))))
    assert (change.kind, change.path, change.before, change.after) == (
        "changed", "timeouts/buyer_response_hours/value", 24, 48)
    assert change.section == "二-2.1-(2)"
    assert change.label == "时效「用户处理协商时效」· 取值"


def test_limit_from_null_to_two_is_one_line_even_when_illustrative_goes():
    def mutate(b):
        b["limits"]["negotiations_per_ticket"] = {"value": 2, "section": "二-2.1-(3)"}
    change = one(diff_documents(*edited(mutate)))
    assert (change.path, change.before, change.after) == ("limits/negotiations_per_ticket/value", None, 2)


def test_scenario_forbidding_direct_rejection_is_one_line_with_chinese_label():
    change = one(diff_documents(*edited(lambda b: b["scenarios"][0].update(rejection="negotiation_required"))))
    assert change.path == "scenarios/not_received/rejection"
    assert change.label == "售后场景「未收到货」· 拒绝方式"
    assert (change.before, change.after) == ("guided", "negotiation_required")


def test_template_wording_is_one_line():
    change = one(diff_documents(*edited(lambda b: b["reasons"][0].update(template="您好，我们多次联系您未果。"))))
    assert change.path == "reasons/contact_failed/template"
    assert change.label == "协商原因「无法联系或联系不上买家」· 建议文案"


def test_reason_moved_between_scenarios_is_one_line():
    def mutate(b):
        b["scenarios"][0]["reasons"]["request_evidence"].remove("contact_failed")
        b["scenarios"][1]["reasons"]["request_evidence"].append("contact_failed")
    change = one(diff_documents(*edited(mutate)))
    assert change.kind == "changed"
    assert change.path == "scenarios/quality_issue/reasons/request_evidence/contact_failed"
    assert change.moved_from == "scenarios/not_received/reasons/request_evidence/contact_failed"
    assert set(change.paths()) == {change.path, change.moved_from}
    assert "无法联系或联系不上买家" in change.label and "未收到货" in change.label


def test_reason_moved_between_types_pairs_within_the_same_scenario():
    def mutate(b):
        b["reasons"][0]["negotiation_type"] = "modify_request"
        for scenario in b["scenarios"]:
            if "contact_failed" in scenario["reasons"]["request_evidence"]:
                scenario["reasons"]["request_evidence"].remove("contact_failed")
                scenario["reasons"]["modify_request"].append("contact_failed")
    changes = diff_documents(*edited(mutate))
    assert [c.path for c in changes] == [
        "reasons/contact_failed/negotiation_type",
        "scenarios/not_received/reasons/modify_request/contact_failed"]
    assert changes[1].moved_from == "scenarios/not_received/reasons/request_evidence/contact_failed"


def test_offering_a_new_reason_is_an_addition_named_by_its_value():
    change = one(diff_documents(*edited(lambda b: b["scenarios"][1]["reasons"]["request_evidence"].append("contact_failed"))))
    assert (change.kind, change.path) == ("added", "scenarios/quality_issue/reasons/request_evidence/contact_failed")


def test_items_are_matched_by_id_not_position():
    assert diff_documents(*edited(lambda b: b["scenarios"].reverse())) == []
    assert diff_documents(*edited(lambda b: b["reasons"].reverse())) == []


def test_negotiation_type_order_is_display_order_and_so_a_change():
    change = one(diff_documents(*edited(lambda b: b["negotiation_types"].reverse())))
    assert change.path == "negotiation_types"
    assert change.after == ["request_evidence", "modify_request"]


def test_added_and_removed_items_are_one_line_each():
    def mutate(b):
        b["scenarios"].append({"id": "wrong_item", "label": "错发漏发", "rejection": "allowed", "reasons": {},
                               "section": "三-3.1.2-(3)"})
        del b["rules"][0]
    changes = diff_documents(*edited(mutate))
    assert [(c.kind, c.path) for c in changes] == [
        ("added", "scenarios/wrong_item"), ("removed", "rules/merchant.negotiate.limit")]
    assert changes[0].after["label"] == "错发漏发"
    assert changes[0].label == "售后场景「错发漏发」"


def test_condition_tree_is_compared_whole():
    def mutate(b):
        b["rules"][0]["when"]["all"].append({"status": {"eq": "merchant_processing"}})
    change = one(diff_documents(*edited(mutate)))
    assert change.path == "rules/merchant.negotiate.limit/when"


def test_flag_and_number_are_not_equal():
    change = one(diff_documents(*edited(lambda b: b["features"]["modify_negotiation"].update(enabled=0))))
    assert (change.before, change.after) == (False, 0)


def test_annotations_only_when_asked():
    a, b = edited(lambda b: b["timeouts"]["buyer_response_hours"].update(section="二-2.1-(4)"))
    assert diff_documents(a, b) == []
    assert one(diff_documents(a, b, include_annotations=True)).path == "timeouts/buyer_response_hours/section"


def test_renderings():
    a, b = edited(lambda b: b["timeouts"]["buyer_response_hours"].update(value=48))
    changes = diff_documents(a, b)
    data = diffrender.to_json(changes, "A", "B")
    assert data["summary"] == {"added": 0, "removed": 0, "changed": 1}
    assert data["changes"][0]["path"] == "timeouts/buyer_response_hours/value"
    json.dumps(data)
    markdown = diffrender.to_markdown(changes, "A", "B")
    assert "| 修改 | 时效「用户处理协商时效」· 取值 | 24 | 48 | `timeouts/buyer_response_hours/value` |" in markdown
    text = diffrender.to_text(changes, "A", "B")
    assert "~ 时效「用户处理协商时效」· 取值: 24 → 48" in text


def write(tmp_path, name, document):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_on_files(tmp_path, capsys):
    a, b = edited(lambda b: b["scenarios"][0].update(rejection="negotiation_required"))
    old, new = write(tmp_path, "old.yaml", a), write(tmp_path, "new.yaml", b)
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["path"] for c in data["changes"]] == ["scenarios/not_received/rejection"]


def test_cli_unknown_version_is_a_message(tmp_path, capsys):
    write(tmp_path, "2024-03-11.yaml", base_document())
    assert main(["diff", "2024-03-11", "2099-01-01", "--rules", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown policy version `2099-01-01`" in err and "2024-03-11" in err


def test_cli_broken_yaml_is_located(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", encoding="utf-8")
    good = write(tmp_path, "good.yaml", base_document())
    assert main(["diff", str(good), str(bad)]) == 1
    assert "bad.yaml:" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_cli_formats_on_bundled_rules(fmt, capsys):
    from engine.history.versions import load_versions
    docs = load_versions()
    assert len(docs) >= 2
    assert main(["diff", docs[-2].version, docs[-1].version, "--format", fmt]) == 0
    assert capsys.readouterr().out.strip()
