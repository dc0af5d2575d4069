"""The console in a real browser (Debian's chromium): an operator takes a call with live
suggestions and files it, a dispatcher sees it appear in the queue without reloading and
dispatches it; scope and sign-out as a person meets them. Screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import LiveServer, login, screenshot

CALL = "季华五路18号门口的路灯不亮了，晚上很黑，老人走路怕摔"
ADDRESS = "季华五路18号"
DEPARTMENT = "区城市管理和综合执法局"


def test_call_filed_appears_live_and_is_dispatched(live_server: LiveServer, page: Any,
                                                   open_page: Any) -> None:
    dispatcher = open_page()
    login(dispatcher, live_server, "dispatcher1")
    assert "/console/cases" in dispatcher.url
    live = dispatcher.locator("#live")
    live.get_by_text("实时更新中").wait_for()

    login(page, live_server, "operator1")
    assert page.url.endswith("/console/intake")
    page.fill("#call-text", CALL)
    page.fill("#caller-phone", "13812345678")
    page.fill("#address", ADDRESS)
    suggestions = page.locator("#suggestion-list li")
    suggestions.nth(2).wait_for()  # three suggestions, shown as the call is typed
    assert suggestions.count() == 3
    first = suggestions.first.inner_text()
    assert "路灯" in first and DEPARTMENT in first and "办结" in first
    page.locator("#place.ok").wait_for()
    assert "澜石社区" in page.inner_text("#place")
    screenshot(page, "01_intake_suggestions")

    page.click("#file-case")
    page.locator("#filed-link").wait_for()
    number = re.search(r"\d{8}-\d{4}", page.inner_text("#intake-done")).group(0)
    screenshot(page, "02_intake_filed")

    # The dispatcher's queue shows it without a reload.
    row = dispatcher.locator(f"#case-{number}")
    row.wait_for(timeout=10_000)
    assert "热线" in row.inner_text() and "路灯" in row.inner_text()
    assert "138" not in row.inner_text()
    screenshot(dispatcher, "03_queue_live_row")

    row.get_by_role("link", name=number).click()
    dispatcher.wait_for_url(f"**/console/cases/{number}")
    assert dispatcher.inner_text("#phone") == "138****5678"
    assert dispatcher.locator("#reveal-phone").count() == 0  # dispatchers may not reveal
    dispatcher.select_option("#action-name", "dispatch")
    # The targets read as names (the grid's, the department's), never as codes.
    options = dispatcher.locator("#dispatch-target option").all_inner_texts()
    assert DEPARTMENT in options and not [o for o in options if re.search(r"\d{9}", o)]
    assert any("网格" in o for o in options)
    dispatcher.select_option("#dispatch-target", label=DEPARTMENT)
    dispatcher.fill("#action-reason", "路灯维修归城管")
    dispatcher.click("#action-submit")
    dispatcher.locator("#action-done").get_by_text("已完成").wait_for()
    dispatcher.wait_for_load_state("load")
    dispatcher.locator("#timeline").get_by_text("路灯维修归城管").wait_for()
    assert dispatcher.inner_text("#case-assignee") == DEPARTMENT
    screenshot(dispatcher, "04_case_dispatched")

    # The dispatch is an update: the operator's queue tab would show it too; the dispatcher's
    # own queue lists the case as dispatched to the department.
    dispatcher.goto(f"{live_server.url}/console/cases")
    dispatcher.locator(f"#case-{number}").get_by_text(DEPARTMENT).wait_for()
    assert page.script_errors == [] and dispatcher.script_errors == []


def test_supervisor_reveals_phone_and_department_cannot_open_other_cases(
        live_server: LiveServer, page: Any, open_page: Any) -> None:
    login(page, live_server, "operator1")
    page.fill("#call-text", "祖庙路口自来水管爆了，水一直往外冒")
    page.fill("#caller-phone", "13900001111")
    page.fill("#address", "祖庙")
    page.locator("#suggestion-list li").first.wait_for()
    page.locator("#place.ok").wait_for()
    page.click("#file-case")
    page.locator("#filed-link").wait_for()
    number = re.search(r"\d{8}-\d{4}", page.inner_text("#intake-done")).group(0)

    supervisor = open_page()
    login(supervisor, live_server, "supervisor1")
    supervisor.goto(f"{live_server.url}/console/cases/{number}")
    assert supervisor.inner_text("#phone") == "139****1111"
    supervisor.click("#reveal-phone")
    supervisor.locator("#phone").get_by_text("13900001111").wait_for()
    screenshot(supervisor, "05_supervisor_phone_revealed")

    if "library-staff" not in live_server.users:
        live_server.add_user("library-staff", "department", "department:区文化广电旅游体育局")
    outsider = open_page()
    login(outsider, live_server, "library-staff")
    response = outsider.goto(f"{live_server.url}/console/cases/{number}")
    assert response is not None and response.status == 404
    outsider.goto(f"{live_server.url}/console/cases")
    outsider.locator("#queue-empty").wait_for()
    assert outsider.locator(f"#case-{number}").count() == 0
    screenshot(outsider, "06_department_sees_only_its_cases")

    outsider.click("#logout")
    outsider.wait_for_url("**/console/login")
    response = outsider.goto(f"{live_server.url}/console/cases")
    assert "/console/login" in outsider.url  # signed out: back to the login form
    assert supervisor.script_errors == [] and outsider.script_errors == []


def test_requests_without_the_page_token_change_nothing(live_server: LiveServer,
                                                        page: Any) -> None:
    from bot.cases import CaseDraft, ReporterRef

    spot = live_server.services.locator.from_text("季华五路18号").spot
    filing = live_server.call(live_server.services.cases.file(
        CaseDraft(text="季华五路18号的路灯一闪一闪的", item_code="C0118",
                  grid_code=spot.grid.code, lat=spot.lat, lon=spot.lon, address="季华五路18号"),
        ReporterRef("hotline", "call-csrf-test"), attach_duplicates=False))
    number = filing.case.number
    login(page, live_server, "dispatcher1")
    page.goto(f"{live_server.url}/console/cases/{number}")
    reject = f"/console/api/cases/{number}/actions/reject"
    # Same origin, session cookie sent, but no token: refused.
    status = page.evaluate("""async (url) => (await fetch(url, {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({reason: "forged"})})).status""", reject)
    assert status == 403
    # A page on another site posting a form at the console: refused as well.
    page.set_content(f"""<form method="post" action="{live_server.url}{reject}">
        <input name="reason" value="forged"><button id="go">go</button></form>""")
    with page.expect_navigation():
        page.click("#go")
    assert page.evaluate("document.body.innerText").strip() != ""
    page.goto(f"{live_server.url}/console/cases/{number}")
    assert page.inner_text("#case-status") == "已派遣"
    # With the page's own token the same request goes through.
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    status = page.evaluate("""async ([url, token]) => (await fetch(url, {method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
        body: JSON.stringify({reason: "测试作废"})})).status""", [reject, token])
    assert status == 200
    page.reload()
    assert page.inner_text("#case-status") == "不予受理"
    screenshot(page, "07_csrf_checked_case_rejected")
