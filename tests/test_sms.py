"""SMS updates to hotline callers: Tencent Cloud's real SDK (tencentcloud-sdk-python-sms)
signs every request with TC3-HMAC-SHA256 and sends it to a local fake of the SMS API
(tests/fixtures/sms/fake_tencent.py), which checks the signature and records the message.
On both storage set-ups. No network."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from adapters import sms
from adapters.sms.templates import Filled, fill
from bot.config import SmsConfig
from bot.models import OutboxMessage
from bot.services import Services
from bot.sms_consent import masked, mobile_number
from shell.app import create_app
from tests.conftest import FakeClock
from tests.fixtures.sms.fake_tencent import FakeTencentSms
from tests.test_console import LAMP, LAMP_ADDRESS, Console, _users

SECRET_ID = "AKIDgridbottest0000000000000000000"
SECRET_KEY = "gridbot-test-secret-key-000000000"
PHONE = "138 1234 5678"
E164 = "+8613812345678"
TEMPLATES = {"1001": 2, "1002": 2, "1003": 2, "1004": 4, "1005": 1}


def sms_config(fake: FakeTencentSms, **changes: Any) -> SmsConfig:
    values: dict[str, Any] = {
        "provider": "tencent", "sdk_app_id": "1400000001", "sign_name": "禅城网格",
        "endpoint": fake.endpoint, "scheme": "http", "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY, "timeout_s": 5,
        "template_status": "1001", "template_handled": "1002", "template_back": "1003",
        "template_escalated": "1004", "template_closed": "1005", **changes}
    return SmsConfig(**values)


@pytest.fixture
def fake_sms() -> Iterator[FakeTencentSms]:
    fake = FakeTencentSms(SECRET_ID, SECRET_KEY, templates=dict(TEMPLATES)).start()
    yield fake
    fake.stop()


async def _start(s: Services, fake: FakeTencentSms, **changes: Any) -> None:
    s.config.sms = sms_config(fake, **changes)
    await sms.start(s)


@pytest.fixture
async def app(services: Services, fake_sms: FakeTencentSms) -> AsyncIterator[Any]:
    await _users(services)
    await _start(services, fake_sms)
    yield create_app(services.config, services, background=False)
    await sms.stop(services)


async def _intake(console: Console, **extra: Any) -> Any:
    r = await console.post("/console/api/intake", {
        "text": LAMP, "phone": PHONE, "address": LAMP_ADDRESS, "item_code": "C0118",
        **extra})
    return r


async def _sms_rows(s: Services) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return list((await session.execute(select(OutboxMessage).where(
            OutboxMessage.channel == "sms").order_by(OutboxMessage.id))).scalars())


async def test_a_consenting_caller_hears_of_the_handled_case_by_sms(
        app: Any, services: Services, fake_sms: FakeTencentSms,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = services
    op, disp, city = Console(app), Console(app), Console(app)
    for console, name in ((op, "op"), (disp, "disp"), (city, "city")):
        await console.login(name)
    r = await _intake(op, sms_consent=True)
    filed = await r.get_json()
    assert r.status_code == 201, filed
    number = filed["number"]
    # Filed and dispatched to the department; the page says updates go by SMS, and shows the
    # number masked only.
    page = await (await op.get(f"/console/cases/{number}")).get_data(as_text=True)
    assert "已同意，进展会发短信告知来电人" in page and "138****5678" in page
    assert "13812345678" not in page

    r = await disp.post(f"/console/api/cases/{number}/actions/dispatch",
                        {"target": "department:区城市管理和综合执法局", "reason": "路灯归城管"})
    assert r.status_code == 200, await r.get_json()
    assert (await city.post(f"/console/api/cases/{number}/actions/accept")).status_code == 200
    r = await city.post(f"/console/api/cases/{number}/actions/resolve",
                        {"reason": "已更换灯泡，恢复照明"})
    assert r.status_code == 200, await r.get_json()
    await s.outbox.run_once()

    # Dispatched to the department, taken, handled: each is a template with its values.
    # (One outbox pass sends its rows side by side: compared in no order.)
    assert sorted((m.phone, m.template_id, *m.params) for m in fake_sms.sent) == [
        (E164, "1001", number, "处置中"), (E164, "1001", number, "已派遣"),
        (E164, "1002", number, "已更换灯泡，恢复照明")]
    handled = next(m for m in fake_sms.sent if m.template_id == "1002")
    assert handled.sdk_app_id == "1400000001" and handled.sign_name == "禅城网格"
    rows = await _sms_rows(s)
    assert [r.status for r in rows] == ["delivered"] * 3
    assert handled.session_context == rows[-1].idempotency_key
    # The number is in no outbox row, no log line, the queue or the case's JSON.
    for row in rows:
        assert row.recipient.startswith("reporter:")
        assert "13812345678" not in f"{row.text}{row.payload}{row.recipient}"
    # (The database driver's own DEBUG lines echo SQL parameters: not ours to judge here.)
    ours = "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith(("aiosqlite", "sqlalchemy", "asyncpg")))
    assert "tencentcloud" not in ours or "SendSms" not in ours
    assert "13812345678" not in ours
    queue = await (await op.get("/console/api/cases")).get_data(as_text=True)
    detail = await (await op.get(f"/console/api/cases/{number}")).get_data(as_text=True)
    assert "13812345678" not in queue + detail and not fake_sms.refused


async def test_no_sms_without_consent_and_none_to_a_landline(
        app: Any, services: Services, fake_sms: FakeTencentSms) -> None:
    op = Console(app)
    await op.login("op")
    r = await _intake(op, phone="0757-83300000", sms_consent=True)
    assert r.status_code == 422 and "手机号码" in (await r.get_json())["error"]
    r = await _intake(op, sms_consent=False)
    number = (await r.get_json())["number"]
    await services.cases.transition(number, _status("handling"), "test")
    await services.outbox.run_once()
    assert fake_sms.sent == [] and await _sms_rows(services) == []
    page = await (await op.get(f"/console/cases/{number}")).get_data(as_text=True)
    assert "短信告知" not in page


async def test_failed_sends_retry_through_the_outbox(
        clocked: Services, clock: FakeClock, fake_sms: FakeTencentSms) -> None:
    s = clocked
    await _users(s)
    await _start(s, fake_sms)
    op = Console(create_app(s.config, s, background=False))
    await op.login("op")
    number = (await (await _intake(op, sms_consent=True)).get_json())["number"]
    fake_sms.fail_next = ["InternalError: backend busy"]  # the API itself fails once
    fake_sms.refuse_next = ["LimitExceeded.PhoneNumberThirtySecondLimit"]  # then the number
    await s.cases.transition(number, _status("handling"), "test")
    assert await s.outbox.run_once() == 0
    [row] = await _sms_rows(s)
    assert (row.status, row.attempts) == ("pending", 1) and "InternalError" in row.last_error
    clock.advance(seconds=3)
    assert await s.outbox.run_once() == 0
    [row] = await _sms_rows(s)
    assert row.attempts == 2 and "LimitExceeded" in row.last_error
    clock.advance(seconds=5)
    assert await s.outbox.run_once() == 1
    assert [m.params for m in fake_sms.sent] == [[number, "处置中"]]
    # A number the operator has blocked is final: no retries.
    fake_sms.refuse_next = ["FailedOperation.PhoneNumberInBlacklist"]
    await s.cases.transition(number, _status("handled"), "test")
    assert await s.outbox.run_once() == 0
    rows = await _sms_rows(s)
    assert rows[-1].status == "failed" and "Blacklist" in rows[-1].last_error
    await sms.stop(s)


async def test_a_wrong_secret_is_refused_by_the_signature_check(
        services: Services, fake_sms: FakeTencentSms) -> None:
    """The fake really checks TC3 signatures: signed with another key, nothing is sent and
    the row waits for a retry (a key fixed in the config then gets it through)."""
    s = services
    await _users(s)
    await _start(s, fake_sms, secret_key="not-the-secret")
    op = Console(create_app(s.config, s, background=False))
    await op.login("op")
    number = (await (await _intake(op, sms_consent=True)).get_json())["number"]
    await s.cases.transition(number, _status("handling"), "test")
    assert await s.outbox.run_once() == 0
    assert fake_sms.sent == [] and fake_sms.refused == [
        "AuthFailure.SignatureFailure: signature mismatch"]
    [row] = await _sms_rows(s)
    assert row.status == "pending" and "AuthFailure" in row.last_error
    await sms.stop(s)


async def test_a_retry_after_a_lost_acknowledgement_sends_once(
        services: Services, fake_sms: FakeTencentSms) -> None:
    s = services
    await _users(s)
    await _start(s, fake_sms)
    op = Console(create_app(s.config, s, background=False))
    await op.login("op")
    number = (await (await _intake(op, sms_consent=True)).get_json())["number"]
    await s.cases.transition(number, _status("handling"), "test")
    [notice] = await s.outbox.claim()
    channel = s.channels["sms"]
    await channel.send(notice)
    await channel.send(notice)  # the lease ran out before the first send was recorded
    assert len(fake_sms.sent) == 1
    await sms.stop(s)


def test_templates_fall_back_and_cut_long_values() -> None:
    config = SmsConfig(provider="tencent", sdk_app_id="1", template_status="1001",
                       param_max_chars=8)
    handled = {"case": "20261203-0001", "status": "handled",
               "say": {"key": "citizen.handled_with",
                       "values": {"number": "20261203-0001", "note": "已更换灯泡，恢复照明"}}}
    # No template of its own: the generic one says the status.
    filled = fill(config, handled)
    assert filled is not None and filled.template_id == "1001"
    assert filled.params == ["2026120…", "已处置，待核查"]
    config.template_handled = "1002"
    filled = fill(config, handled)
    assert filled is not None and filled.params[1] == "已更换灯泡，恢…"
    assert fill(SmsConfig(), handled) is None
    config.template_escalated = "1004"
    escalated = fill(config, {"case": "N1", "status": "dispatched", "say": {
        "key": "citizen.escalated", "values": {"number": "N1", "level": "街道",
                                               "target": "石湾镇街道", "due": ""}}})
    assert escalated == Filled("1004", ["N1", "街道", "石湾镇街道", "-"])  # empty → "-"
    assert mobile_number("13812345678") == E164 == mobile_number("+86 138".replace(" ", "")
                                                                  + "12345678")
    assert mobile_number("075783300000") is None and masked(E164) == "138****5678"


def _status(name: str) -> Any:
    from bot.workflow import Status

    return Status(name)


async def test_doctor_says_when_sms_is_unreachable_or_lacks_templates(
        fake_sms: FakeTencentSms) -> None:
    from bot.config import Config
    from shell.ops.doctor import check_sms

    assert await check_sms(Config()) == []  # off: nothing to say
    [check] = await check_sms(Config(sms=sms_config(fake_sms)))
    assert check.status == "warn" and "template_merged" in check.en
    [check] = await check_sms(Config(sms=sms_config(fake_sms, template_merged="1005")))
    assert check.status == "ok", check.en
    [check] = await check_sms(Config(sms=sms_config(fake_sms, template_back="9999")))
    assert check.status == "fail" and "template_back=9999" in check.en
    [check] = await check_sms(Config(sms=sms_config(fake_sms, secret_key="wrong")))
    assert check.status == "fail" and "AuthFailure" in check.en
    [check] = await check_sms(Config(sms=sms_config(fake_sms, endpoint="127.0.0.1:9")))
    assert check.status == "fail" and "cannot be used" in check.en
    [check] = await check_sms(Config(sms=sms_config(fake_sms, sign_name="")))
    assert check.status == "fail" and "sign_name" in check.en
