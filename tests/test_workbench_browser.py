"""The workbench in a real chromium against a real `aftersale serve`: every page opens without a
console error, a denial's reason reads on its card, the `at` slider unlocks an action across its
deadline, a broken draft shows its error at its line, and the policy cases run against a draft.
Screenshots of every page (1280×800 and phone width) are kept in var/screenshots/."""
from __future__ import annotations

import re

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_chromium
from server_support import RULES, Server

pytestmark = pytest.mark.browser

PAGES = ("versions", "policy", "compare", "try", "draft")


def rules_digest() -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(RULES.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(RULES)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def rules_before() -> str:
    return rules_digest()
IN_FORCE = "2024-05-31"


@pytest.fixture(scope="module")
def server(tmp_path_factory, rules_before):
    require_chromium()
    server = Server(tmp_path_factory.mktemp("workbench"), RULES, "--poll", "0")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh 1280×800 page that records console errors; the test fails if any was logged."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert errors == [], f"console errors: {errors}"


def open_page(page, server, name: str) -> None:
    page.goto(f"{server.url}/workbench/#/{name}")
    page.locator("main h1").wait_for()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("name", PAGES)
def test_each_page_opens_and_is_legible_at_desk_and_phone_width(page, server, name):
    open_page(page, server, name)
    page.wait_for_load_state("networkidle")
    if name == "policy":
        page.get_by_text("场景 × 协商类型 × 协商说明").wait_for()
        # every item says where it is written; that line of the file names the item
        where = page.locator("td .where").first.inner_text()
        file, line = where.split(":")
        assert (RULES / file).read_text(encoding="utf-8").splitlines()[int(line) - 1].strip()
    if name == "versions":
        assert page.locator(".timeline .seg.now").inner_text().startswith("2024年5月31日")
    if name == "compare":
        page.get_by_text("样例语料上的决定差异").wait_for()
    if name == "draft":
        page.click("#load-in-force")
        page.locator("#problems .badge").wait_for()
    shot(page, f"{name}-1280x800")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(100)
    width = page.evaluate("document.documentElement.scrollWidth")
    # the page may scroll inside its wide tables, but the page itself fits the phone
    assert width <= 390 + 1, f"{name}: page is {width}px wide at phone width"
    shot(page, f"{name}-phone")


def test_try_a_ticket_shows_why_an_action_is_denied(page, server):
    open_page(page, server, "try")
    page.click("button[data-example=new-not-received]")
    card = page.locator("article[data-action=reject]")
    card.get_by_text("当前售后场景不支持直接拒绝").wait_for()  # this ticket's answer, not the one shown before
    text = card.inner_text()
    assert "不允许" in text
    assert "当前售后场景不支持直接拒绝" in text
    assert "merchant.reject.negotiation_required" in text and "三-3.1.1-(2)" in text
    assert "negotiation" in text  # what unlocks it: a negotiation first
    shot(page, "try-denial")


def test_the_slider_unlocks_an_action_across_its_deadline(page, server):
    open_page(page, server, "try")
    page.click("button[data-example=pending-amount-proposal]")
    card = page.locator("article[data-action=negotiate]")
    card.get_by_text("2024-06-03 12:00").wait_for()  # this ticket's answer, not the one shown before
    assert "协商方案待买家处理" in card.inner_text()
    assert "2024-06-03 12:00" in card.inner_text()  # the unlock time, the buyer's 48 h
    slider = page.locator("#at-slider")
    slider.focus()
    page.keyboard.press("End")  # keyboard only: the slider's end is days past the deadline
    page.wait_for_function("document.querySelector('article[data-action=negotiate]').className.includes('allowed')")
    assert "允许" in card.inner_text() and not card.locator(".denial").count()
    at = page.input_value("#at")
    assert at > "2024-06-03T12:00:00+08:00"
    shot(page, "try-slider-unlocked")


def test_compare_with_another_version_side_by_side(page, server):
    open_page(page, server, "try")
    page.click("button[data-example=new-not-received]")
    page.select_option("#compare-with", "2023-12-22")
    page.locator(".side").wait_for()
    captions = page.locator(".side > div > p").all_inner_texts()
    assert any("2023-12-22" in c for c in captions) and any(IN_FORCE in c for c in captions)


def test_check_a_proposal_and_apply_an_answer(page, server):
    open_page(page, server, "try")
    page.click("button[data-example=new-not-received]")
    page.locator("article[data-action=reject]").get_by_text("当前售后场景不支持直接拒绝").wait_for()
    page.get_by_role("button", name="negotiate-over-paid").click()
    page.get_by_role("button", name="检查方案").click()
    result = page.locator("#check-result")
    result.wait_for()
    assert "AMOUNT_ABOVE_PAID" in result.inner_text()
    page.click("button[data-example=pending-amount-proposal]")
    page.get_by_role("button", name="接受 accept").click()
    applied = page.locator("#apply-result")
    applied.wait_for()
    assert "refunding" in applied.inner_text() and "auto_refund" in applied.inner_text()
    # 三-3.2.1: a rejection needs its reason; the page sends the one typed beside the buttons
    page.fill("#reject-reason", "")
    page.get_by_role("button", name="拒绝 reject").click()
    page.locator("#apply-result").get_by_text("REJECT_REASON_REQUIRED").wait_for()
    page.fill("#reject-reason", "金额不合理")
    page.get_by_role("button", name="拒绝 reject").click()
    page.locator("#apply-result .b-ok").wait_for()  # the allowed badge replaces the refusal
    assert "REJECT_REASON_REQUIRED" not in page.locator("#apply-result").inner_text()


def _edit_draft(page, server, text: str) -> None:
    open_page(page, server, "draft")
    page.click("#load-in-force")
    page.locator("#problems .badge").wait_for()
    page.evaluate("text => window.workbenchEditor.setValue(text)", text)


def test_a_broken_draft_shows_its_error_at_its_line(page, server):
    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "buyer_response_hours:" in text)
    _edit_draft(page, server, source.replace("buyer_response_hours: {value: 48", "buyer_response_hours: {value: -1"))
    problems = page.locator("#problems")
    problems.get_by_text(f"{IN_FORCE}.yaml:{line}:").wait_for()
    assert "/timeouts/buyer_response_hours/value" in problems.inner_text()
    # the editor marks that very line (and only it), and the problem's location jumps there
    info = page.evaluate("n => { const i = window.workbenchEditor.lineInfo(n); return [i.bgClass, !!(i.gutterMarkers || {}).problems]; }",
                         line - 1)
    assert info == ["cm-error-line", True]
    marked = page.evaluate("window.workbenchEditor.getValue().split('\\n').map((_, n) => window.workbenchEditor.lineInfo(n).bgClass).filter(Boolean).length")
    assert marked == 1
    problems.get_by_role("link", name=re.compile(f":{line}:")).click()
    page.locator(".cm-error-line").first.wait_for()
    assert page.evaluate("window.workbenchEditor.getCursor().line") == line - 1
    shot(page, "draft-broken")


def test_the_policy_cases_and_the_impact_run_against_a_draft(page, server):
    source = (RULES / f"{IN_FORCE}.yaml").read_text(encoding="utf-8")
    # declared changes: the buyer's window back to 24 h (the cases about 48 h must now fail) and
    # a direct rejection allowed for goods not received (merchants' reject unlocks on the corpus)
    draft = source.replace("buyer_response_hours: {value: 48", "buyer_response_hours: {value: 24") \
                  .replace("    rejection: negotiation_required\n", "    rejection: allowed\n", 1) \
                  .replace("      - features/extend_receipt\n", "      - features/extend_receipt\n      - timeouts/buyer_response_hours\n"
                           "      - scenarios/not_received/rejection\n", 1)
    _edit_draft(page, server, draft)
    page.get_by_text("✓ 通过校验").wait_for()
    page.click("#run-cases")
    result = page.locator("#cases-result h3")
    result.wait_for()
    match = re.search(r"(\d+) 通过，(\d+) 失败", result.inner_text())
    assert match and int(match.group(2)) > 0 and int(match.group(1)) > 100
    assert "buyer-window.yaml" in page.locator("#cases-result").inner_text()
    page.click("#run-impact")
    page.locator("#impact-chart").wait_for()
    assert "对比生效版本 2024-05-31" in page.locator("#impact-result").inner_text()
    # the canvas is there before Chart.js (loaded when first needed) has drawn on it
    page.wait_for_function("window.Chart !== undefined && Chart.getChart('impact-chart') !== undefined")
    bars = page.evaluate("Chart.getChart('impact-chart').data")
    reject = bars["labels"].index("商家·拒绝")
    assert bars["datasets"][1]["data"][reject] > 0  # denied → allowed
    page.locator("#impact-result").scroll_into_view_if_needed()
    shot(page, "draft-impact")


def test_nothing_under_rules_changed(server, rules_before):
    """The draft tests above edited nothing on disk: rules/ holds the bytes it held before them."""
    assert rules_digest() == rules_before
