"""The hotline's round trip in a real browser: an operator takes a call, ticks the caller's
consent to SMS updates, and after closure records the 回访 (follow-up call) on the case page;
it shows on the timeline and counts in the satisfaction figures. Screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.models import Case
from bot.stats import case_stats
from bot.workflow import Status
from tests.browser.conftest import LiveServer, login, screenshot

CALL = "佛山火车站广场的路灯坏了，整段路都是黑的"
# A place no other browser test files at: the live server is shared by the session, and this
# call near another test's open street-light case would be attached to it as a duplicate.
ADDRESS = "佛山火车站"


async def _close(services: Any, number: str) -> None:
    for status in (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED):
        await services.cases.transition(number, status, "test")


def test_consent_at_intake_and_the_callback_after_closure(live_server: LiveServer,
                                                          page: Any) -> None:
    login(page, live_server, "operator1")
    page.fill("#call-text", CALL)
    page.fill("#caller-phone", "0757-83300000")  # a landline cannot take SMS
    page.fill("#address", ADDRESS)
    page.locator("#suggestion-list li").nth(2).wait_for()
    page.check("#sms-consent")
    page.click("#file-case")
    page.locator("#intake-error").get_by_text("手机号码").wait_for()
    page.fill("#caller-phone", "13912345678")
    page.click("#file-case")
    page.locator("#filed-link").wait_for()
    number = re.search(r"\d{8}-\d{4}", page.inner_text("#intake-done")).group(0)
    assert not page.is_checked("#sms-consent")  # the form is cleared for the next call

    page.click("#filed-link")
    page.wait_for_url(f"**/console/cases/{number}")
    assert "短信告知" in page.inner_text("#sms-updates")
    assert page.inner_text("#phone") == "139****5678"
    assert page.locator("#callback-form").count() == 0  # not before closure

    live_server.call(_close(live_server.services, number))
    page.reload()
    form = page.locator("#callback-form")
    form.wait_for()
    # Not reached: no score to give.
    page.check("#callback-missed")
    assert page.locator("#callback-score-field").is_hidden()
    page.check("#callback-reached")
    page.locator("#callback-score-field").wait_for()
    page.click("#callback-submit")  # reached but no score: refused, says why
    page.locator("#callback-error").get_by_text("满意度").wait_for()
    page.select_option("#callback-score", "5")
    page.fill("#callback-note", "路灯修好了，很满意")
    screenshot(page, "callback_01_form")
    page.click("#callback-submit")
    page.locator("#callback-done").get_by_text("回访已记录").wait_for()
    page.locator("#callback-recorded").wait_for()  # the page reloads with the result
    assert "5 分" in page.inner_text("#callback-recorded")
    timeline = page.inner_text("#timeline")
    assert "回访" in timeline and "满意度 5 分" in timeline and "路灯修好了，很满意" in timeline
    assert page.locator("#callback-form").count() == 0
    screenshot(page, "callback_02_recorded")
    assert page.script_errors == []

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    figures = live_server.call(case_stats(live_server.services.db, today,
                                          today + timedelta(days=1),
                                          where=Case.number == number))
    assert (figures["rated"], figures["satisfaction_rate"]) == (1, 1.0)
