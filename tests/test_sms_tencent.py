"""adapters/sms/tencent.py: Tencent Cloud's real SDK (signed requests) against the local
fake of its SMS API — which answers are final (SmsRefused), which are worth a retry, and
which templates are approved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from adapters.sms.provider import SmsRefused, TemplateSms
from adapters.sms.tencent import TencentSms
from tests.fixtures.sms.fake_tencent import FakeTencentSms
from tests.test_sms import E164, SECRET_ID, SECRET_KEY, TEMPLATES, sms_config


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    server = FakeTencentSms(SECRET_ID, SECRET_KEY, templates=dict(TEMPLATES)).start()
    yield server
    server.stop()


@pytest.fixture
async def provider(fake: FakeTencentSms) -> AsyncIterator[TencentSms]:
    sms = TencentSms(sms_config(fake))
    yield sms
    await sms.close()


def _message(phone: str = E164, template: str = "1005", params: tuple[str, ...] = (
        "20261123-0001",)) -> TemplateSms:
    return TemplateSms(phone=phone, template_id=template, params=list(params),
                       context="20261123-0001:citizen:sms:abc")


async def test_a_sent_message_reaches_the_api_signed_with_every_field(
        provider: TencentSms, fake: FakeTencentSms) -> None:
    await provider.send(_message())
    [sent] = fake.sent
    assert (sent.phone, sent.template_id, sent.params) == (E164, "1005", ["20261123-0001"])
    assert (sent.sdk_app_id, sent.sign_name) == ("1400000001", "禅城网格")
    assert sent.session_context == "20261123-0001:citizen:sms:abc"
    assert fake.refused == []  # the signature checked out


@pytest.mark.parametrize("message", [
    _message(phone="13812345678"),  # not E.164: the API refuses the number
    # Not an approved template: a request error, as final as a wrong number (this was once
    # retried until the outbox gave up).
    _message(template="4242"),
    _message(template="1004"),  # the template wants four values
])
async def test_answers_about_the_message_itself_are_final(
        provider: TencentSms, fake: FakeTencentSms, message: TemplateSms) -> None:
    with pytest.raises(SmsRefused):
        await provider.send(message)
    assert fake.sent == []


async def test_per_number_limits_are_worth_a_retry_other_codes_are_not(
        provider: TencentSms, fake: FakeTencentSms) -> None:
    fake.refuse_next = ["LimitExceeded.PhoneNumberDailyLimit"]
    with pytest.raises(RuntimeError, match="LimitExceeded") as raised:
        await provider.send(_message())
    assert not isinstance(raised.value, SmsRefused)
    fake.refuse_next = ["FailedOperation.PhoneNumberInBlacklist"]
    with pytest.raises(SmsRefused, match="Blacklist"):
        await provider.send(_message())
    await provider.send(_message())  # and the next goes through
    assert len(fake.sent) == 1


async def test_api_errors_are_final_only_when_about_the_request(
        provider: TencentSms, fake: FakeTencentSms) -> None:
    fake.fail_next = ["InvalidParameterValue.TemplateParameterLengthLimit: too long"]
    with pytest.raises(SmsRefused, match="InvalidParameterValue"):
        await provider.send(_message())
    fake.fail_next = ["InternalError.Timeout: busy"]
    with pytest.raises(TencentCloudSDKException) as raised:
        await provider.send(_message())
    assert raised.value.code == "InternalError.Timeout"  # left to the outbox's retry
    assert fake.sent == []


async def test_a_wrong_secret_is_an_error_not_a_refusal(fake: FakeTencentSms) -> None:
    wrong = TencentSms(sms_config(fake, secret_key="not-the-secret"))
    try:
        with pytest.raises(TencentCloudSDKException) as raised:
            await wrong.send(_message())
    finally:
        await wrong.close()
    assert raised.value.code == "AuthFailure.SignatureFailure"
    assert not isinstance(raised.value, SmsRefused)


async def test_approved_lists_the_approved_templates_among_those_asked(
        provider: TencentSms) -> None:
    assert await provider.approved(["1001", "1005", "4242", "not-a-number"]) == {"1001", "1005"}
    assert await provider.approved([]) == set()
